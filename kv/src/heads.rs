//! Each data key's newest version in a column of its own, so that a scan
//! at a recent version reads one row per key whatever the key's history.
//!
//! # Why
//!
//! The data column keeps every retained version of a key, newest first
//! (see [`crate::keys`]). A scan at the newest version takes a key's first
//! row, then must get past the rest of that key's history to reach the
//! next key: one seek per key once the history is deep, about 2 µs on a
//! settled tree against 0.13 µs for a row read in sequence
//! (docs/BENCHMARKS.md, "Retention"). The cure is a layout in which each
//! key's newest version sits next to the next key's: [`Column::Heads`].
//! Writing that row beside every version, on replay's path, cost attested
//! replay about 30% of its throughput (same page), so replay does not write
//! it. A maintenance pass does, off replay's path and one row per key
//! however often the key was written since the last pass; scans make up
//! for what the passes have not reached yet.
//!
//! # The rules
//!
//! 1. **Covered.** The column holds, under each data key's prefix, the
//!    key's newest version at or below the *covered* version `C`,
//!    tombstones included; a key with no version at or below `C` (never
//!    written, or swept whole) has no row. `C` is stored in the same column
//!    under the empty key, in the same batch as the rows it covers.
//! 2. **Noted.** Every batch that goes through [`crate::MvccStore::write`]
//!    has its data puts noted in memory once the engine took it and before
//!    anyone may read at its versions. A noted key is *pending* until a
//!    pass wrote its row: a pass takes the pending notes, reads each key's
//!    newest version at `C'` (the newest version noted, or `C`), writes the
//!    rows and `C'`, and only then drops those notes and publishes `C'`.
//! 3. **Read.** A scan at `at` walks the heads rows of its range, merged
//!    with the pending keys of its range: a pending key, or a row newer than
//!    `at`, is read from the data column as a point read at `at`; any other
//!    row is the answer. That holds for any `at`, above `C` or below it (a
//!    paged scan keeps its snapshot while passes go on), but far below `C`
//!    most keys would need a point read, so a scan more than
//!    [`HEADS_SNAPSHOT_WINDOW`] versions below `C` walks the data column, as
//!    does every scan while the heads are not ready.
//!
//! # Why a scan's answer is right
//!
//! Take a key `k` that a scan at `at` meets, with the pending notes it
//! copied when it started. Every version at or below `at` was written and
//! noted before then (reads happen only at published versions). If `k` was
//! pending, the scan reads the data column. If not, each noted write of `k`
//! at or below `at` was taken by a pass published before the scan started.
//! Let `P` be the last pass published then that took a write of `k`: its
//! row is `k`'s newest version at or below its `C'`, and no write of `k`
//! lies between its `C'` and `at` (such a write would have been pending, or
//! taken by a later pass). So if `P`'s row is at or below `at`, it is `k`'s
//! newest version at `at`; and if `P` removed the row (it does so only when
//! `k` has no version at or below its `C'`, every one swept) `k` has none.
//! A pass after `P` touches `k`'s row only for a write noted after the scan
//! started, hence above `at`: the scan then finds a row newer than `at` and
//! reads the data column, or finds the row removed, which means that write
//! was swept, so the horizon passed `at` and the scan's check of the
//! horizon after reading refuses it. A tombstone row that collection
//! removes is at or below the horizon, and `k` reads as absent at `at`
//! with or without it.
//!
//! # Bounds and restarts
//!
//! At most [`MAX_PENDING_KEYS`] notes wait. Past that the heads are
//! *stale*: notes stop, scans walk the data column, and the next pass
//! rebuilds the column from the data column (one seek per key). Notes live
//! in memory, so a store opened with `C` below its newest write (a process
//! killed between passes) starts stale as well. The heads are not state:
//! no digest covers them, and two replicas may hold them at different `C`.
//!
//! Their owner may also [retire](Heads::retire) them (make them stale on
//! purpose): stale heads take no notes, so a store nobody scans pays
//! nothing for them. [`Heads::scans`] counts the scans that asked for them,
//! which is what a node decides by (`heads_keeper` in the server).

