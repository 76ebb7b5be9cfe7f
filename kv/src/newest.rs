//! A cache of each key's newest version, kept coherent with the writes.
//!
//! A point read at the applied version asks for a key's newest version,
//! and a read of the engine costs a seek through every level that may hold
//! the key. Most reads ask for keys read or written a moment ago, so
//! [`NewestVersions`] keeps, for recently seen keys of the versioned
//! columns, the newest version and its value, in memory.
//!
//! # Why a cached answer is right
//!
//! An entry claims: "no version of this key newer than this one has been
//! written". Two rules keep every claim true:
//!
//! 1. **Writes go through first.** Every batch that writes a versioned
//!    column passes through [`NewestVersions::write_through`] before anyone
//!    may read at its versions (replay publishes the new applied version
//!    only afterwards; [`crate::MvccStore::write`] does it just before the
//!    engine write). A held key's entry becomes the new version (a new
//!    key's too, while its shard has room); for any key, the shard it
//!    falls in remembers the highest version written through it (entries
//!    may be evicted, shards forget nothing).
//!    An entry newer than a reader's snapshot is of no use to that reader,
//!    so one written through a moment before the engine has the row
//!    misleads no one.
//! 2. **A fill proves it is not late.** A reader that missed reads the
//!    engine at its snapshot `at`, then offers what it found. The offer is
//!    taken only if no write newer than `at` has gone through the key's
//!    shard, so nothing newer can exist yet; a write still on its way will
//!    find the entry and update it. Otherwise the offer is dropped (a cost,
//!    never a wrong answer).
//!
//! A reader at snapshot `at` uses an entry only if its version is at or
//! below `at`; for an older snapshot it reads the engine. Evicting an
//! entry is always safe: the key's shard still remembers its writes.
//!
//! Deleting a versioned row through a batch drops the key's entry and
//! stops fills in its shard for the rest of the process: a fill read
//! before the delete could otherwise bring the row back. Nothing on the
//! node's path does that: retention's collection (see [`crate::retention`])
//! removes rows inside the engine, and only rows that no read at or above
//! the horizon sees; reads below the horizon are refused before they reach
//! this cache, and a cached tombstone at or below the horizon is reported
//! as absence like a collected one.

use crate::engine::{BatchOp, Column};
use crate::keys::VERSION_BYTES;
use crate::row::{Versioned, decode_stored};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most keys the cache holds by default: the working set of a busy node
/// (the benchmark's 100,000 keys fit four times over).
pub const DEFAULT_NEWEST_ENTRIES: usize = 1 << 18;

/// Most key and value bytes the cache holds by default: bounded memory
/// whatever the sizes of keys and values (a value may be 1 MiB).
pub const DEFAULT_NEWEST_BYTES: usize = 64 << 20;

/// Bytes charged per entry on top of its key and value: the map's slot,
/// the eviction queue's copy of the key, allocator rounding.
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Independent locks: readers on every core and the one writer rarely
/// meet on the same one.
const SHARDS: usize = 32;

/// How much [`NewestVersions`] may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestLimits {
    /// Most keys.
    pub entries: usize,
    /// Most key, value and overhead bytes.
    pub bytes: usize,
}

impl Default for NewestLimits {
    fn default() -> Self {
        Self {
            entries: DEFAULT_NEWEST_ENTRIES,
            bytes: DEFAULT_NEWEST_BYTES,
        }
    }
}

