//! Multi-version reads over an [`Engine`].
//!
//! Every write of a key is kept as its own row, keyed by
//! `(stream, key, version)` with newer versions first (see [`crate::keys`]).
//! A read at version `V` seeks to `(stream, key, V)` and takes the first row
//! of that key: the newest version at or below `V`. A delete is a tombstone
//! row, so reads at older versions still see the old value.
//!
//! A scan at a recent version reads each key's newest version from the
//! heads column instead ([`crate::heads`], `through_heads` here), so its
//! cost does not grow with the keys' histories.

use crate::engine::{Column, Engine, EngineError, Next, WriteBatch};
use crate::heads::{Heads, Noted};
use crate::keys::{StreamId, VERSION_BYTES, decode_versioned, encode_key_prefix, encode_versioned};
use crate::newest::{NewestLimits, NewestVersions};
pub use crate::row::{Versioned, encode_value};
use std::sync::atomic::{AtomicU64, Ordering};

mod through_heads;

/// Most rows one scan page may return.
pub const MAX_SCAN_ROWS: usize = 10_000;

/// Most key and value bytes one scan page may return.
pub const MAX_SCAN_BYTES: usize = 4 * 1024 * 1024;

/// One row of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The user key.
    pub key: Vec<u8>,
    /// The version that wrote the value.
    pub version: u64,
    /// The value.
    pub value: Vec<u8>,
}

/// A bounded page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Live rows in key order.
    pub rows: Vec<Row>,
    /// Where to resume (the first key not returned), if the range was not exhausted.
    pub resume_from: Option<Vec<u8>>,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A stored row could not be decoded.
    #[error("corrupt stored row: {0}")]
    Corrupt(String),
    /// The version asked for is below the retention horizon: its history
    /// is no longer kept (see [`crate::retention`]).
    #[error(
        "version {asked} is compacted: history is kept from version {oldest} on; read at {oldest} or later"
    )]
    Compacted {
        /// The version asked for.
        asked: u64,
        /// The oldest version reads are answered at.
        oldest: u64,
    },
}

fn decode_value(bytes: &[u8]) -> Result<Option<Vec<u8>>, MvccError> {
    crate::row::decode_value(bytes).map_err(|e| MvccError::Corrupt(e.to_string()))
}

/// Adds a versioned write of `key` to `batch`; a delete is also
/// remembered (column [`Column::Deletes`]) until the horizon passes it and
/// [`MvccStore::sweep_deletes`] removes what it shadows.
pub fn stage_write(
    batch: &mut WriteBatch,
    column: Column,
    stream: &StreamId,
    key: &[u8],
    version: u64,
    value: Option<&[u8]>,
) {
    let versioned = encode_versioned(stream, key, version);
    if value.is_none() {
        batch.put(
            Column::Deletes,
            delete_record(column, &versioned),
            Vec::new(),
        );
    }
    batch.put(column, versioned, encode_value(value));
}

/// The [`Column::Deletes`] key of a delete stored at `versioned` in
/// `column`: its version first (big-endian, so a sweep reads them oldest
/// first), then the column, then the versioned key.
fn delete_record(column: Column, versioned: &[u8]) -> Vec<u8> {
    let (_, version) = versioned.split_at(versioned.len() - VERSION_BYTES);
    let version = !u64::from_be_bytes(version.try_into().expect("eight bytes"));
    let mut record = Vec::with_capacity(9 + versioned.len());
    record.extend_from_slice(&version.to_be_bytes());
    record.push(u8::from(column == Column::Acl));
    record.extend_from_slice(versioned);
    record
}

/// Most deletes one [`MvccStore::sweep_deletes`] batch sweeps: a batch of
/// about 100 KiB, written while replay goes on.
pub const MAX_SWEEP_BATCH: usize = 1024;

/// Versions of one swept key removed one by one; a key with more gets a
/// single range deletion instead.
pub const SWEEP_POINT_DELETES: usize = 16;

