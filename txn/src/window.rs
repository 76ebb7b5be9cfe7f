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

/// Bytes of a write record before its key: stream (32), key length (4).
const RECORD_HEADER: usize = 32 + 4;

/// The log compacts (drops evicted bytes) once at least this much is dead
/// and the dead part is at least half the buffer, so each byte moves at most
/// about once.
const COMPACT_AFTER_BYTES: usize = 1 << 20;

/// A swept table with room for more than this many times its slots is
/// shrunk, to [`SHRUNK_TABLE_FACTOR`] times them (room to grow again
/// without an immediate resize).
const SPARSE_TABLE_FACTOR: usize = 8;

/// See [`SPARSE_TABLE_FACTOR`].
const SHRUNK_TABLE_FACTOR: usize = 2;

/// Tables this small are never shrunk (not worth a rehash), and sweeps wait
/// for a quarter of this many stale slots even in a smaller table.
const MIN_TABLE_SLOTS: usize = 1024;

/// Where the newest remembered write of one key is: what a hash probe finds.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Hash of (stream, key), kept so the table can grow without rehashing keys.
    hash: u64,
    /// The version that last wrote the key.
    version: u64,
    /// Logical offset of that write's record in the [`WriteLog`].
    at: u64,
}

/// The versions' write sets, oldest first, as one byte log of records
/// `stream | key length u32 | key`.
///
/// One buffer instead of a heap allocation per key: recording a write is a
/// copy onto the end, reading a remembered key is one memory access at a
/// known offset, and eviction only moves the start. Offsets are logical
/// (they count every byte ever appended), so they stay valid when the
/// evicted prefix is finally dropped.
#[derive(Debug, Default)]
struct WriteLog {
    bytes: Vec<u8>,
    /// Logical offset of `bytes[0]`.
    base: u64,
}

/// One write record, borrowed from the log.
struct Record<'a> {
    stream: &'a [u8],
    key: &'a [u8],
    /// Logical offset of the next record.
    next: u64,
}

impl WriteLog {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    fn append(&mut self, stream: &StreamId, key: &[u8]) -> u64 {
        let at = self.end();
        self.bytes.extend_from_slice(stream);
        // Keys are at most MAX_KEY_BYTES (4 KiB), far below u32::MAX.
        self.bytes
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(key);
        at
    }

    /// The record at logical offset `at` (None only if `at` is not a record
    /// this log still holds, which the window never asks for).
    fn record(&self, at: u64) -> Option<Record<'_>> {
        let start = usize::try_from(at.checked_sub(self.base)?).ok()?;
        let header = self.bytes.get(start..start.checked_add(RECORD_HEADER)?)?;
        let (stream, len) = header.split_at(32);
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let key_start = start + RECORD_HEADER;
        let key = self.bytes.get(key_start..key_start.checked_add(len)?)?;
        Some(Record {
            stream,
            key,
            next: at + (RECORD_HEADER + len) as u64,
        })
    }

    /// Whether `slot` (found under `hash`) is the slot of exactly this
    /// key: hashes alone may collide, so the bytes decide.
    fn slot_holds(&self, slot: &Slot, hash: u64, stream: &StreamId, key: &[u8]) -> bool {
        slot.hash == hash
            && self
                .record(slot.at)
                .is_some_and(|r| r.stream == stream.as_slice() && r.key == key)
    }

    /// The records from `start` up to `end`, in order.
    fn records(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, Record<'_>)> {
        let mut at = start;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let record = self.record(at)?;
            let here = at;
            at = record.next;
            Some((here, record))
        })
    }

    /// Bytes held before logical offset `live`.
    fn dead_before(&self, live: u64) -> usize {
        let dead = usize::try_from(live.saturating_sub(self.base)).unwrap_or(usize::MAX);
        dead.min(self.bytes.len())
    }

    /// Whether enough bytes before logical offset `live` are dead to be
    /// worth dropping.
    fn worth_releasing(&self, live: u64) -> bool {
        let dead = self.dead_before(live);
        dead >= COMPACT_AFTER_BYTES && dead >= self.bytes.len() / 2
    }

    /// Drops the bytes before logical offset `live`.
    fn release_before(&mut self, live: u64) {
        let dead = self.dead_before(live);
        self.bytes.drain(..dead);
        self.base += dead as u64;
    }
}

/// The span of the log that one version wrote.
#[derive(Debug, Clone, Copy)]
struct VersionSpan {
    version: u64,
    start: u64,
    end: u64,
    /// Records in the span (keys the version wrote).
    records: usize,
}

