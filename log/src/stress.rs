//! Deterministic appends for the `ordo-log-stress` tool and the crash tests
//! that check its output: both sides compute the same descriptor (or, for
//! the joint log, the same payload) from the same `(cycle, task, i)`, so a
//! test can check what was stored byte for byte.

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

/// The payload `task` appends as its `i`-th entry in `cycle` to a joint
/// log: 1 to 3,000 bytes, so groups of a few entries cross segment ends.
pub fn payload(cycle: u64, task: u64, i: u64) -> Vec<u8> {
    let len = 1 + (i * 97 + task * 31) % 3000;
    let seed = blake3::hash(format!("{cycle}:{task}:{i}").as_bytes());
    (0..len as usize)
        .map(|at| seed.as_bytes()[at % 32] ^ (at as u8))
        .collect()
}
