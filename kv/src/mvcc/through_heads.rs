//! Scans through the heads column, and the passes and rebuilds that keep
//! it (the rules and why they are right: [`crate::heads`]). The heads'
//! state in memory lives there; the reads and writes of the engine here.

use super::{MvccError, MvccStore, PageFill, SKIPS_BEFORE_SEEK};
use crate::engine::{Column, Engine, Next, WriteBatch};
use crate::heads::{COVERED_KEY, Heads, HeadsPhase, HeadsStep, split_versioned};
use crate::keys::{StreamId, VERSION_BYTES, decode_key_prefix, encode_key_prefix, prefix_end};
use crate::row::{decode_head, encode_head, encode_value, is_tombstone};

/// Most heads rows one engine call of a scan reads before it looks at
/// them (point reads of pending keys happen between calls, never inside
/// one). The first call reads one more than the page has room for, and
/// each further one twice the last, so a short page reads little and a
/// long one makes few calls.
const SCAN_CHUNK_ROWS: usize = 256;

/// Rows one batch of a rebuild writes.
const REBUILD_BATCH_ROWS: usize = 1024;

/// Rows one batch of a pass writes. The engine takes one batch at a time,
/// so replay's next batch waits behind it: a pass of thousands of keys in
/// one batch held replay's writes for milliseconds (its p99 commit latency
/// doubled under 64 writing clients); this many rows hold them for tens of
/// microseconds.
const PASS_BATCH_ROWS: usize = 128;

fn short_head() -> MvccError {
    MvccError::Corrupt("heads row shorter than its version".into())
}

/// The key prefixes a scan of `stream` from `start` to `end` covers.
struct PrefixRange {
    low: Vec<u8>,
    high: Option<Vec<u8>>,
}

impl PrefixRange {
    fn new(stream: &StreamId, start: &[u8], end: Option<&[u8]>) -> Self {
        Self {
            low: encode_key_prefix(stream, start),
            high: match end {
                Some(end) => Some(encode_key_prefix(stream, end)),
                None => prefix_end(stream),
            },
        }
    }

    fn contains(&self, prefix: &[u8]) -> bool {
        prefix >= self.low.as_slice() && self.high.as_deref().is_none_or(|high| prefix < high)
    }
}

impl<E: Engine> MvccStore<E> {
    /// Runs one pass of the heads (rule 2), or a rebuild if they are stale.
    /// Calls run one at a time. A node calls it every
    /// [`crate::heads::HEADS_TICK_MS`] off the async threads; nothing else
    /// needs to.
    pub fn maintain_heads(&self) -> Result<HeadsStep, MvccError> {
        let Some(heads) = self.heads() else {
            return Ok(HeadsStep::Idle);
        };
        let _one_at_a_time = heads.one_at_a_time();
        match heads.phase() {
            HeadsPhase::Ready { .. } => self.advance_heads(heads),
            HeadsPhase::Stale => self.rebuild_heads(heads),
            HeadsPhase::Rebuilding => Ok(HeadsStep::Idle),
        }
    }

    /// A pass: the rows of every pending key at `C'`, then `C'` published.
    fn advance_heads(&self, heads: &Heads) -> Result<HeadsStep, MvccError> {
        let Some((taken, covered, upto)) = heads.pass_work() else {
            return Ok(HeadsStep::Idle);
        };
        let mut prefixes: Vec<&[u8]> = taken
            .iter()
            .flat_map(|n| n.keys().map(|k| split_versioned(k).0))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        for chunk in prefixes.chunks(PASS_BATCH_ROWS) {
            let mut batch = WriteBatch::with_capacity(chunk.len());
            for prefix in chunk {
                match self.read_prefix_at(Column::Data, prefix, upto)? {
                    Some(v) => {
                        let head = encode_head(v.version, &encode_value(v.value.as_deref()));
                        batch.put(Column::Heads, prefix.to_vec(), head);
                    }
                    None => batch.delete(Column::Heads, prefix.to_vec()),
                }
            }
            self.engine().write(batch, false)?;
        }
        // `C'` last: a pass cut short leaves `C` as it was, and the rows
        // already written are those of pending keys.
        let mut batch = WriteBatch::default();
        batch.put(
            Column::Heads,
            COVERED_KEY.to_vec(),
            upto.to_be_bytes().to_vec(),
        );
        self.engine().write(batch, false)?;
        heads.pass_done(&taken, covered, upto);
        Ok(HeadsStep::Advanced {
            keys: prefixes.len(),
            covered: upto,
        })
    }

