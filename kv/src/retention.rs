//! Retention: the horizon below which history is no longer kept, and the
//! rule an engine follows to remove what the horizon gave up.
//!
//! # The horizon
//!
//! The store's *horizon* `H` is the oldest version it answers reads at.
//! Whoever owns the store decides it (replay reads it from the log, so every
//! replica agrees) and raises it with [`crate::MvccStore::advance_horizon`];
//! it never goes down. A read at a version below `H` is refused with
//! [`crate::MvccError::Compacted`], naming `H`.
//!
//! # What may be removed
//!
//! A read at `V >= H` sees, for each key, its newest version at or below
//! `V`. Every version older than the key's newest version at or below `H`
//! is therefore invisible to every read the store still answers: it is
//! *shadowed*, and collection removes it. The newest version at or below
//! `H` stays, unless it is a tombstone with nothing older left, in which
//! case the key reads as absent with or without it (a read reports a
//! tombstone at or below `H` as absence, so that removing it changes no
//! answer).
//!
//! Change records (the [`crate::Column::Changes`] column, keyed by the
//! big-endian version of the newest commit they describe) below `H` only
//! describe versions below `H`, and go too.
//!
//! # Who removes
//!
//! An engine applies [`Collector`] to its rows in key order, when it likes:
//! RocksDB inside its own compactions (so collection costs no extra pass
//! over the data and never holds up a write), the in-memory engine in
//! [`crate::Engine::collect`]. Collection never changes an answer at or
//! above the horizon, so replicas that collected different amounts report
//! the same state.
//!
//! A tombstone can only go once the collector is sure nothing older of its
//! key exists anywhere: RocksDB knows that only in a compaction that takes
//! in every file (`full`), which [`crate::Engine::collect`] asks for.

use crate::keys::VERSION_BYTES;

/// What collection does with a column's rows (see
/// [`crate::Column::collected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collected {
    /// Versioned rows: shadowed versions go.
    Versions,
    /// Change records keyed by version: those below the horizon go.
    ChangeRecords,
    /// Heads rows ([`crate::heads`]): a tombstone at or below the horizon
    /// goes in a pass that sees every row (a read at or above the horizon
    /// finds the key absent with or without it; a partial pass could let
    /// an older row of the same key show through).
    HeadTombstones,
    /// Nothing is ever collected.
    Never,
}

/// Decides, row after row in key order, which rows of one pass may be
/// removed. One collector serves one pass (a RocksDB compaction, or one
/// [`crate::Engine::collect`] of a column): it remembers the key it is in.
#[derive(Debug, Clone)]
pub struct Collector {
    horizon: u64,
    full: bool,
    /// The key prefix (stream and key) of the last versioned row seen.
    prefix: Vec<u8>,
    /// Whether that key's newest version at or below the horizon was seen
    /// in this pass: every older version is shadowed.
    shadowed: bool,
}

impl Collector {
    /// A collector for one pass at `horizon`; `full` when the pass sees
    /// every stored row of the column (then tombstones may go too).
    pub fn new(horizon: u64, full: bool) -> Self {
        Self {
            horizon,
            full,
            prefix: Vec::new(),
            shadowed: false,
        }
    }

    /// Whether the row (`key`, `value`) of a column whose rows are
    /// `collected` so may be removed. Rows must come in key order within
    /// the pass.
    pub fn removes(&mut self, collected: Collected, key: &[u8], value: &[u8]) -> bool {
        match collected {
            Collected::Versions => self.removes_version(key, value),
            Collected::ChangeRecords => {
                change_record_version(key).is_some_and(|v| v < self.horizon)
            }
            Collected::HeadTombstones => {
                self.full && crate::row::tombstone_version(value).is_some_and(|v| v <= self.horizon)
            }
            Collected::Never => false,
        }
    }

    fn removes_version(&mut self, key: &[u8], value: &[u8]) -> bool {
        let Some(split) = key.len().checked_sub(VERSION_BYTES) else {
            return false; // not a versioned key: never ours to judge
        };
        let (prefix, version) = key.split_at(split);
        let version = !u64::from_be_bytes(version.try_into().expect("eight bytes"));
        if prefix != self.prefix.as_slice() {
            self.prefix.clear();
            self.prefix.extend_from_slice(prefix);
            self.shadowed = false;
        }
        if version > self.horizon {
            return false;
        }
        if self.shadowed {
            return true;
        }
        self.shadowed = true;
        self.full && crate::row::is_tombstone(value)
    }
}

/// The version a change record's key names (None for a key of another
/// shape, which is kept).
fn change_record_version(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::encode_versioned;
    use crate::row::encode_value;

    /// A stored row: key, version, value (None: a tombstone).
    type StoredRow<'a> = (&'a [u8], u64, Option<&'a [u8]>);

    fn pass(horizon: u64, full: bool, rows: &[StoredRow]) -> Vec<bool> {
        let mut collector = Collector::new(horizon, full);
        let mut rows: Vec<_> = rows
            .iter()
            .map(|(k, v, value)| (encode_versioned(&[1; 32], k, *v), encode_value(*value)))
            .collect();
        rows.sort();
        rows.iter()
            .map(|(k, v)| collector.removes(Collected::Versions, k, v))
            .collect()
    }

    #[test]
    fn versions_shadowed_at_the_horizon_go_and_the_visible_one_stays() {
        // Newest first: 30 (above), 20 (visible at 25), 10 (shadowed).
        let removed = pass(
            25,
            false,
            &[
                (b"k", 10, Some(b"a")),
                (b"k", 20, Some(b"b")),
                (b"k", 30, Some(b"c")),
            ],
        );
        assert_eq!(removed, [false, false, true]);
    }

    #[test]
    fn a_tombstone_at_the_horizon_goes_only_in_a_full_pass() {
        let rows: &[StoredRow] = &[(b"k", 5, Some(b"a")), (b"k", 9, None)];
        assert_eq!(pass(9, false, rows), [false, true]);
        assert_eq!(pass(9, true, rows), [true, true]);
        assert_eq!(
            pass(8, true, rows),
            [false, false],
            "9 is above the horizon"
        );
    }

    #[test]
    fn each_key_is_judged_on_its_own_versions() {
        let removed = pass(
            10,
            false,
            &[
                (b"a", 1, Some(b"x")),
                (b"a", 2, Some(b"y")),
                (b"b", 3, Some(b"z")),
            ],
        );
        assert_eq!(removed, [false, true, false]);
    }

    #[test]
    fn change_records_below_the_horizon_go() {
        let mut collector = Collector::new(7, false);
        let records = Collected::ChangeRecords;
        assert!(collector.removes(records, &6u64.to_be_bytes(), b"r"));
        assert!(!collector.removes(records, &7u64.to_be_bytes(), b"r"));
        assert!(!collector.removes(records, b"odd", b"r"));
        assert!(!collector.removes(Collected::Never, &[0; 40], b"r"));
    }
}