/// The newest version of recently read or written keys of the versioned
/// columns. See the module documentation for why its answers are right.
#[derive(Debug)]
pub struct NewestVersions {
    shards: Vec<Mutex<Shard>>,
    hasher: foldhash::fast::RandomState,
    per_shard: NewestLimits,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How the cache has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewestStats {
    /// Keys held now.
    pub entries: u64,
    /// Bytes charged for them now.
    pub bytes: u64,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the engine.
    pub misses: u64,
}

/// What the cache knows of one key: its newest version (`None`: the key
/// has no version at all).
type Newest = Option<Versioned>;

/// The versioned columns, each with its own maps (so a lookup by borrowed
/// key prefix needs no allocation).
const COLUMNS: [Column; 2] = [Column::Data, Column::Acl];

fn slot(column: Column) -> Option<usize> {
    COLUMNS.iter().position(|c| *c == column)
}

#[derive(Debug, Default)]
struct Shard {
    /// Per versioned column: key prefix (the stored key without its
    /// version) to the key's newest version.
    entries: [HashMap<Vec<u8>, Newest, foldhash::fast::RandomState>; COLUMNS.len()],
    /// Keys in the order they came in: the oldest goes first.
    arrivals: VecDeque<(usize, Vec<u8>)>,
    bytes: usize,
    /// The highest version written through this shard.
    written_through: u64,
}

impl NewestVersions {
    /// An empty cache within `limits`, over a store whose newest write has
    /// version `written`: no fill from a snapshot older than that is taken,
    /// since the engine may hold newer versions no write told the cache of.
    pub fn new(limits: NewestLimits, written: u64) -> Self {
        let per_shard = NewestLimits {
            entries: limits.entries.div_ceil(SHARDS),
            bytes: limits.bytes.div_ceil(SHARDS),
        };
        let shard = || {
            Mutex::new(Shard {
                written_through: written,
                ..Shard::default()
            })
        };
        Self {
            shards: (0..SHARDS).map(|_| shard()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            per_shard,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, slot: usize, prefix: &[u8]) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one((slot, prefix)) as usize % SHARDS;
        // A shard changes under its lock in steps that each leave it whole.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest version of the key at or below `at`, if the cache knows
    /// it: `Some(None)` means the key has no version at or below `at`.
    pub fn get(&self, column: Column, prefix: &[u8], at: u64) -> Option<Newest> {
        let slot = slot(column)?;
        let known = {
            let shard = self.shard(slot, prefix);
            match shard.entries[slot].get(prefix) {
                Some(Some(versioned)) if versioned.version > at => None,
                known => known.cloned(),
            }
        };
        let counter = if known.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        known
    }

    /// Offers what a read of the engine at `at` found as the key's newest
    /// version; taken only if no newer write can exist.
    pub fn fill(&self, column: Column, prefix: &[u8], at: u64, found: &Newest) {
        let Some(slot) = slot(column) else { return };
        let mut shard = self.shard(slot, prefix);
        if shard.written_through > at || shard.entries[slot].contains_key(prefix) {
            return;
        }
        shard.insert(slot, prefix.to_vec(), found.clone(), self.per_shard);
    }

    /// Records a batch of writes (before or after the engine takes it, and
    /// before any reader may read at its versions): each versioned put
    /// updates its key's entry (a held key's in place, a new key's while its
    /// shard has room), and every touched shard remembers the version.
    pub fn write_through(&self, ops: &[BatchOp]) {
        for op in ops {
            let (column, key) = op.order_key();
            let Some(slot) = slot(column) else { continue };
            let Some((prefix, version)) = split_versioned(key) else {
                continue;
            };
            let mut shard = self.shard(slot, prefix);
            match op {
                BatchOp::Put(_, _, value) => {
                    shard.put(slot, prefix, version, value, self.per_shard)
                }
                BatchOp::Delete(..) => {
                    shard.written_through = u64::MAX;
                    shard.remove(slot, prefix);
                }
                // A sweep removes versions at or below the horizon only:
                // no read this cache answers sees them, and a key's newest
                // version (or a tombstone, absence either way) stays true.
                BatchOp::DeleteRange(..) => {}
            }
        }
    }

    /// Counts of what the cache holds and how reads went.
    pub fn stats(&self) -> NewestStats {
        let mut stats = NewestStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            ..NewestStats::default()
        };
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            stats.entries += shard.held() as u64;
            stats.bytes += shard.bytes as u64;
        }
        stats
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.stats().entries as usize
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    /// A write of `version` of the key: the shard remembers it, and the
    /// key's entry takes it: a held key's in place, a new key's only while
    /// the shard has room. A write never evicts: inserting every written
    /// key and evicting for it cost replay a quarter of its speed (an
    /// allocation, a map insert and an eviction per write,
    /// `payloads/attested_one_core`); a read brings in any key it misses.
    fn put(
        &mut self,
        slot: usize,
        prefix: &[u8],
        version: u64,
        stored: &[u8],
        limits: NewestLimits,
    ) {
        self.written_through = self.written_through.max(version);
        let held = self.entries[slot].get(prefix);
        // A second write of one version in a batch replaces the first, as
        // in the engine (the later change of a batch wins).
        if held.is_some_and(|h| h.as_ref().is_some_and(|v| v.version > version))
            || (held.is_none() && self.held() >= limits.entries)
        {
            return;
        }
        let versioned = match decode_stored(version, stored) {
            Ok(versioned) => Some(versioned),
            // A row replay could not have written: forget the key rather
            // than guess (a read of the engine reports it as corrupt).
            Err(_) => return self.remove(slot, prefix),
        };
        if held.is_some() {
            self.replace(slot, prefix, versioned, limits);
        } else if self.bytes + charge(prefix, &versioned) <= limits.bytes {
            self.insert(slot, prefix.to_vec(), versioned, limits);
        }
    }

    fn held(&self) -> usize {
        self.entries.iter().map(HashMap::len).sum()
    }

    fn insert(&mut self, slot: usize, prefix: Vec<u8>, newest: Newest, limits: NewestLimits) {
        self.bytes += charge(&prefix, &newest);
        self.arrivals.push_back((slot, prefix.clone()));
        self.entries[slot].insert(prefix, newest);
        self.evict_beyond(limits);
    }

    /// Replaces a held entry's value in place (its arrival stays).
    fn replace(&mut self, slot: usize, prefix: &[u8], newest: Newest, limits: NewestLimits) {
        let charged = charge(prefix, &newest);
        if let Some(old) = self.entries[slot].get_mut(prefix) {
            self.bytes = self.bytes - charge(prefix, old) + charged;
            *old = newest;
        }
        self.evict_beyond(limits);
    }

    /// Drops the oldest entries until the shard is within `limits`.
    fn evict_beyond(&mut self, limits: NewestLimits) {
        // The arrival of a key removed since finds nothing to drop (or, if
        // the key came back, drops it early: only a cost); bounding the
        // queue too keeps such arrivals in check.
        while self.held() > limits.entries
            || self.bytes > limits.bytes
            || self.arrivals.len() > 2 * limits.entries
        {
            let Some((slot, oldest)) = self.arrivals.pop_front() else {
                break;
            };
            self.remove(slot, &oldest);
        }
    }

    /// Drops a held entry (its arrival stays in the queue).
    fn remove(&mut self, slot: usize, prefix: &[u8]) {
        if let Some(old) = self.entries[slot].remove(prefix) {
            self.bytes -= charge(prefix, &old);
        }
    }
}

fn charge(prefix: &[u8], newest: &Newest) -> usize {
    let value = newest
        .as_ref()
        .and_then(|v| v.value.as_ref())
        .map_or(0, Vec::len);
    ENTRY_OVERHEAD_BYTES + prefix.len() + value
}

/// A stored versioned key split into its prefix and its version.
fn split_versioned(key: &[u8]) -> Option<(&[u8], u64)> {
    let at = key.len().checked_sub(VERSION_BYTES)?;
    let (prefix, version) = key.split_at(at);
    let inverted = u64::from_be_bytes(version.try_into().ok()?);
    Some((prefix, !inverted))
}