    /// Rebuilds the column from the data column at the newest version
    /// written; notes taken meanwhile wait for the next pass.
    fn rebuild_heads(&self, heads: &Heads) -> Result<HeadsStep, MvccError> {
        let Some(at) = heads.rebuild_start() else {
            return Ok(HeadsStep::Idle);
        };
        let rebuilt = self.write_heads_from_data(at);
        heads.rebuild_done(at, rebuilt.is_ok());
        Ok(HeadsStep::Rebuilt {
            keys: rebuilt?,
            covered: at,
        })
    }

    /// Empties the column (`C` first, so that a rebuild cut short leaves
    /// the heads stale), then writes each key's newest version at `at`;
    /// returns how many keys have rows.
    fn write_heads_from_data(&self, at: u64) -> Result<usize, MvccError> {
        self.clear_heads()?;
        let (mut cursor, mut keys) = (Vec::new(), 0);
        loop {
            let mut walk = NewestWalk::new(at);
            self.engine()
                .scan_seeking(Column::Data, &cursor, &mut |k, v| walk.visit(k, v))?;
            if let Some(failure) = walk.failure {
                return Err(failure);
            }
            keys += walk.rows.len();
            let mut batch = WriteBatch::with_capacity(walk.rows.len());
            for (prefix, head) in walk.rows {
                batch.put(Column::Heads, prefix, head);
            }
            self.engine().write(batch, false)?;
            match walk.resume {
                Some(resume) => cursor = resume,
                None => break,
            }
        }
        let covered = at.to_be_bytes().to_vec();
        let mut batch = WriteBatch::default();
        batch.put(Column::Heads, COVERED_KEY.to_vec(), covered);
        self.engine().write(batch, false)?;
        Ok(keys)
    }

    /// Removes every row of the column, in batches.
    fn clear_heads(&self) -> Result<(), MvccError> {
        let mut cursor = COVERED_KEY.to_vec();
        loop {
            let mut batch = WriteBatch::default();
            self.engine()
                .scan_from(Column::Heads, &cursor, &mut |k, _| {
                    batch.delete(Column::Heads, k.to_vec());
                    batch.ops.len() < REBUILD_BATCH_ROWS
                })?;
            let Some(last) = batch.ops.last().map(|op| op.order_key().1.to_vec()) else {
                return Ok(());
            };
            self.engine().write(batch, false)?;
            cursor = last;
            cursor.push(0);
        }
    }

    /// Live rows of the range as of `at`, through the heads (rule 3), into
    /// `fill`; false if the heads do not cover `at` (nothing filled).
    pub(crate) fn scan_heads(
        &self,
        stream: &StreamId,
        (start, end): (&[u8], Option<&[u8]>),
        at: u64,
        fill: &mut PageFill,
        asks: bool,
    ) -> Result<bool, MvccError> {
        let Some(noted) = self.heads().and_then(|heads| heads.view(at, asks)) else {
            return Ok(false);
        };
        let range = PrefixRange::new(stream, start, end);
        let mut pending: Vec<&[u8]> = noted
            .iter()
            .flat_map(|n| n.keys())
            .map(split_versioned)
            .filter(|(prefix, version)| *version <= at && range.contains(prefix))
            .map(|(prefix, _)| prefix)
            .collect();
        pending.sort_unstable();
        pending.dedup();
        let mut pending = pending.into_iter().peekable();
        let mut cursor = range.low.clone();
        let mut chunk = 0;
        loop {
            chunk = (fill.room() + 1).max(chunk * 2).min(SCAN_CHUNK_ROWS);
            let rows = self.heads_chunk(&cursor, &range, chunk)?;
            for (prefix, head) in &rows {
                while let Some(p) = pending.next_if(|p| *p < prefix.as_slice()) {
                    if !self.offer_read(fill, p, at)? {
                        return Ok(true);
                    }
                }
                let is_pending = pending.next_if(|p| *p == prefix.as_slice()).is_some();
                let more = match decode_head(head).ok_or_else(short_head)? {
                    (version, stored) if !is_pending && version <= at => {
                        fill.offer_stored(prefix, version, stored)?
                    }
                    _ => self.offer_read(fill, prefix, at)?,
                };
                if !more {
                    return Ok(true);
                }
            }
            match rows.last() {
                Some((last, _)) if rows.len() == chunk => {
                    cursor = last.clone();
                    cursor.push(0);
                }
                _ => break,
            }
        }
        for prefix in pending {
            if !self.offer_read(fill, prefix, at)? {
                break;
            }
        }
        Ok(true)
    }