use crate::engine::{BatchOp, Column, Engine};
use crate::keys::VERSION_BYTES;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most noted keys waiting for a pass. Each costs its versioned key in
/// memory (about 50 bytes for a short key), and a scan filters the notes
/// of its range out of all of them: at this bound about 3 MiB, and a few
/// hundred microseconds added to a scan in the worst case. A node's pass
/// runs every [`HEADS_TICK_MS`], far below this at any write rate replay
/// reaches.
pub const MAX_PENDING_KEYS: usize = 1 << 16;

/// How far below the covered version a scan still goes through the heads.
/// Every key written between its snapshot and `C` costs such a scan a
/// point read (about 1-2 µs, against 0.13 µs per row the heads give), so
/// a snapshot far behind is better served by the data column; this many
/// versions is several seconds of replay at full speed, which covers the
/// pages of a scan that a client reads one after another.
pub const HEADS_SNAPSHOT_WINDOW: u64 = 100_000;

/// How often a node runs a pass ([`crate::MvccStore::maintain_heads`]): the lag
/// behind replay that scans make up for with point reads.
pub const HEADS_TICK_MS: u64 = 50;

/// Where `C` is stored: the empty key sorts before every key prefix (each
/// starts with a 32-byte stream id).
pub(crate) const COVERED_KEY: &[u8] = b"";

/// A versioned key's prefix and version.
pub(crate) fn split_versioned(key: &[u8]) -> (&[u8], u64) {
    let (prefix, version) = key.split_at(key.len() - VERSION_BYTES);
    let version = !u64::from_be_bytes(version.try_into().expect("eight bytes"));
    (prefix, version)
}

/// The versioned keys of one batch's data puts, end to end in one buffer
/// (two allocations per batch, whatever its size).
#[derive(Debug, Default)]
pub(crate) struct Noted {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    newest: u64,
}

impl Noted {
    /// The data puts of `ops`; `None` if it has none.
    pub(crate) fn of(ops: &[BatchOp]) -> Option<Self> {
        let mut noted = Noted::default();
        for op in ops {
            if let BatchOp::Put(Column::Data, key, _) = op
                && key.len() >= VERSION_BYTES
            {
                noted.bytes.extend_from_slice(key);
                noted.ends.push(noted.bytes.len());
                noted.newest = noted.newest.max(split_versioned(key).1);
            }
        }
        (!noted.ends.is_empty()).then_some(noted)
    }

    /// The newest version of `ops`'s data puts (0: none), noting nothing.
    pub(crate) fn newest_of(ops: &[BatchOp]) -> u64 {
        let versions = ops.iter().filter_map(|op| match op {
            BatchOp::Put(Column::Data, key, _) if key.len() >= VERSION_BYTES => {
                Some(split_versioned(key).1)
            }
            _ => None,
        });
        versions.max().unwrap_or(0)
    }

    /// The newest version noted.
    pub(crate) fn newest(&self) -> u64 {
        self.newest
    }

    /// The versioned keys, in the batch's order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }
}

/// Whether scans may use the heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadsPhase {
    /// The column covers every version up to `covered`; notes wait for
    /// the rest.
    Ready {
        /// The covered version `C`.
        covered: u64,
    },
    /// Notes were lost or dropped: the next pass rebuilds.
    Stale,
    /// A rebuild is under way; notes are kept for after it.
    Rebuilding,
}

#[derive(Debug)]
struct Pending {
    phase: HeadsPhase,
    noted: VecDeque<Arc<Noted>>,
    keys: usize,
    /// The newest version noted, or written when the store was opened: a
    /// rebuild covers up to it.
    written: u64,
}

/// The heads' state in memory: the phase and the pending notes. See the
/// module documentation.
#[derive(Debug)]
pub struct Heads {
    pending: Mutex<Pending>,
    /// Whether writes are noted (the phase is not stale), readable without
    /// the lock so that a write to stale heads copies nothing.
    noting: AtomicBool,
    /// Held by a pass or a rebuild, so that one runs at a time.
    maintenance: Mutex<()>,
    passes: AtomicU64,
    rebuilds: AtomicU64,
    /// Scans that asked for the heads, served or not.
    scans: AtomicU64,
}

