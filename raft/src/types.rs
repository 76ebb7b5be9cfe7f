//! What the raft cluster agrees on: batches of entry descriptors, and the
//! seqs applying them assigned.

use ordo_log::{EntryDescriptor, EntryHeader, LogError};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A voter's id in the cluster: chosen by the operator, never reused.
pub type NodeId = u64;

/// Where a voter listens: its raft and append service address.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The raft sequencer's types: the log carries [`HeaderBatch`]es,
    /// applying one answers [`Assigned`].
    pub TypeConfig:
        D = HeaderBatch,
        R = Assigned,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Most descriptors one raft entry carries: bounds a raft entry to about
/// 1 MiB of headers (each at most [`ordo_log::header::MAX_HEADER_BYTES`]).
pub const MAX_BATCH_DESCRIPTORS: usize = 1024;

/// Descriptors proposed together as one raft entry: one quorum round and
/// one flush per voter for the whole batch (openraft 0.9 flushes every
/// client write on its own, so batching is the only group commit).
///
/// On the wire and on disk each descriptor is the canonical header
/// encoding with seq 0 (its seq is assigned when the batch is applied),
/// so a damaged byte is caught by the header's checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<u8>>", into = "Vec<Vec<u8>>")]
pub struct HeaderBatch {
    /// The descriptors, in the order they get seqs.
    pub descriptors: Vec<EntryDescriptor>,
}

impl From<HeaderBatch> for Vec<Vec<u8>> {
    fn from(batch: HeaderBatch) -> Self {
        batch
            .descriptors
            .into_iter()
            .map(|entry| EntryHeader { seq: 0, entry }.encode())
            .collect()
    }
}

/// Why bytes are not a [`HeaderBatch`].
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A descriptor failed to decode.
    #[error("descriptor {index} of a header batch: {source}")]
    Descriptor {
        /// Its place in the batch.
        index: usize,
        /// What was wrong.
        source: LogError,
    },
    /// A descriptor carried a seq: only the state machine assigns seqs.
    #[error("descriptor {index} of a header batch carries seq {seq}; proposals carry none")]
    CarriesSeq {
        /// Its place in the batch.
        index: usize,
        /// The seq it carried.
        seq: u64,
    },
}

impl TryFrom<Vec<Vec<u8>>> for HeaderBatch {
    type Error = BatchError;

    fn try_from(encoded: Vec<Vec<u8>>) -> Result<Self, BatchError> {
        let descriptors = encoded
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                let header = EntryHeader::decode(bytes)
                    .map_err(|source| BatchError::Descriptor { index, source })?;
                match header.seq {
                    0 => Ok(header.entry),
                    seq => Err(BatchError::CarriesSeq { index, seq }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { descriptors })
    }
}

/// What applying one raft entry did: the seqs `first..first + count` went
/// to its descriptors, in order (`count` is 0 for raft's own entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    /// The first seq assigned.
    pub first: u64,
    /// How many seqs were assigned.
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_log::stress;

    #[test]
    fn a_batch_round_trips_through_its_wire_form() {
        let batch = HeaderBatch {
            descriptors: (0..3).map(|i| stress::descriptor(1, 0, i)).collect(),
        };
        let bytes = postcard::to_allocvec(&batch).expect("encodes");
        let back: HeaderBatch = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, batch);
    }

    #[test]
    fn a_damaged_descriptor_fails_the_whole_batch() {
        let mut encoded: Vec<Vec<u8>> = HeaderBatch {
            descriptors: vec![stress::descriptor(1, 0, 0)],
        }
        .into();
        encoded[0][12] ^= 1;
        let refused = HeaderBatch::try_from(encoded);
        assert!(
            matches!(refused, Err(BatchError::Descriptor { index: 0, .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_proposal_that_names_its_own_seq_is_refused() {
        let header = EntryHeader {
            seq: 7,
            entry: stress::descriptor(1, 0, 0),
        };
        let refused = HeaderBatch::try_from(vec![header.encode()]);
        assert!(
            matches!(refused, Err(BatchError::CarriesSeq { index: 0, seq: 7 })),
            "{refused:?}"
        );
    }
}
