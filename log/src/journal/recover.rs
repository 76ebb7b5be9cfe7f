//! Recovery: every record the journal still holds, applied in order.
//!
//! Which segments count: the writer retires segments only after the store
//! has made everything in them durable, oldest first, and numbers segments
//! without gaps. A missing index therefore means everything below it was
//! retired (a crash may persist the unlinks in any order), so recovery
//! reads only the segments after the last gap.
//!
//! Which damage is allowed: each record is synced before the next is
//! written, and a segment is sealed (the seal synced) before the next one
//! gets its name. So every live segment but the last must end in its seal,
//! and in the last the records end at the first frame that is not whole,
//! with nothing whole after it: a torn last record, zeros, or stale frames
//! of the segment's earlier use. Anything else is [`JournalError::Corrupt`]:
//! acknowledged writes would otherwise vanish without a word.

use super::format::{JournalError, list_segments, next_whole_frame, scan, segment_path};
use std::path::Path;

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Every segment in the directory (read or not), ascending: the writer
    /// retires them once the store has made the applied records durable.
    pub segments: Vec<u64>,
    /// Records applied.
    pub records: u64,
}

/// The segments after the last gap in `all` (ascending).
fn live_segments(all: &[u64]) -> &[u64] {
    let after_gap = all
        .windows(2)
        .rposition(|pair| pair[1] != pair[0] + 1)
        .map_or(0, |at| at + 1);
    &all[after_gap..]
}

fn read(path: &Path) -> Result<Vec<u8>, JournalError> {
    std::fs::read(path).map_err(JournalError::io(path))
}

/// Checks the damage rules over the live segments before anything is
/// applied.
fn check_ends(dir: &Path, live: &[u64]) -> Result<(), JournalError> {
    for (position, &index) in live.iter().enumerate() {
        let path = segment_path(dir, index);
        let bytes = read(&path)?;
        let found = scan(&bytes, index);
        if found.sealed {
            continue;
        }
        let corrupt = |offset: usize, reason: &str| JournalError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason: reason.into(),
        };
        if position + 1 < live.len() {
            return Err(corrupt(
                found.end,
                "a frame is broken in a segment that a later one follows",
            ));
        }
        if let Some(at) = next_whole_frame(&bytes, found.end + 1, index) {
            return Err(corrupt(at, "a whole frame follows a broken one"));
        }
    }
    Ok(())
}

/// One segment as a diagnostic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment file.
    pub path: std::path::PathBuf,
    /// Whole records at its start.
    pub records: usize,
    /// Whether they end with a seal.
    pub sealed: bool,
    /// Where its records end: the next record of an open segment goes here.
    pub end: u64,
}

/// Every segment of the journal in `dir`, ascending, without applying or
/// checking anything: for diagnostics and for tests that damage a journal
/// on purpose.
pub fn inspect(dir: &Path) -> Result<Vec<SegmentSummary>, JournalError> {
    let mut summaries = Vec::new();
    for index in list_segments(dir)? {
        let path = segment_path(dir, index);
        let found = scan(&read(&path)?, index);
        summaries.push(SegmentSummary {
            records: found.records.len(),
            sealed: found.sealed,
            end: found.end as u64,
            path,
        });
    }
    Ok(summaries)
}

/// Applies every record of the journal in `dir`, in order, with `apply`;
/// fails on damage other than a torn last record, before applying anything.
pub(crate) fn recover(
    dir: &Path,
    mut apply: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Recovered, JournalError> {
    let segments = list_segments(dir)?;
    let live = live_segments(&segments);
    check_ends(dir, live)?;
    let mut records = 0;
    for &index in live {
        let path = segment_path(dir, index);
        let bytes = read(&path)?;
        for range in scan(&bytes, index).records {
            let offset = (range.start - super::format::FRAME_HEADER_LEN) as u64;
            apply(&bytes[range]).map_err(|reason| JournalError::Apply {
                path: path.clone(),
                offset,
                reason,
            })?;
            records += 1;
        }
    }
    Ok(Recovered { segments, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_before_the_last_gap_were_retired_and_are_not_read() {
        assert_eq!(live_segments(&[]), &[] as &[u64]);
        assert_eq!(live_segments(&[4, 5, 6]), &[4, 5, 6]);
        assert_eq!(live_segments(&[1, 3, 4]), &[3, 4]);
        assert_eq!(live_segments(&[1, 2, 5, 7, 8]), &[7, 8]);
    }
}