/// Where a paged scan resumes: the snapshot version every page reads at,
/// and the first key of the next page. Clients hold its encoding as opaque
/// bytes and hand it back, so decoding takes any bytes at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The scan's snapshot version.
    pub version: u64,
    /// The key the next page starts at.
    pub resume: Vec<u8>,
}

/// Marks a continuation token (format 1).
const CONTINUATION_MAGIC: &[u8; 4] = b"OSC1";

impl Continuation {
    /// `"OSC1" | version u64 BE | resume key`.
    pub fn encode(&self) -> Vec<u8> {
        let mut token = Vec::with_capacity(12 + self.resume.len());
        token.extend_from_slice(CONTINUATION_MAGIC);
        token.extend_from_slice(&self.version.to_be_bytes());
        token.extend_from_slice(&self.resume);
        token
    }

    /// The continuation `token` encodes; `None` for anything else.
    pub fn decode(token: &[u8]) -> Option<Self> {
        let rest = token.strip_prefix(CONTINUATION_MAGIC)?;
        let (version, resume) = rest.split_first_chunk::<8>()?;
        Some(Self {
            version: u64::from_be_bytes(*version),
            resume: resume.to_vec(),
        })
    }
}

/// Multi-version reads over an engine.
///
/// With a cache ([`MvccStore::cached`]), point reads of recently seen keys
/// are answered from memory; every write to a versioned column must then
/// go through [`MvccStore::write`], which keeps the cache coherent (see
/// [`crate::newest`]). Clones share the cache.
#[derive(Debug, Clone)]
pub struct MvccStore<E> {
    engine: E,
    newest: Option<std::sync::Arc<NewestVersions>>,
    /// Each key's newest version for scans (see [`crate::heads`]); kept
    /// with the cache.
    heads: Option<std::sync::Arc<Heads>>,
    /// The retention horizon: the oldest version reads are answered at.
    horizon: std::sync::Arc<AtomicU64>,
    /// Deletes swept since the store was opened.
    swept: std::sync::Arc<AtomicU64>,
    /// Where the next sweep starts reading delete records: just past the
    /// last one swept. Every record before it is swept (its removal may
    /// still sit in the files until compaction), and every new record has
    /// a newer version, so starting here skips those removals instead of
    /// stepping over them on every sweep.
    sweep_cursor: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl<E: Engine> MvccStore<E> {
    /// Wraps an engine.
    pub fn new(engine: E) -> Self {
        Self {
            engine,
            newest: None,
            heads: None,
            horizon: Default::default(),
            swept: Default::default(),
            sweep_cursor: Default::default(),
        }
    }

    /// Wraps an engine whose newest write has version `written`, with a
    /// cache of each key's newest version within `limits`, and the heads
    /// column for scans (see [`crate::heads`]; a node keeps it current with
    /// [`MvccStore::maintain_heads`]).
    pub fn cached(engine: E, limits: NewestLimits, written: u64) -> Self {
        let heads = Heads::open(&engine, written);
        Self {
            engine,
            newest: Some(std::sync::Arc::new(NewestVersions::new(limits, written))),
            heads: Some(std::sync::Arc::new(heads)),
            horizon: Default::default(),
            swept: Default::default(),
            sweep_cursor: Default::default(),
        }
    }

    /// The cache of newest versions, if the store has one.
    pub fn newest(&self) -> Option<&NewestVersions> {
        self.newest.as_deref()
    }

    /// The heads column's state, if the store keeps one.
    pub fn heads(&self) -> Option<&Heads> {
        self.heads.as_deref()
    }

    /// Tells the cache of `batch`'s versioned writes, then writes it to the
    /// engine (see [`Engine::write`]). Callers let readers read at the
    /// batch's versions only after this returns. The cache hears first so
    /// that nothing need be copied: until then no reader's snapshot reaches
    /// the new versions, so none uses them, and if the engine refuses the
    /// batch they are never published at all. The heads hear last: a pass
    /// may read a noted key at once, so the engine must have it.
    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        if let Some(newest) = &self.newest {
            newest.write_through(&batch.ops);
        }
        let (noted, newest) = match self.heads.as_deref() {
            Some(heads) if heads.noting() => {
                let noted = Noted::of(&batch.ops);
                let newest = noted.as_ref().map_or(0, Noted::newest);
                (noted, newest)
            }
            Some(_) => (None, Noted::newest_of(&batch.ops)),
            None => (None, 0),
        };
        self.engine.write(batch, sync)?;
        if let Some(heads) = &self.heads {
            heads.note(noted, newest);
        }
        Ok(())
    }

