//! A shard or a run of chunks with its proof, as storage nodes and
//! `Log.Read` hand them over: checking them against a commitment never
//! panics, whatever the geometry, lengths and hashes claim.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_log::{ChunkRangeProof, Geometry, Hash, Shard, verify_chunks, verify_shard};

/// Reads fields off the front of the input, zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }

    fn hashes(&mut self) -> Vec<Hash> {
        let count = self.take::<1>()[0] % 40;
        (0..count).map(|_| self.take::<32>()).collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let commitment = input.take::<32>();
    let geometry = Geometry {
        payload_len: u64::from(u32::from_le_bytes(input.take::<4>())),
        chunk_size: 1 << (input.take::<1>()[0] % 24),
        data_shards: u16::from(input.take::<1>()[0]),
        parity_shards: u16::from(input.take::<1>()[0]),
    };
    let index = u16::from_le_bytes(input.take::<2>());
    let proof = input.hashes();
    let (first_leaf, last_leaf) = (
        u64::from(input.take::<1>()[0]),
        u64::from(input.take::<1>()[0]),
    );
    let siblings = input.hashes();
    let rest = input.0;
    let shard = Shard {
        index,
        bytes: rest.to_vec(),
        proof,
    };
    let _ = verify_shard(&commitment, &geometry, &shard);
    let run = ChunkRangeProof {
        first_leaf,
        last_leaf,
        siblings,
    };
    let chunks: Vec<&[u8]> = rest.chunks(geometry.chunk_size as usize).collect();
    let _ = verify_chunks(&commitment, &geometry, &run, &chunks);
});
