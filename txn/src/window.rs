//! The conflict window: which keys the most recent commit versions wrote.
//!
//! A transaction that read at version `V` conflicts if any key it read (or
//! any key in a range it read) was written at a version above `V`. Keeping
//! the last write version of every key written in the last
//! [`CONFLICT_WINDOW`](crate::limits::CONFLICT_WINDOW) versions answers that
//! for any `V` inside the window, point reads and ranges alike, without
//! touching the store. It is rebuilt from the store's change log on open, so
//! it is a function of the log prefix like everything else.

use crate::record::Read;
use hashbrown::HashTable;
use ordo_kv::StreamId;
use std::collections::VecDeque;
use std::hash::BuildHasher;

/// A key of some stream.
type StreamKey = (StreamId, Vec<u8>);

/// Where the newest remembered write of one key is: the slot a hash lookup
/// finds. It holds no key bytes: those live once, in the version's write list
/// it points at, so recording a write allocates nothing here.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Hash of (stream, key), kept so the table can grow without rehashing keys.
    hash: u64,
    /// The version that last wrote the key.
    version: u64,
    /// The key's position in that version's write list.
    pos: u32,
}

/// The keys one version wrote, each with its hash.
#[derive(Debug)]
struct VersionWrites {
    version: u64,
    keys: Vec<(u64, StreamKey)>,
}

/// Last write version of each recently written key.
///
/// Point reads are checked with one hash probe; range reads by walking the
/// write sets of the versions after the read version, newest first, which is
/// short for the fresh snapshots most transactions read at (and bounded by
/// the window for stale ones).
///
/// Both sit on the per-transaction path of replay, so the layout avoids
/// per-key work beyond one hash: the table maps a key's hash to a [`Slot`]
/// (version and position), and the key bytes are stored once, in the write
/// list of the version that wrote them. A probe compares key bytes only when
/// the hash matches, so a read of a key outside the window (the common case)
/// touches no key memory at all; eviction matches slots by (version,
/// position) and compares no bytes either. Answers are exact: equal hashes
/// of different keys are told apart by their bytes. The hash seed is random
/// per process, which is safe because it changes no answer, only the layout.
///
/// `S` is the hash function; tests plug in a degenerate one to exercise
/// collisions.
#[derive(Debug, Default)]
pub struct ConflictWindow<S = foldhash::fast::RandomState> {
    index: HashTable<Slot>,
    by_version: VecDeque<VersionWrites>,
    hasher: S,
    keys: usize,
}

/// The stream key a slot points at. Slots only ever point into versions still
/// in the window (eviction removes them with their version).
fn key_of<'a>(by_version: &'a VecDeque<VersionWrites>, slot: &Slot) -> Option<&'a StreamKey> {
    let front = by_version.front()?.version;
    // Versions are usually contiguous, so the position is a subtraction;
    // a binary search covers windows recorded with gaps.
    let at = usize::try_from(slot.version.checked_sub(front)?).ok()?;
    let writes = match by_version.get(at) {
        Some(w) if w.version == slot.version => w,
        _ => {
            let at = by_version
                .binary_search_by_key(&slot.version, |w| w.version)
                .ok()?;
            &by_version[at]
        }
    };
    writes.keys.get(slot.pos as usize).map(|(_, key)| key)
}

fn same_key(
    by_version: &VecDeque<VersionWrites>,
    slot: &Slot,
    stream: &StreamId,
    key: &[u8],
) -> bool {
    key_of(by_version, slot).is_some_and(|(s, k)| s == stream && k.as_slice() == key)
}