    /// The retention horizon: reads below it are refused (see
    /// [`crate::retention`]). 0 until [`MvccStore::advance_horizon`].
    pub fn horizon(&self) -> u64 {
        self.horizon.load(Ordering::SeqCst)
    }

    /// Raises the retention horizon to `horizon` (a lower one changes
    /// nothing): readers are refused below it from now on, then the engine
    /// may collect what it gave up. In that order, a reader that read
    /// before the raise either finished before anything was removed or
    /// sees the new horizon when it checks after reading.
    pub fn advance_horizon(&self, horizon: u64) {
        let horizon = self
            .horizon
            .fetch_max(horizon, Ordering::SeqCst)
            .max(horizon);
        self.engine.set_collection_horizon(horizon);
    }

    /// Refuses a read at `at` below the horizon. Called before a read, and
    /// again after it: a horizon raised meanwhile may have let the engine
    /// remove what the read needed.
    pub fn check_retained(&self, at: u64) -> Result<(), MvccError> {
        let oldest = self.horizon();
        match at < oldest {
            true => Err(MvccError::Compacted { asked: at, oldest }),
            false => Ok(()),
        }
    }

    /// Sweeps up to `max` deletes the horizon has passed (oldest first,
    /// capped by [`MAX_SWEEP_BATCH`]): for each, every version of its key
    /// at or below the delete goes, in one range deletion. That is always
    /// safe: at or below the horizon, a delete shadows everything older,
    /// and a newer version at or below the horizon shadows it too. Returns
    /// how many were swept; 0 when none is due.
    ///
    /// Collection inside compactions takes the versions a newer one
    /// shadows, but can drop a tombstone only when it sees every file; the
    /// sweep takes deleted keys away without that.
    pub fn sweep_deletes(&self, max: usize) -> Result<usize, MvccError> {
        let due = self.due_deletes(max.min(MAX_SWEEP_BATCH))?;
        let mut batch = WriteBatch::default();
        for (record, column, from, to) in &due {
            self.stage_sweep(&mut batch, *column, from, to)?;
            batch.delete(Column::Deletes, record.clone());
        }
        if let Some((last, ..)) = due.last() {
            self.write(batch, false)?;
            self.swept.fetch_add(due.len() as u64, Ordering::Relaxed);
            let mut next = last.clone();
            next.push(0);
            *self.sweep_cursor.lock().unwrap_or_else(|p| p.into_inner()) = next;
        }
        Ok(due.len())
    }

    /// Deletes [`MvccStore::sweep_deletes`] swept since the store opened.
    pub fn swept_deletes(&self) -> u64 {
        self.swept.load(Ordering::Relaxed)
    }

    /// Stages the removal of the versions `from..to` of one key (a delete
    /// and everything older), if the row at `from` is still a tombstone:
    /// a later write of the same key at the same version may have replaced
    /// the delete (a transaction may write one key twice).
    ///
    /// A key with a few such versions (the common case: put, then delete)
    /// gets a point delete each; a longer history one range deletion.
    /// Every range deletion stays in the files until compaction drops it,
    /// and reads that cross it pay for it, so they are kept for the keys
    /// where they save the most.
    fn stage_sweep(
        &self,
        batch: &mut WriteBatch,
        column: Column,
        from: &[u8],
        to: &[u8],
    ) -> Result<(), MvccError> {
        let mut versions = Vec::new();
        let mut tombstone = false;
        self.engine.scan_from(column, from, &mut |k, v| {
            if k >= to || versions.len() > SWEEP_POINT_DELETES {
                return false;
            }
            if versions.is_empty() {
                tombstone = k == from && crate::row::is_tombstone(v);
            }
            versions.push(k.to_vec());
            tombstone
        })?;
        match (tombstone, versions.len() > SWEEP_POINT_DELETES) {
            (false, _) => {}
            (true, false) => versions.into_iter().for_each(|k| batch.delete(column, k)),
            (true, true) => batch.delete_range(column, from.to_vec(), to.to_vec()),
        }
        Ok(())
    }