    /// Up to `chunk` heads rows from `cursor` on, within `range`.
    fn heads_chunk(
        &self,
        cursor: &[u8],
        range: &PrefixRange,
        chunk: usize,
    ) -> Result<Vec<crate::engine::Entry>, MvccError> {
        let mut rows = Vec::with_capacity(chunk);
        self.engine()
            .scan_from(Column::Heads, cursor, &mut |k, v| {
                if !range.contains(k) {
                    return false;
                }
                rows.push((k.to_vec(), v.to_vec()));
                rows.len() < chunk
            })?;
        Ok(rows)
    }

    /// Offers the key at `prefix` as the data column has it at `at`.
    fn offer_read(&self, fill: &mut PageFill, prefix: &[u8], at: u64) -> Result<bool, MvccError> {
        match self.read_prefix_at(Column::Data, prefix, at)? {
            Some(found) => {
                let stored = encode_value(found.value.as_deref());
                fill.offer_stored(prefix, found.version, &stored)
            }
            None => Ok(true),
        }
    }
}

impl PageFill {
    /// Offers the row of the key at `prefix` (a tombstone is passed over):
    /// false once the page is full.
    fn offer_stored(
        &mut self,
        prefix: &[u8],
        version: u64,
        stored: &[u8],
    ) -> Result<bool, MvccError> {
        if is_tombstone(stored) {
            return Ok(true);
        }
        let corrupt = |e: &dyn std::fmt::Display| MvccError::Corrupt(e.to_string());
        let (_, key) = decode_key_prefix(prefix).map_err(|e| corrupt(&e))?;
        let value = crate::row::decode_value(stored)
            .map_err(|e| corrupt(&e))?
            .unwrap_or_default();
        Ok(self.offer(key, version, value))
    }
}

/// A walk of the data column that takes each key's newest version at or
/// below `at`, a batch of them at a time (for a rebuild).
struct NewestWalk {
    at: u64,
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    settled: Vec<u8>,
    taken: usize,
    skipped: usize,
    resume: Option<Vec<u8>>,
    failure: Option<MvccError>,
}

impl NewestWalk {
    fn new(at: u64) -> Self {
        Self {
            at,
            rows: Vec::new(),
            settled: Vec::new(),
            taken: 0,
            skipped: 0,
            resume: None,
            failure: None,
        }
    }

    fn visit(&mut self, key: &[u8], stored: &[u8]) -> Next {
        if key.len() < VERSION_BYTES {
            self.failure = Some(MvccError::Corrupt("data key shorter than a version".into()));
            return Next::Stop;
        }
        let (prefix, version) = split_versioned(key);
        if version > self.at || prefix == self.settled.as_slice() {
            self.skipped += 1;
            return match self.skipped > SKIPS_BEFORE_SEEK {
                true => self.seek_on(prefix, version),
                false => Next::Continue,
            };
        }
        self.skipped = 0;
        if self.taken == REBUILD_BATCH_ROWS {
            self.resume = Some(key.to_vec());
            return Next::Stop;
        }
        self.taken += 1;
        self.settled = prefix.to_vec();
        self.rows
            .push((prefix.to_vec(), encode_head(version, stored)));
        Next::Continue
    }

    /// Past a run of versions: to the key's newest at or below `at`, or to
    /// the next key once this one is settled.
    fn seek_on(&mut self, prefix: &[u8], version: u64) -> Next {
        self.skipped = 0;
        let target = match version > self.at {
            true => Some([prefix, &(!self.at).to_be_bytes()].concat()),
            false => prefix_end(prefix),
        };
        target.map_or(Next::Continue, Next::Seek)
    }
}
