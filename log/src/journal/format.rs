//! The journal's bytes: segment names, record frames, and the scan of one
//! segment.
//!
//! A frame is a 16-byte header and its payload, padded with zeros to the
//! next multiple of [`FRAME_ALIGN`]:
//!
//! ```text
//! len      u32 LE  payload bytes; 0 for the seal that closes a segment
//! crc32c   u32 LE  over len, offset, segment and the payload
//! offset   u32 LE  where this frame starts in its segment
//! segment  u32 LE  the low 32 bits of the segment's index
//! payload  len bytes
//! ```
//!
//! Frames start at multiples of 16, so a header never straddles a 512-byte
//! sector and is written whole or not at all. Segments are reused once
//! retired, so a segment holds stale frames of an older segment after its
//! own: a frame is *whole* only if it names the offset it is found at and
//! the segment it is found in, and its checksum (which covers both) holds.
//! The records of a segment are the whole frames from its start up to the
//! first that is not; a segment that was filled ends with a seal.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 16;

/// Frames start at multiples of this.
pub(crate) const FRAME_ALIGN: usize = 16;

/// Suffix of a segment file: `{index:016x}.seg`.
const SEGMENT_SUFFIX: &str = ".seg";

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A segment is damaged somewhere other than the torn end of its last
    /// record: something written and synced was changed or lost.
    #[error("journal segment {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be applied to the store during recovery.
    #[error("applying journal record {offset} of {path}: {reason}")]
    Apply {
        /// The segment file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What the store said.
        reason: String,
    },
    /// The background thread that prepares segments failed or stopped.
    #[error("preparing the next journal segment failed: {0}")]
    Preparation(String),
}

impl JournalError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The file of segment `index` in `dir`.
pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:016x}{SEGMENT_SUFFIX}"))
}

/// The index a segment file name stands for, if it is one.
pub(crate) fn segment_index(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The indices of the segments in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut indices = Vec::new();
    for item in std::fs::read_dir(dir).map_err(JournalError::io(dir))? {
        let item = item.map_err(JournalError::io(dir))?;
        if let Some(index) = item.file_name().to_str().and_then(segment_index) {
            indices.push(index);
        }
    }
    indices.sort_unstable();
    Ok(indices)
}

/// Bytes a frame of `payload_len` bytes takes, padding included.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    (FRAME_HEADER_LEN + payload_len).next_multiple_of(FRAME_ALIGN) as u64
}

/// Bytes of the seal that closes a filled segment.
pub(crate) const SEAL_LEN: u64 = FRAME_HEADER_LEN as u64;

/// The header fields a frame's checksum covers, after `len`: its offset and
/// its segment's tag.
fn place(offset: u32, segment: u64) -> [u8; 8] {
    let mut fields = [0u8; 8];
    fields[..4].copy_from_slice(&offset.to_le_bytes());
    fields[4..].copy_from_slice(&(segment as u32).to_le_bytes());
    fields
}

fn checksum(len: u32, place: &[u8; 8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), place);
    crc32c::crc32c_append(crc, payload)
}

/// The frame of `payload` (empty for a seal) to be written at byte
/// `offset` of segment `segment`.
pub(crate) fn encode_frame(payload: &[u8], offset: u64, segment: u64) -> Vec<u8> {
    debug_assert!(offset.is_multiple_of(FRAME_ALIGN as u64));
    let len = u32::try_from(payload.len()).expect("record lengths are bounded below 4 GiB");
    let offset = u32::try_from(offset).expect("segments are smaller than 4 GiB");
    let place = place(offset, segment);
    let mut frame = Vec::with_capacity(frame_len(payload.len()) as usize);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&checksum(len, &place, payload).to_le_bytes());
    frame.extend_from_slice(&place);
    frame.extend_from_slice(payload);
    frame.resize(frame_len(payload.len()) as usize, 0);
    frame
}