    /// Up to `max` delete records the horizon reached, oldest first, each
    /// with the range it sweeps.
    fn due_deletes(&self, max: usize) -> Result<Vec<DueDelete>, MvccError> {
        let horizon = self.horizon();
        let start = self
            .sweep_cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut due = Vec::new();
        let mut failure = None;
        self.engine
            .scan_from(Column::Deletes, &start, &mut |record, _| {
                if due.len() == max {
                    return false;
                }
                match sweep_of(record, horizon) {
                    Ok(Some((column, from, to))) => {
                        due.push((record.to_vec(), column, from, to));
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            })?;
        failure.map_or(Ok(due), Err)
    }

    /// The engine underneath, for batches and singletons.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The engine underneath, taken back.
    pub fn into_engine(self) -> E {
        self.engine
    }

    /// The newest version of `key` at or below `at`, tombstones included
    /// (but one at or below the horizon reads as absence, see
    /// [`crate::retention`]). Refused below the horizon.
    pub fn get(
        &self,
        column: Column,
        stream: &StreamId,
        key: &[u8],
        at: u64,
    ) -> Result<Option<Versioned>, MvccError> {
        self.check_retained(at)?;
        let found = self.read_at(column, stream, key, at)?;
        self.check_retained(at)?;
        // A tombstone the horizon passed may already be collected: report
        // it as absence either way, so that collection changes no answer.
        Ok(found.filter(|v| v.value.is_some() || v.version > self.horizon()))
    }

    /// [`MvccStore::get`] without the horizon's checks.
    fn read_at(
        &self,
        column: Column,
        stream: &StreamId,
        key: &[u8],
        at: u64,
    ) -> Result<Option<Versioned>, MvccError> {
        self.read_prefix_at(column, &encode_key_prefix(stream, key), at)
    }

    /// The newest version at or below `at` of the key whose prefix
    /// ([`encode_key_prefix`]) is `prefix`, tombstones included, without
    /// the horizon's checks.
    pub(crate) fn read_prefix_at(
        &self,
        column: Column,
        prefix: &[u8],
        at: u64,
    ) -> Result<Option<Versioned>, MvccError> {
        let from = [prefix, &(!at).to_be_bytes()].concat();
        let prefix_len = prefix.len();
        let Some(newest) = &self.newest else {
            return self.read_newest(column, &from, prefix_len);
        };
        let prefix = &from[..prefix_len];
        if let Some(known) = newest.get(column, prefix, at) {
            return Ok(known);
        }
        let found = self.read_newest(column, &from, prefix_len)?;
        newest.fill(column, prefix, at, &found);
        Ok(found)
    }

    /// The first row at or after `from` within its key prefix, decoded.
    fn read_newest(
        &self,
        column: Column,
        from: &[u8],
        prefix_len: usize,
    ) -> Result<Option<Versioned>, MvccError> {
        // Key prefixes are prefix-free (the escaped key ends in a
        // terminator), so a key sharing this one's prefix is a version of it
        // (anything else is corrupt, and fails to decode below).
        let Some((k, v)) = self.engine.seek_in_prefix(column, from, prefix_len)? else {
            return Ok(None);
        };
        let (_, _, version) =
            decode_versioned(&k).map_err(|e| MvccError::Corrupt(e.to_string()))?;
        Ok(Some(Versioned {
            version,
            value: decode_value(&v)?,
        }))
    }

    /// Live rows of `stream` with `start <= key < end` (no end: to the end of
    /// the stream) as of version `at`, bounded by `max_rows` and `max_bytes`
    /// (each capped by [`MAX_SCAN_ROWS`] and [`MAX_SCAN_BYTES`]).
    ///
    /// While the store keeps its heads ([`crate::heads`]) and `at` is
    /// within [`crate::heads::HEADS_SNAPSHOT_WINDOW`] of what they cover,
    /// the scan reads each key's newest version there, one row per key
    /// whatever its history. Otherwise it walks the versions, stored newest
    /// first: stepping over a few of them is cheaper than a seek, but a key
    /// with a long history is passed with one: after [`SKIPS_BEFORE_SEEK`]
    /// versions in a row that the scan does not return, it seeks to the
    /// key's first version at or below `at`, or past the key once its
    /// visible version is taken. Either way a scan's cost follows the rows
    /// it returns and the keys it passes, not the versions stored.
    pub fn scan(
        &self,
        stream: &StreamId,
        start: &[u8],
        end: Option<&[u8]>,
        at: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<ScanPage, MvccError> {
        let bounds = (max_rows, max_bytes);
        self.scan_asking(stream, (start, end), at, bounds, true)
    }

    /// [`MvccStore::scan`] for a node's own periodic scans of small ranges
    /// (its upkeep): the same answer, but not counted among the scans that
    /// ask for the heads ([`crate::heads::Heads::scans`]), so that upkeep
    /// alone does not keep them.
    pub fn scan_for_upkeep(
        &self,
        stream: &StreamId,
        start: &[u8],
        end: Option<&[u8]>,
        at: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<ScanPage, MvccError> {
        let bounds = (max_rows, max_bytes);
        self.scan_asking(stream, (start, end), at, bounds, false)
    }

    /// A scan of `range` within `bounds` (rows, bytes), counted as asking
    /// for the heads if `asks`.
    fn scan_asking(
        &self,
        stream: &StreamId,
        (start, end): (&[u8], Option<&[u8]>),
        at: u64,
        (max_rows, max_bytes): (usize, usize),
        asks: bool,
    ) -> Result<ScanPage, MvccError> {
        self.check_retained(at)?;
        let mut fill = PageFill::new(max_rows, max_bytes);
        if !self.scan_heads(stream, (start, end), at, &mut fill, asks)? {
            fill = self.scan_versions(stream, start, end, at, fill)?;
        }
        self.check_retained(at)?;
        Ok(fill.page)
    }

    /// [`MvccStore::scan`] over the data column itself.
    fn scan_versions(
        &self,
        stream: &StreamId,
        start: &[u8],
        end: Option<&[u8]>,
        at: u64,
        fill: PageFill,
    ) -> Result<PageFill, MvccError> {
        let mut walk = ScanWalk {
            stream,
            end,
            at,
            fill,
            settled: None,
            skipped: 0,
            failure: None,
        };
        let from = encode_key_prefix(stream, start);
        self.engine
            .scan_seeking(Column::Data, &from, &mut |k, v| walk.visit(k, v))?;
        walk.failure.map_or(Ok(walk.fill), Err)
    }
}

/// A delete record due for sweeping: the record, and its key's column and
/// versions `from..to` (the delete and everything older).
type DueDelete = (Vec<u8>, Column, Vec<u8>, Vec<u8>);

/// The versions one delete sweeps: its key's column, and `from..to`.
type SweptRange = (Column, Vec<u8>, Vec<u8>);

/// The range deletion a [`Column::Deletes`] record asks for once the
/// horizon reaches it: every version of its key at or below the delete.
/// None when the horizon has not reached it.
fn sweep_of(record: &[u8], horizon: u64) -> Result<Option<SweptRange>, MvccError> {
    let corrupt = || MvccError::Corrupt("delete record".into());
    let (version, rest) = record.split_first_chunk::<8>().ok_or_else(corrupt)?;
    if u64::from_be_bytes(*version) > horizon {
        return Ok(None);
    }
    let (&column, versioned) = rest.split_first().ok_or_else(corrupt)?;
    let column = match column {
        0 => Column::Data,
        1 => Column::Acl,
        _ => return Err(corrupt()),
    };
    let prefix_len = versioned
        .len()
        .checked_sub(VERSION_BYTES)
        .ok_or_else(corrupt)?;
    let end = crate::keys::prefix_end(&versioned[..prefix_len]).ok_or_else(corrupt)?;
    Ok(Some((column, versioned.to_vec(), end)))
}

/// A scan page being filled within its bounds.
pub(crate) struct PageFill {
    pub(crate) page: ScanPage,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl PageFill {
    /// An empty page of at most `max_rows` rows and `max_bytes` key and
    /// value bytes (capped by [`MAX_SCAN_ROWS`] and [`MAX_SCAN_BYTES`]).
    fn new(max_rows: usize, max_bytes: usize) -> Self {
        Self {
            page: ScanPage::default(),
            bytes: 0,
            max_rows: max_rows.clamp(1, MAX_SCAN_ROWS),
            max_bytes: max_bytes.clamp(1, MAX_SCAN_BYTES),
        }
    }

    /// Rows the page still has room for.
    pub(crate) fn room(&self) -> usize {
        self.max_rows - self.page.rows.len()
    }

    /// Adds a live row, or, if the page is full, makes `key` where the
    /// next page resumes: false then. A page always takes its first row.
    pub(crate) fn offer(&mut self, key: Vec<u8>, version: u64, value: Vec<u8>) -> bool {
        let rows = &self.page.rows;
        if rows.len() == self.max_rows
            || (self.bytes + key.len() + value.len() > self.max_bytes && !rows.is_empty())
        {
            self.page.resume_from = Some(key);
            return false;
        }
        self.bytes += key.len() + value.len();
        self.page.rows.push(Row {
            key,
            version,
            value,
        });
        true
    }
}

/// Versions in a row a scan steps over before it seeks instead: a seek
/// costs about as much as stepping over a handful of entries.
pub const SKIPS_BEFORE_SEEK: usize = 8;

/// A scan in progress: what [`MvccStore::scan`]'s visitor keeps between
/// entries, and between the engine scans a seek restarts.
struct ScanWalk<'a> {
    stream: &'a StreamId,
    end: Option<&'a [u8]>,
    at: u64,
    fill: PageFill,
    /// The key whose visible version was already decided.
    settled: Option<Vec<u8>>,
    /// Entries stepped over in a row without returning one.
    skipped: usize,
    failure: Option<MvccError>,
}

impl ScanWalk<'_> {
    /// Takes one stored entry and says where to go next.
    fn visit(&mut self, k: &[u8], v: &[u8]) -> Next {
        let (s, key, version) = match decode_versioned(k) {
            Ok(decoded) => decoded,
            Err(e) => return self.fail(MvccError::Corrupt(e.to_string())),
        };
        if &s != self.stream || self.end.is_some_and(|end| key.as_slice() >= end) {
            return Next::Stop;
        }
        if version > self.at || self.settled.as_deref() == Some(key.as_slice()) {
            self.skipped += 1;
            if self.skipped > SKIPS_BEFORE_SEEK {
                return self.seek_past(&key, version);
            }
            return Next::Continue;
        }
        self.skipped = 0;
        let value = match decode_value(v) {
            Ok(value) => value,
            Err(e) => return self.fail(e),
        };
        self.settled = Some(key.clone());
        let Some(value) = value else {
            return Next::Continue;
        };
        match self.fill.offer(key, version, value) {
            true => Next::Continue,
            false => Next::Stop,
        }
    }

    /// A seek to `key`'s first version at or below the scan's version, or
    /// past `key` once it is settled.
    fn seek_past(&mut self, key: &[u8], version: u64) -> Next {
        self.skipped = 0;
        let target = match version > self.at {
            true => Some(encode_versioned(self.stream, key, self.at)),
            false => crate::keys::prefix_end(&encode_key_prefix(self.stream, key)),
        };
        match target {
            Some(target) => Next::Seek(target),
            // No key sorts after this one: keep stepping.
            None => Next::Continue,
        }
    }

    fn fail(&mut self, failure: MvccError) -> Next {
        self.failure = Some(failure);
        Next::Stop
    }
}