impl ConflictWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S: BuildHasher> ConflictWindow<S> {
    /// An empty window hashing keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            index: HashTable::new(),
            by_version: VecDeque::new(),
            hasher,
            keys: 0,
        }
    }

    fn hash(&self, stream: &StreamId, key: &[u8]) -> u64 {
        self.hasher.hash_one((stream, key))
    }

    /// Records that `version` wrote `keys`. Versions must be recorded in increasing order.
    pub fn record(&mut self, version: u64, keys: Vec<StreamKey>) {
        let keys = keys
            .into_iter()
            .map(|(stream, key)| (self.hash(&stream, &key), (stream, key)))
            .collect();
        self.by_version.push_back(VersionWrites { version, keys });
        let Self {
            index,
            by_version,
            keys: count,
            ..
        } = self;
        let Some(latest) = by_version.back() else {
            return;
        };
        for (pos, (hash, (stream, key))) in latest.keys.iter().enumerate() {
            let slot = Slot {
                hash: *hash,
                version,
                pos: pos as u32,
            };
            let found = index.find_mut(*hash, |s| {
                s.hash == *hash && same_key(by_version, s, stream, key)
            });
            match found {
                Some(existing) => *existing = slot,
                None => {
                    index.insert_unique(*hash, slot, |s| s.hash);
                    *count += 1;
                }
            }
        }
    }

    /// Forgets every version at or below `version`.
    pub fn evict_through(&mut self, version: u64) {
        while self
            .by_version
            .front()
            .is_some_and(|w| w.version <= version)
        {
            let Some(writes) = self.by_version.pop_front() else {
                break;
            };
            for (pos, (hash, _)) in writes.keys.iter().enumerate() {
                // The slot still points here only if no later version wrote the key.
                let here = |s: &Slot| s.version == writes.version && s.pos == pos as u32;
                if let Ok(entry) = self.index.find_entry(*hash, here) {
                    entry.remove();
                    self.keys -= 1;
                }
            }
        }
    }

    /// A key `read` covers that was written after `after`, if any: for a
    /// range, the smallest such key, so the answer does not depend on how
    /// the window is laid out.
    pub fn conflict(&self, read: &Read, after: u64) -> Option<StreamKey> {
        match read {
            Read::Key { stream, key } => {
                let hash = self.hash(stream, key);
                let slot = self.index.find(hash, |s| {
                    s.hash == hash && same_key(&self.by_version, s, stream, key)
                })?;
                (slot.version > after).then(|| (*stream, key.clone()))
            }
            Read::Range { stream, start, end } => {
                let in_range =
                    |k: &[u8]| k >= start.as_slice() && end.as_deref().is_none_or(|end| k < end);
                self.by_version
                    .iter()
                    .rev()
                    .take_while(|w| w.version > after)
                    .flat_map(|w| &w.keys)
                    .map(|(_, key)| key)
                    .filter(|(s, k)| s == stream && in_range(k))
                    .map(|(_, k)| k)
                    .min()
                    .map(|k| (*stream, k.clone()))
            }
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::hash::{BuildHasherDefault, Hasher};

    fn key(s: u8, k: &str) -> (StreamId, Vec<u8>) {
        ([s; 32], k.as_bytes().to_vec())
    }

    #[test]
    fn points_and_ranges_see_later_writes_only() {
        let mut w = ConflictWindow::new();
        w.record(5, vec![key(1, "b")]);
        w.record(8, vec![key(1, "d"), key(2, "a")]);
        let point = |k: &str| Read::Key {
            stream: [1; 32],
            key: k.as_bytes().to_vec(),
        };
        let range = |a: &str, b: Option<&str>| Read::Range {
            stream: [1; 32],
            start: a.as_bytes().to_vec(),
            end: b.map(|b| b.as_bytes().to_vec()),
        };
        assert_eq!(w.conflict(&point("b"), 4), Some(key(1, "b")));
        assert_eq!(w.conflict(&point("b"), 5), None);
        assert_eq!(
            w.conflict(&range("a", Some("d")), 5),
            None,
            "end is exclusive"
        );
        assert_eq!(w.conflict(&range("a", None), 5), Some(key(1, "d")));
        assert_eq!(
            w.conflict(&range("e", None), 0),
            None,
            "other streams are not in range"
        );
        w.evict_through(5);
        assert_eq!(w.conflict(&point("b"), 0), None);
        assert_eq!(w.len(), 2);
    }

    /// Every key hashes alike: every probe goes through the byte comparison.
    #[derive(Default)]
    struct Colliding;

    impl Hasher for Colliding {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[derive(Debug, Clone)]
    enum Step {
        Record(Vec<(u8, u8)>),
        Evict(u64),
        Point(u8, u8, u64),
        Range(u8, u8, Option<u8>, u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => prop::collection::vec((0u8..3, 0u8..6), 0..4).prop_map(Step::Record),
            1 => (0u64..30).prop_map(Step::Evict),
            3 => (0u8..3, 0u8..6, 0u64..30).prop_map(|(s, k, v)| Step::Point(s, k, v)),
            2 => (0u8..3, 0u8..6, prop::option::of(0u8..7), 0u64..30)
                .prop_map(|(s, a, b, v)| Step::Range(s, a, b, v)),
        ]
    }

    /// The window's answers against the obvious model: every remembered
    /// (version, key) pair in a list.
    fn check_against_model<S: BuildHasher>(
        mut w: ConflictWindow<S>,
        steps: Vec<Step>,
    ) -> Result<(), TestCaseError> {
        let mut model: BTreeMap<u64, Vec<StreamKey>> = BTreeMap::new();
        let mut version = 0;
        let sk = |s: u8, k: u8| ([s; 32], vec![k]);
        for step in steps {
            match step {
                Step::Record(keys) => {
                    version += 1;
                    let keys: Vec<StreamKey> = keys.into_iter().map(|(s, k)| sk(s, k)).collect();
                    model.insert(version, keys.clone());
                    w.record(version, keys);
                }
                Step::Evict(through) => {
                    model.retain(|v, _| *v > through);
                    w.evict_through(through);
                }
                Step::Point(s, k, after) => {
                    let key = sk(s, k);
                    let expected = model
                        .range(after + 1..)
                        .any(|(_, keys)| keys.contains(&key));
                    let read = Read::Key {
                        stream: key.0,
                        key: key.1.clone(),
                    };
                    prop_assert_eq!(w.conflict(&read, after), expected.then_some(key));
                }
                Step::Range(s, a, b, after) => {
                    let expected = model
                        .range(after + 1..)
                        .flat_map(|(_, keys)| keys)
                        .filter(|(st, k)| *st == [s; 32] && k[0] >= a && b.is_none_or(|b| k[0] < b))
                        .min()
                        .cloned();
                    let read = Read::Range {
                        stream: [s; 32],
                        start: vec![a],
                        end: b.map(|b| vec![b]),
                    };
                    prop_assert_eq!(w.conflict(&read, after), expected);
                }
            }
            let distinct: std::collections::BTreeSet<&StreamKey> =
                model.values().flatten().collect();
            prop_assert_eq!(w.len(), distinct.len());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn answers_like_a_list_of_writes(steps in prop::collection::vec(step(), 0..60)) {
            check_against_model(ConflictWindow::new(), steps)?;
        }

        #[test]
        fn answers_like_a_list_of_writes_when_every_hash_collides(steps in prop::collection::vec(step(), 0..60)) {
            check_against_model(ConflictWindow::with_hasher(BuildHasherDefault::<Colliding>::default()), steps)?;
        }
    }
}