/// Last write version of each recently written key.
///
/// Point reads are checked with one hash probe; range reads by walking the
/// write sets of the versions after the read version, newest first, which is
/// short for the fresh snapshots most transactions read at (and bounded by
/// the window for stale ones).
///
/// Both sit on the per-transaction path of replay, so the layout keeps
/// per-key work to one hash and few memory accesses: the table maps a key's
/// hash to a `Slot` (version and log offset), and the key bytes sit once,
/// in the `WriteLog`. A probe compares key bytes only when the hash
/// matches, so a read of a key outside the window (the common case) touches
/// no key memory; a point read compares them only for a slot written after
/// its snapshot, so neither does a read of a key last written before it.
/// Answers are exact: equal hashes of different keys are told
/// apart by their bytes. The hash seed is random per process, which is safe
/// because it changes no answer, only the layout.
///
/// Eviction is lazy: forgetting a version only raises the window's floor,
/// and a slot at or below the floor reads as absent (or is reused when its
/// key is written again). The stale slots are swept out in one pass over the
/// table once they could be a quarter of it (and are at least a quarter of
/// `MIN_TABLE_SLOTS`), and always before the log drops the bytes they
/// point at; a mostly empty table is shrunk then too. A sweep reads the table in order, which costs far
/// less than the one random probe per evicted key that eager removal took
/// (about a fifth of the window's time in the replay benchmark's profile).
///
/// `S` is the hash function; tests plug in a degenerate one to exercise
/// collisions.
#[derive(Debug, Default)]
pub struct ConflictWindow<S = foldhash::fast::RandomState> {
    index: HashTable<Slot>,
    log: WriteLog,
    versions: VecDeque<VersionSpan>,
    /// Every version at or below this is forgotten.
    floor: u64,
    /// Records evicted since the last sweep: at least the number of stale
    /// slots in the table (a key written again since is counted but has no
    /// stale slot).
    evicted_records: usize,
    hasher: S,
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
            log: WriteLog::default(),
            versions: VecDeque::new(),
            floor: 0,
            evicted_records: 0,
            hasher,
        }
    }

    fn hash(&self, stream: &StreamId, key: &[u8]) -> u64 {
        self.hasher.hash_one((stream, key))
    }

    /// Records that `version` wrote `keys`. Versions must be recorded in increasing order.
    pub fn record<'a>(
        &mut self,
        version: u64,
        keys: impl IntoIterator<Item = (&'a StreamId, &'a [u8])>,
    ) {
        let start = self.log.end();
        let mut records = 0;
        for (stream, key) in keys {
            records += 1;
            let hash = self.hash(stream, key);
            let at = self.log.append(stream, key);
            let slot = Slot { hash, version, at };
            let log = &self.log;
            match self
                .index
                .find_mut(hash, |s| log.slot_holds(s, hash, stream, key))
            {
                Some(existing) => *existing = slot,
                None => {
                    self.index.insert_unique(hash, slot, |s| s.hash);
                }
            }
        }
        let end = self.log.end();
        self.versions.push_back(VersionSpan {
            version,
            start,
            end,
            records,
        });
    }

    /// Forgets every version at or below `version`, for good: a version at
    /// or below it recorded later is forgotten too.
    pub fn evict_through(&mut self, version: u64) {
        self.floor = self.floor.max(version);
        while let Some(span) = self.versions.front() {
            if span.version > self.floor {
                break;
            }
            self.evicted_records += span.records;
            self.versions.pop_front();
        }
        let live = self
            .versions
            .front()
            .map_or(self.log.end(), |span| span.start);
        let release = self.log.worth_releasing(live);
        // A sweep costs a pass over the table: wait for stale slots worth a
        // quarter of it (of at least a small table's worth of slots).
        let many_stale =
            self.evicted_records.saturating_mul(4) >= self.index.len().max(MIN_TABLE_SLOTS);
        if release || many_stale {
            self.sweep();
        }
        if release {
            self.log.release_before(live);
        }
    }

    /// Removes the slots of forgotten versions. Afterwards every slot points
    /// into a version the window still holds, so at or after the first
    /// live record of the log.
    ///
    /// A sweep visits every bucket, so the table is also shrunk when mostly
    /// empty: otherwise, after a burst of distinct keys, a window of a few
    /// hot keys would sweep the burst's whole table at almost every version.
    fn sweep(&mut self) {
        let floor = self.floor;
        self.index.retain(|slot| slot.version > floor);
        self.evicted_records = 0;
        let live = self.index.len();
        if self.index.capacity() > SPARSE_TABLE_FACTOR * live.max(MIN_TABLE_SLOTS) {
            self.index
                .shrink_to(SHRUNK_TABLE_FACTOR * live, |slot| slot.hash);
        }
    }

    /// A key `read` covers that was written after `after`, if any: for a
    /// range, the smallest such key, so the answer does not depend on how
    /// the window is laid out.
    pub fn conflict(&self, read: &Read, after: u64) -> Option<StreamKey> {
        let after = after.max(self.floor);
        match read {
            Read::Key { stream, key } => {
                let hash = self.hash(stream, key);
                // The key's slot, if any, matters only when written after
                // `after`: test that first, so that a key last written before
                // the read (the common hit) costs no look at its bytes.
                let written_after =
                    |s: &Slot| s.version > after && self.log.slot_holds(s, hash, stream, key);
                self.index
                    .find(hash, written_after)
                    .map(|_| (*stream, key.clone()))
            }
            Read::Range { stream, start, end } => {
                let in_range =
                    |k: &[u8]| k >= start.as_slice() && end.as_deref().is_none_or(|end| k < end);
                self.versions
                    .iter()
                    .rev()
                    .take_while(|span| span.version > after)
                    .flat_map(|span| self.log.records(span.start, span.end))
                    .map(|(_, record)| record)
                    .filter(|r| r.stream == stream.as_slice() && in_range(r.key))
                    .map(|r| r.key)
                    .min()
                    .map(|k| (*stream, k.to_vec()))
            }
        }
    }

    /// Number of keys remembered (a pass over the table: for tests and
    /// reports, not for the per-transaction path).
    pub fn len(&self) -> usize {
        self.index.iter().filter(|s| s.version > self.floor).count()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let five = [key(1, "b")];
        let eight = [key(1, "d"), key(2, "a")];
        w.record(5, five.iter().map(|(s, k)| (s, k.as_slice())));
        w.record(8, eight.iter().map(|(s, k)| (s, k.as_slice())));
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

    #[test]
    fn answers_stay_right_after_the_log_drops_evicted_bytes() {
        let mut w = ConflictWindow::new();
        let key = |i: u64| {
            let mut k = i.to_be_bytes().to_vec();
            k.resize(1024, 7);
            k
        };
        let stream = [3u8; 32];
        for v in 1..=3000 {
            w.record(v, [(&stream, key(v).as_slice())]);
        }
        w.evict_through(2000);
        assert!(w.log.base > 0, "the evicted prefix was dropped");
        let read = |i: u64| Read::Key {
            stream,
            key: key(i),
        };
        assert_eq!(w.conflict(&read(1500), 0), None);
        assert_eq!(w.conflict(&read(2500), 2499), Some((stream, key(2500))));
        assert_eq!(w.conflict(&read(2500), 2500), None);
        assert_eq!(w.len(), 1000);
        // A key forgotten before the drop is remembered afresh when written again.
        w.record(3001, [(&stream, key(1500).as_slice())]);
        assert_eq!(w.conflict(&read(1500), 3000), Some((stream, key(1500))));
        w.evict_through(3000);
        assert_eq!(w.len(), 1);
        w.evict_through(3001);
        assert!(w.is_empty());
    }

    #[test]
    fn a_drained_table_shrinks_so_sweeps_stay_cheap() {
        let mut w = ConflictWindow::new();
        let stream = [5u8; 32];
        let burst = 100_000u64;
        for v in 1..=burst {
            w.record(v, [(&stream, v.to_be_bytes().as_slice())]);
        }
        let grown = w.index.capacity();
        assert!(grown >= burst as usize);
        // From here on one hot key is written at every version.
        for v in burst + 1..=burst + 2 * burst {
            w.record(v, [(&stream, b"hot".as_slice())]);
            w.evict_through(v - 10);
        }
        assert_eq!(w.len(), 1);
        assert!(
            w.index.capacity() < grown / 8,
            "capacity {} after draining a table of {grown}",
            w.index.capacity()
        );
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
        /// A sweep out of turn: the window sweeps on its own only once
        /// hundreds of slots are stale, more than these cases write.
        Sweep,
        Point(u8, u8, u64),
        Range(u8, u8, Option<u8>, u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => prop::collection::vec((0u8..3, 0u8..6), 0..4).prop_map(Step::Record),
            1 => (0u64..30).prop_map(Step::Evict),
            1 => Just(Step::Sweep),
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
        let mut floor = 0;
        let sk = |s: u8, k: u8| ([s; 32], vec![k]);
        for step in steps {
            match step {
                Step::Record(keys) => {
                    version += 1;
                    let keys: Vec<StreamKey> = keys.into_iter().map(|(s, k)| sk(s, k)).collect();
                    w.record(version, keys.iter().map(|(s, k)| (s, k.as_slice())));
                    if version > floor {
                        model.insert(version, keys);
                    }
                }
                Step::Sweep => w.sweep(),
                Step::Evict(through) => {
                    floor = floor.max(through);
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