/// How the heads stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadsStats {
    /// Ready (with the covered version), stale or rebuilding.
    pub phase: HeadsPhase,
    /// Noted keys waiting for a pass.
    pub pending_keys: u64,
    /// Passes that wrote rows since the store was opened.
    pub passes: u64,
    /// Rebuilds since the store was opened.
    pub rebuilds: u64,
}

/// What one call of [`crate::MvccStore::maintain_heads`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadsStep {
    /// Nothing was pending and nothing was stale.
    Idle,
    /// A pass wrote the rows of `keys` keys and covers `covered`.
    Advanced {
        /// Keys whose rows were written.
        keys: usize,
        /// The covered version now.
        covered: u64,
    },
    /// A rebuild wrote the rows of `keys` keys and covers `covered`.
    Rebuilt {
        /// Keys whose rows were written.
        keys: usize,
        /// The covered version now.
        covered: u64,
    },
}

impl Heads {
    /// The heads of a store whose newest write has version `written`:
    /// ready if the stored `C` is that version, stale otherwise.
    pub(crate) fn open(engine: &impl Engine, written: u64) -> Self {
        let stored = engine.get(Column::Heads, COVERED_KEY).ok().flatten();
        let covered = match stored {
            Some(bytes) => bytes.try_into().ok().map(u64::from_be_bytes),
            None => Some(0),
        };
        let phase = match covered == Some(written) {
            true => HeadsPhase::Ready { covered: written },
            false => HeadsPhase::Stale,
        };
        Self {
            pending: Mutex::new(Pending {
                phase,
                noted: VecDeque::new(),
                keys: 0,
                written,
            }),
            noting: AtomicBool::new(phase != HeadsPhase::Stale),
            maintenance: Mutex::new(()),
            passes: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
            scans: AtomicU64::new(0),
        }
    }

    /// Moves to `phase`; stale heads drop their notes and take no more.
    fn enter(&self, pending: &mut Pending, phase: HeadsPhase) {
        pending.phase = phase;
        self.noting
            .store(phase != HeadsPhase::Stale, Ordering::SeqCst);
        if phase == HeadsPhase::Stale {
            pending.noted.clear();
            pending.keys = 0;
        }
    }

