//! Deterministic appends for the `ordo-log-stress` tool and the crash tests
//! that check its output: both sides compute the same descriptor from the
//! same `(cycle, task, i)`, so a test can check a stored header byte for byte.

use crate::{EntryDescriptor, Geometry};

/// The descriptor `task` appends as its `i`-th append in `cycle`.
pub fn descriptor(cycle: u64, task: u64, i: u64) -> EntryDescriptor {
    let id = format!("{cycle}:{task}:{i}");
    EntryDescriptor {
        commitment: *blake3::hash(id.as_bytes()).as_bytes(),
        geometry: Geometry {
            payload_len: i,
            chunk_size: 4096,
            data_shards: 4,
            parity_shards: 2,
        },
        tags: vec![[task as u8; 32]],
        submitter: [cycle as u8; 20],
    }
}
