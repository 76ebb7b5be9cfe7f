//! Change records: which keys each committed version wrote.
//!
//! Replay stores one record per entry that committed anything, keyed by the
//! entry's last version, in the same atomic batch as the entry's effects. The
//! conflict window is rebuilt from these records when a replica opens, and
//! the watch feed reads them.
//!
//! Every byte of a record is written on the replay path (batch, write-ahead
//! log, memtable, flush), so the layout names each stream once per record
//! rather than once per key:
//!
//! ```text
//! format u8 (= 2)
//! versions u32
//! versions x ( version u64 | writes u32 | writes x ( stream index u32 | key: u32 length, bytes ) )
//! streams x stream id (32 bytes)
//! streams u32
//! ```
//!
//! The stream table sits at the end so that the record can be written in one
//! pass while deciding the entry; a decoder reads the count from the last four
//! bytes first.

use crate::FastMap;
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{MAX_BATCH_TXNS, MAX_KEY_BYTES, MAX_WRITES};
use crate::record::Write;
use ordo_kv::StreamId;

/// The layout tag of records written by this code.
const FORMAT: u8 = 2;

/// Versions and the keys each wrote, in version order.
pub type Changes = Vec<(u64, Vec<(StreamId, Vec<u8>)>)>;

/// An entry's change record, built one committed version at a time.
#[derive(Debug)]
pub struct ChangeRecord {
    body: Writer,
    versions: u32,
    stream_index: FastMap<StreamId, u32>,
    streams: Vec<StreamId>,
}

impl ChangeRecord {
    /// An empty record with room for `writes` written keys of `key_bytes`
    /// bytes in total, so that building it never regrows its buffer.
    pub fn with_capacity(writes: usize, key_bytes: usize) -> Self {
        let mut body = Writer::with_capacity(1 + 4 + 12 * writes + 8 * writes + key_bytes);
        body.u8(FORMAT).fixed(&0u32.to_le_bytes());
        Self {
            body,
            versions: 0,
            stream_index: FastMap::default(),
            streams: Vec::new(),
        }
    }

    /// Adds the keys `version` wrote.
    pub fn add_version(&mut self, version: u64, writes: &[Write]) {
        self.versions += 1;
        self.body
            .u64(version)
            .fixed(&(writes.len() as u32).to_le_bytes());
        for write in writes {
            let next = self.streams.len() as u32;
            let index = *self.stream_index.entry(write.stream).or_insert_with(|| {
                self.streams.push(write.stream);
                next
            });
            self.body.fixed(&index.to_le_bytes()).bytes(&write.key);
        }
    }

    /// The encoded record, or None if no version was added.
    pub fn finish(self) -> Option<Vec<u8>> {
        if self.versions == 0 {
            return None;
        }
        let mut body = self.body;
        for stream in &self.streams {
            body.fixed(stream);
        }
        body.fixed(&(self.streams.len() as u32).to_le_bytes());
        let mut record = body.finish();
        if let Some(count) = record.get_mut(1..5) {
            count.copy_from_slice(&self.versions.to_le_bytes());
        }
        Some(record)
    }
}

/// Splits a record into its body and its stream table.
fn split_streams(bytes: &[u8]) -> Result<(&[u8], Vec<StreamId>), DecodeError> {
    let truncated = |needed| DecodeError::Truncated {
        field: "stream table",
        needed,
        available: bytes.len(),
    };
    let (rest, count) = bytes.split_last_chunk::<4>().ok_or_else(|| truncated(4))?;
    let count = u32::from_le_bytes(*count) as usize;
    let table_len = count.checked_mul(32).ok_or_else(|| truncated(usize::MAX))?;
    let split = rest
        .len()
        .checked_sub(table_len)
        .ok_or_else(|| truncated(table_len + 4))?;
    let (body, table) = rest.split_at(split);
    let streams = table
        .chunks_exact(32)
        .map(|s| {
            let mut id = [0u8; 32];
            id.copy_from_slice(s);
            id
        })
        .collect();
    Ok((body, streams))
}

/// Decodes a change record.
pub fn decode(bytes: &[u8]) -> Result<Changes, DecodeError> {
    let (body, streams) = split_streams(bytes)?;
    let mut r = Reader::new(body);
    r.expect_tag("change record format", FORMAT)?;
    let versions = u32::from_le_bytes(r.fixed("version count")?) as usize;
    let mut changes = Vec::with_capacity(versions.min(MAX_BATCH_TXNS));
    for _ in 0..versions {
        let version = r.u64("version")?;
        let n = u32::from_le_bytes(r.fixed("write count")?) as usize;
        let mut keys = Vec::with_capacity(n.min(MAX_WRITES));
        for _ in 0..n {
            let index = u32::from_le_bytes(r.fixed("stream index")?);
            let stream = *streams.get(index as usize).ok_or(DecodeError::OutOfRange {
                field: "stream index",
                value: u64::from(index),
                bound: streams.len() as u64,
            })?;
            keys.push((stream, r.bytes("key", MAX_KEY_BYTES)?.to_vec()));
        }
        changes.push((version, keys));
    }
    r.finish()?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn versions() -> impl Strategy<Value = Changes> {
        let write = (
            prop::array::uniform32(0u8..3),
            prop::collection::vec(any::<u8>(), 0..8),
        );
        prop::collection::vec((any::<u64>(), prop::collection::vec(write, 0..5)), 1..6)
    }

    fn record_of(versions: &Changes) -> Vec<u8> {
        let mut record = ChangeRecord::with_capacity(0, 0);
        for (version, keys) in versions {
            let writes: Vec<Write> = keys
                .iter()
                .map(|(stream, key)| Write {
                    stream: *stream,
                    key: key.clone(),
                    value: None,
                })
                .collect();
            record.add_version(*version, &writes);
        }
        record.finish().expect("at least one version")
    }

    proptest! {
        #[test]
        fn round_trips(versions in versions()) {
            prop_assert_eq!(decode(&record_of(&versions)), Ok(versions));
        }

        #[test]
        fn truncated_or_extended_records_are_refused(versions in versions(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
            let record = record_of(&versions);
            prop_assert!(decode(&record[..cut.index(record.len())]).is_err());
            let mut longer = record.clone();
            longer.insert(0, extra);
            prop_assert!(decode(&longer).is_err());
        }
    }

    #[test]
    fn an_empty_record_is_nothing() {
        assert_eq!(ChangeRecord::with_capacity(4, 4).finish(), None);
    }

    #[test]
    fn a_stream_index_past_the_table_is_refused() {
        let mut record = record_of(&vec![(7, vec![([1; 32], b"k".to_vec())])]);
        // The first write's stream index sits after format, count, version and write count.
        record[1 + 4 + 8 + 4] = 9;
        assert!(matches!(
            decode(&record),
            Err(DecodeError::OutOfRange { .. })
        ));
    }
}