/// What lies at one offset of a segment.
enum Frame {
    /// A whole record: its payload's range and where the next frame starts.
    Record(Range<usize>, usize),
    /// A whole seal: the segment was filled and closed here.
    Seal,
    /// Not a whole frame of this segment at this offset.
    NotWhole,
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn read_frame(bytes: &[u8], at: usize, segment: u64) -> Frame {
    let header = &bytes[at..at + FRAME_HEADER_LEN];
    let Ok(offset) = u32::try_from(at) else {
        return Frame::NotWhole;
    };
    let place = place(offset, segment);
    if header[8..16] != place {
        return Frame::NotWhole;
    }
    let (len, crc) = (word(header, 0), word(header, 4));
    let start = at + FRAME_HEADER_LEN;
    let end = start + len as usize;
    if end > bytes.len() || checksum(len, &place, &bytes[start..end]) != crc {
        return Frame::NotWhole;
    }
    if len == 0 {
        return Frame::Seal;
    }
    Frame::Record(start..end, at + frame_len(len as usize) as usize)
}

/// The records at the start of a segment.
#[derive(Debug, Default)]
pub(crate) struct SegmentScan {
    /// Payload ranges of the whole records, in order.
    pub records: Vec<Range<usize>>,
    /// Whether they end with a seal (the segment was filled and closed).
    pub sealed: bool,
    /// Where the run of whole frames ends (at the seal if there is one).
    pub end: usize,
}

/// Reads the records of segment `segment` from its start: whole frames up
/// to the first that is not whole, or a seal.
pub(crate) fn scan(bytes: &[u8], segment: u64) -> SegmentScan {
    let mut found = SegmentScan::default();
    while found.end + FRAME_HEADER_LEN <= bytes.len() {
        match read_frame(bytes, found.end, segment) {
            Frame::Record(payload, next) => {
                found.records.push(payload);
                found.end = next;
            }
            Frame::Seal => {
                found.sealed = true;
                break;
            }
            Frame::NotWhole => break,
        }
    }
    found
}

/// The offset of the first whole frame (record or seal) of segment
/// `segment` at or after `from`, searching every aligned offset: how
/// recovery tells the end of the written records (nothing whole after it)
/// from damage in their middle (whole frames after it).
pub(crate) fn next_whole_frame(bytes: &[u8], from: usize, segment: u64) -> Option<usize> {
    let start = from.next_multiple_of(FRAME_ALIGN);
    let last = bytes.len().checked_sub(FRAME_HEADER_LEN)?;
    (start..=last).step_by(FRAME_ALIGN).find(|&at| {
        // The cheap test first: the header names this place.
        u32::try_from(at).is_ok_and(|offset| bytes[at + 8..at + 16] == place(offset, segment))
            && !matches!(read_frame(bytes, at, segment), Frame::NotWhole)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(index: u64, records: &[&[u8]], size: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for record in records {
            let frame = encode_frame(record, bytes.len() as u64, index);
            bytes.extend_from_slice(&frame);
        }
        bytes.resize(size, 0);
        bytes
    }

    fn payloads<'a>(bytes: &'a [u8], found: &SegmentScan) -> Vec<&'a [u8]> {
        found.records.iter().map(|r| &bytes[r.clone()]).collect()
    }

    #[test]
    fn a_segment_reads_back_every_record_in_order() {
        let bytes = segment(3, &[b"one", b"two records", &[7; 100]], 4096);
        let found = scan(&bytes, 3);
        assert!(!found.sealed);
        assert_eq!(
            payloads(&bytes, &found),
            [&b"one"[..], b"two records", &[7; 100]]
        );
        assert_eq!(next_whole_frame(&bytes, found.end, 3), None);
    }

    #[test]
    fn a_seal_closes_a_segment() {
        let mut bytes = segment(3, &[b"one"], 4096);
        let at = frame_len(3);
        let seal = encode_frame(&[], at, 3);
        bytes[at as usize..at as usize + seal.len()].copy_from_slice(&seal);
        let found = scan(&bytes, 3);
        assert!(found.sealed);
        assert_eq!(payloads(&bytes, &found), [&b"one"[..]]);
    }

    #[test]
    fn a_torn_last_record_ends_the_records_with_nothing_whole_after_it() {
        let mut bytes = segment(0, &[b"kept", b"torn away"], 4096);
        let torn_at = frame_len(4) as usize;
        bytes[torn_at + FRAME_HEADER_LEN + 2] ^= 0xff;
        let found = scan(&bytes, 0);
        assert_eq!(payloads(&bytes, &found), [&b"kept"[..]]);
        assert_eq!(found.end, torn_at);
        assert_eq!(next_whole_frame(&bytes, found.end + 1, 0), None);
    }

    #[test]
    fn damage_in_the_middle_leaves_a_whole_record_after_it_to_find() {
        let mut bytes = segment(0, &[b"first", b"second", b"third"], 4096);
        let second = frame_len(5) as usize;
        bytes[second + FRAME_HEADER_LEN] ^= 1;
        let found = scan(&bytes, 0);
        assert_eq!(found.end, second);
        let third = second + frame_len(6) as usize;
        assert_eq!(next_whole_frame(&bytes, found.end + 1, 0), Some(third));
    }

    #[test]
    fn stale_frames_of_a_reused_segment_are_not_records_of_its_new_index() {
        let old = segment(1, &[b"old one", b"old two", b"old three"], 4096);
        let mut bytes = old.clone();
        let new = encode_frame(b"new", 0, 7);
        bytes[..new.len()].copy_from_slice(&new);
        let found = scan(&bytes, 7);
        assert_eq!(payloads(&bytes, &found), [&b"new"[..]]);
        assert_eq!(next_whole_frame(&bytes, found.end, 7), None);
        assert!(next_whole_frame(&bytes, found.end, 1).is_some());
    }

    #[test]
    fn a_frame_copied_to_another_offset_is_not_whole_there() {
        let frame = encode_frame(b"moved", 0, 0);
        let mut bytes = vec![0u8; 256];
        bytes[32..32 + frame.len()].copy_from_slice(&frame);
        assert_eq!(next_whole_frame(&bytes, 0, 0), None);
        assert!(scan(&bytes, 0).records.is_empty());
    }

    #[test]
    fn segment_names_round_trip_and_other_files_are_not_segments() {
        let path = segment_path(Path::new("/j"), 0x2a);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(segment_index(name), Some(0x2a));
        assert_eq!(segment_index("next.tmp"), None);
        assert_eq!(segment_index("2a.seg"), None);
    }
}
