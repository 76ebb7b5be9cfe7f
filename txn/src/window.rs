//! The conflict window: which keys the most recent commit versions wrote.
//!
//! A transaction that read at version `V` conflicts if any key it read (or
//! any key in a range it read) was written at a version above `V`. Keeping
//! the last write version of every key written in the last
//! [`CONFLICT_WINDOW`](crate::limits::CONFLICT_WINDOW) versions answers that
//! for any `V` inside the window, point reads and ranges alike, without
//! touching the store. It is rebuilt from the store's change log on open, so
//! it is a function of the log prefix like everything else.

use crate::FastMap;
use crate::record::Read;
use ordo_kv::StreamId;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;

/// A key of some stream.
type StreamKey = (StreamId, Vec<u8>);

/// Last write version of each recently written key.
///
/// Point reads are checked with a hash lookup; range reads by walking the
/// write sets of the versions after the read version, newest first, which is
/// short for the fresh snapshots most transactions read at (and bounded by
/// the window for stale ones). Both sit on the per-transaction path of
/// replay, so neither allocates.
#[derive(Debug, Default)]
pub struct ConflictWindow {
    last_write: FastMap<StreamId, FastMap<Vec<u8>, u64>>,
    by_version: VecDeque<(u64, Vec<StreamKey>)>,
    keys: usize,
}

impl ConflictWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `version` wrote `keys`. Versions must be recorded in increasing order.
    pub fn record(&mut self, version: u64, keys: Vec<StreamKey>) {
        for (stream, key) in &keys {
            let stream_keys = self.last_write.entry(*stream).or_default();
            if stream_keys.insert(key.clone(), version).is_none() {
                self.keys += 1;
            }
        }
        self.by_version.push_back((version, keys));
    }

    /// Forgets every version at or below `version`.
    pub fn evict_through(&mut self, version: u64) {
        while self.by_version.front().is_some_and(|(v, _)| *v <= version) {
            let Some((v, keys)) = self.by_version.pop_front() else {
                break;
            };
            for (stream, key) in keys {
                let Some(stream_keys) = self.last_write.get_mut(&stream) else {
                    continue;
                };
                // One hash per evicted key: this runs for every write.
                if let Entry::Occupied(last) = stream_keys.entry(key)
                    && *last.get() == v
                {
                    last.remove();
                    self.keys -= 1;
                    if stream_keys.is_empty() {
                        self.last_write.remove(&stream);
                    }
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
                let written = self.last_write.get(stream)?.get(key.as_slice())?;
                (*written > after).then(|| (*stream, key.clone()))
            }
            Read::Range { stream, start, end } => {
                let in_range =
                    |k: &[u8]| k >= start.as_slice() && end.as_deref().is_none_or(|end| k < end);
                self.by_version
                    .iter()
                    .rev()
                    .take_while(|(version, _)| *version > after)
                    .flat_map(|(_, keys)| keys)
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
}