    /// Whether writes should be noted: false while stale, so that replay
    /// then copies nothing. A write that skipped its note tells
    /// [`Heads::note`] so, which makes the heads stale if they left that
    /// phase meanwhile.
    pub(crate) fn noting(&self) -> bool {
        self.noting.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every change under the lock leaves the state whole.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a batch the engine took (rule 2); past [`MAX_PENDING_KEYS`]
    /// the heads go stale instead.
    /// `newest` is the newest data version the batch wrote (0: none);
    /// `noted` its notes, `None` if it was written while not [noting].
    ///
    /// [noting]: Heads::noting
    pub(crate) fn note(&self, noted: Option<Noted>, newest: u64) {
        if newest == 0 {
            return;
        }
        let mut pending = self.lock();
        pending.written = pending.written.max(newest);
        match noted {
            _ if pending.phase == HeadsPhase::Stale => {}
            // A rebuild began after the batch skipped its note: the
            // rebuild may not have seen it, and no pass will.
            None => self.enter(&mut pending, HeadsPhase::Stale),
            Some(noted) if pending.keys + noted.ends.len() > MAX_PENDING_KEYS => {
                self.enter(&mut pending, HeadsPhase::Stale)
            }
            Some(noted) => {
                pending.keys += noted.ends.len();
                pending.noted.push_back(Arc::new(noted));
            }
        }
    }

    /// Gives the heads up until a rebuild: no notes, no passes, scans walk
    /// the data column. A node does so when no scan asked for them for a
    /// while, so that a store nobody scans pays nothing for them.
    pub fn retire(&self) {
        let mut pending = self.lock();
        if pending.phase != HeadsPhase::Stale {
            self.enter(&mut pending, HeadsPhase::Stale);
        }
    }

    /// Scans that asked for the heads since the store was opened (all but
    /// [`crate::MvccStore::scan_for_upkeep`]'s).
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    /// The pending notes a scan at `at` merges with the rows, if the heads
    /// cover `at` (rule 3); the scan is counted as asking for them if it
    /// `asks`.
    pub(crate) fn view(&self, at: u64, asks: bool) -> Option<Vec<Arc<Noted>>> {
        if asks {
            self.scans.fetch_add(1, Ordering::Relaxed);
        }
        let pending = self.lock();
        match pending.phase {
            HeadsPhase::Ready { covered }
                if at.saturating_add(HEADS_SNAPSHOT_WINDOW) >= covered =>
            {
                Some(pending.noted.iter().cloned().collect())
            }
            _ => None,
        }
    }

    /// Holds off every other pass and rebuild while the guard lives.
    pub(crate) fn one_at_a_time(&self) -> MutexGuard<'_, ()> {
        self.maintenance.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The phase now.
    pub fn phase(&self) -> HeadsPhase {
        self.lock().phase
    }

    /// What a pass takes (rule 2): every pending note, the covered version
    /// `C`, and `C'`; `None` if the heads are not ready or nothing waits.
    pub(crate) fn pass_work(&self) -> Option<(Vec<Arc<Noted>>, u64, u64)> {
        let pending = self.lock();
        let HeadsPhase::Ready { covered } = pending.phase else {
            return None;
        };
        let upto = pending.noted.iter().map(|n| n.newest).max()?;
        Some((
            pending.noted.iter().cloned().collect(),
            covered,
            upto.max(covered),
        ))
    }

    /// Publishes a pass that took `taken` at `covered` and wrote the rows
    /// at `upto`: drops those notes, covers `upto`. Unless the heads went
    /// stale meanwhile (their notes are gone already).
    pub(crate) fn pass_done(&self, taken: &[Arc<Noted>], covered: u64, upto: u64) {
        let mut pending = self.lock();
        if pending.phase != (HeadsPhase::Ready { covered }) {
            return;
        }
        for noted in taken {
            let front = pending.noted.pop_front();
            debug_assert!(front.is_some_and(|f| Arc::ptr_eq(&f, noted)));
            pending.keys -= noted.ends.len();
        }
        self.enter(&mut pending, HeadsPhase::Ready { covered: upto });
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a rebuild of stale heads: the version it covers (the newest
    /// written), or `None` if they are not stale.
    pub(crate) fn rebuild_start(&self) -> Option<u64> {
        let mut pending = self.lock();
        if pending.phase != HeadsPhase::Stale {
            return None;
        }
        self.enter(&mut pending, HeadsPhase::Rebuilding);
        Some(pending.written)
    }

    /// Ends a rebuild started at `at`: ready at `at` if it `succeeded` and
    /// nothing made the heads stale meanwhile; stale otherwise.
    pub(crate) fn rebuild_done(&self, at: u64, succeeded: bool) {
        let mut pending = self.lock();
        match (succeeded, pending.phase) {
            (true, HeadsPhase::Rebuilding) => {
                self.enter(&mut pending, HeadsPhase::Ready { covered: at });
                self.rebuilds.fetch_add(1, Ordering::Relaxed);
            }
            (true, _) => {}
            (false, _) => self.enter(&mut pending, HeadsPhase::Stale),
        }
    }

    /// How the heads stand.
    pub fn stats(&self) -> HeadsStats {
        let pending = self.lock();
        HeadsStats {
            phase: pending.phase,
            pending_keys: pending.keys as u64,
            passes: self.passes.load(Ordering::Relaxed),
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteBatch;
    use crate::keys::{encode_key_prefix, encode_versioned};
    use crate::row::{encode_head, encode_value, tombstone_version};

    #[test]
    fn a_batch_notes_its_data_puts_and_their_newest_version() {
        let mut batch = WriteBatch::default();
        batch.put(Column::Data, encode_versioned(&[1; 32], b"a", 7), vec![1]);
        batch.put(Column::Acl, encode_versioned(&[1; 32], b"b", 9), vec![1]);
        batch.put(Column::Data, encode_versioned(&[2; 32], b"c", 8), vec![0]);
        batch.put(Column::Meta, b"applied".to_vec(), vec![]);
        let noted = Noted::of(&batch.ops).expect("two data puts");
        let keys: Vec<_> = noted.keys().map(split_versioned).collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].1, 7);
        assert_eq!(keys[1].0, encode_key_prefix(&[2; 32], b"c").as_slice());
        assert_eq!(noted.newest, 8);
        assert!(Noted::of(&[BatchOp::Put(Column::Meta, vec![], vec![])]).is_none());
    }

    #[test]
    fn only_a_heads_tombstone_has_a_tombstone_version() {
        assert_eq!(
            tombstone_version(&encode_head(5, &encode_value(None))),
            Some(5)
        );
        assert_eq!(
            tombstone_version(&encode_head(5, &encode_value(Some(b"")))),
            None
        );
        assert_eq!(
            tombstone_version(&5u64.to_be_bytes()),
            None,
            "the covered version"
        );
    }

    #[test]
    fn a_pass_publishes_only_if_the_heads_stayed_ready() {
        let heads = Heads::open(&crate::MemEngine::new(), 0);
        let put = |v| BatchOp::Put(Column::Data, encode_versioned(&[1; 32], b"k", v), vec![1]);
        heads.note(Noted::of(&[put(3)]), 3);
        let (taken, covered, upto) = heads.pass_work().expect("work");
        assert_eq!((taken.len(), covered, upto), (1, 0, 3));
        heads.note(Noted::of(&[put(4)]), 4);
        heads.pass_done(&taken, covered, upto);
        let stats = heads.stats();
        assert_eq!(stats.phase, HeadsPhase::Ready { covered: 3 });
        assert_eq!(
            stats.pending_keys, 1,
            "the note taken after the pass began waits"
        );
        let (taken, covered, upto) = heads.pass_work().expect("work");
        heads.rebuild_done(0, false);
        heads.pass_done(&taken, covered, upto);
        assert_eq!(
            heads.phase(),
            HeadsPhase::Stale,
            "a stale column stays stale"
        );
        assert_eq!(heads.rebuild_start(), Some(4));
        heads.rebuild_done(4, true);
        assert_eq!(heads.phase(), HeadsPhase::Ready { covered: 4 });
    }

    #[test]
    fn retired_heads_note_nothing_and_a_note_skipped_during_a_rebuild_makes_them_stale() {
        let heads = Heads::open(&crate::MemEngine::new(), 0);
        let put = |v| BatchOp::Put(Column::Data, encode_versioned(&[1; 32], b"k", v), vec![1]);
        assert!(heads.noting());
        heads.retire();
        assert!(!heads.noting(), "retired heads take no notes");
        heads.note(None, 7);
        assert_eq!(
            heads.rebuild_start(),
            Some(7),
            "the rebuild covers the newest write"
        );
        assert!(heads.noting(), "a rebuild keeps what is written meanwhile");
        heads.note(None, 8);
        heads.rebuild_done(7, true);
        assert_eq!(
            heads.phase(),
            HeadsPhase::Stale,
            "version 8 was never noted"
        );
        assert_eq!(heads.rebuild_start(), Some(8));
        heads.note(Noted::of(&[put(9)]), 9);
        heads.rebuild_done(8, true);
        let stats = heads.stats();
        assert_eq!(stats.phase, HeadsPhase::Ready { covered: 8 });
        assert_eq!(stats.pending_keys, 1);
    }

    #[test]
    fn too_many_pending_keys_make_the_heads_stale_and_free_the_notes() {
        let heads = Heads::open(&crate::MemEngine::new(), 0);
        let mut ops = Vec::new();
        for i in 0..MAX_PENDING_KEYS as u32 {
            let key = encode_versioned(&[1; 32], &i.to_be_bytes(), 1);
            ops.push(BatchOp::Put(Column::Data, key, vec![1]));
        }
        heads.note(Noted::of(&ops), 1);
        assert_eq!(heads.stats().pending_keys, MAX_PENDING_KEYS as u64);
        heads.note(Noted::of(&ops[..1]), 1);
        let stats = heads.stats();
        assert_eq!((stats.phase, stats.pending_keys), (HeadsPhase::Stale, 0));
        assert!(
            heads.view(1, true).is_none(),
            "a stale column serves no scan"
        );
    }
}
