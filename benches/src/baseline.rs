//! reed-solomon-erasure, the other Reed-Solomon crate we measured.
//!
//! ordo codes with reed-solomon-simd. The coding benchmark runs this wrapper
//! on the same shards so the choice stays backed by a number anyone can rerun.

use reed_solomon_erasure::galois_8::ReedSolomon;

/// Parity computation with reed-solomon-erasure (pure Rust build).
#[derive(Debug)]
pub struct ErasureBaseline {
    code: ReedSolomon,
}

impl ErasureBaseline {
    /// A `k + m` code.
    pub fn new(k: usize, m: usize) -> Result<Self, reed_solomon_erasure::Error> {
        Ok(Self {
            code: ReedSolomon::new(k, m)?,
        })
    }

    /// Fills the last `m` of `shards` with parity for the first `k`.
    pub fn encode(&self, shards: &mut [Vec<u8>]) -> Result<(), reed_solomon_erasure::Error> {
        self.code.encode(shards)
    }

    /// Rebuilds the missing (`None`) shards in place.
    pub fn reconstruct(
        &self,
        shards: &mut [Option<Vec<u8>>],
    ) -> Result<(), reed_solomon_erasure::Error> {
        self.code.reconstruct(shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_two_lost_shards_of_four_plus_two_come_back() {
        let code = ErasureBaseline::new(4, 2).expect("valid code");
        let mut shards: Vec<Vec<u8>> = (0..6).map(|i| crate::payload(256, i + 1)).collect();
        code.encode(&mut shards).expect("encodes");
        for (a, b) in [(0, 1), (2, 5), (4, 5)] {
            let mut partial: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
            partial[a] = None;
            partial[b] = None;
            code.reconstruct(&mut partial)
                .expect("two losses are recoverable");
            let rebuilt: Vec<Vec<u8>> = partial.into_iter().map(|s| s.expect("rebuilt")).collect();
            assert_eq!(rebuilt, shards);
        }
    }
}
