//! A blob's commitment: one KZG commitment per segment, its size, and the
//! blob id they hash to.
//!
//! Bytes (`ODC1`): `"ODC1" | size u64 LE | segments u32 LE | segments x 48`.
//! Nothing may follow, and the count must be the one `size` implies. Each
//! commitment is checked to be a point of the curve where it is used (the
//! KZG library refuses any other as malformed), so bytes from a stranger
//! can decode but never verify.

use crate::DaError;
use crate::limits::{MAX_BLOB_BYTES, MAX_SEGMENTS};
use crate::pack::{segment_count, segment_payload, to_kzg_blob};
use c_kzg::{Bytes48, KzgSettings};

const MAGIC: &[u8; 4] = b"ODC1";
/// Bytes before the commitments.
const FIXED: usize = 4 + 8 + 4;
const ID_CONTEXT: &str = "ordo/da/blob-id/v1";

/// What a blob commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCommitment {
    /// The blob's length in bytes.
    pub size: u64,
    /// The KZG commitment of each segment, in order.
    pub segments: Vec<[u8; 48]>,
}

/// The settings every commitment uses: Ethereum's trusted setup (the
/// KZG ceremony of EIP-4844), embedded in the binary, loaded once.
pub fn settings() -> &'static KzgSettings {
    // Precompute level 0: the least memory; openings are rare next to
    // commitments, which precomputation does not speed up.
    c_kzg::ethereum_kzg_settings(0)
}

pub(crate) fn kzg_error(what: &str, e: c_kzg::Error) -> DaError {
    DaError::Kzg(format!("{what}: {e:?}"))
}

/// Commits to `blob` (at most [`MAX_BLOB_BYTES`]), its segments on every
/// core: one segment costs about 34 ms of one core (docs/BENCHMARKS.md),
/// and the segments are independent.
pub fn commit(blob: &[u8]) -> Result<BlobCommitment, DaError> {
    check_size(blob.len())?;
    let count = segment_count(blob.len());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    let mut segments = vec![[0u8; 48]; count];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || -> Result<Vec<(usize, [u8; 48])>, DaError> {
                    (first..count)
                        .step_by(threads)
                        .map(|index| Ok((index, commit_segment(segment_payload(blob, index))?)))
                        .collect()
                })
            })
            .collect();
        for worker in workers {
            let done = worker.join().expect("a commitment worker does not panic")?;
            for (index, commitment) in done {
                segments[index] = commitment;
            }
        }
        Ok::<(), DaError>(())
    })?;
    Ok(BlobCommitment {
        size: blob.len() as u64,
        segments,
    })
}

/// The commitment of one segment's payload.
pub fn commit_segment(payload: &[u8]) -> Result<[u8; 48], DaError> {
    let commitment = settings()
        .blob_to_kzg_commitment(&to_kzg_blob(payload))
        .map_err(|e| kzg_error("committing a segment", e))?;
    Ok(*commitment.to_bytes())
}

fn check_size(size: usize) -> Result<(), DaError> {
    match size > MAX_BLOB_BYTES {
        true => Err(DaError::TooLarge {
            size: size as u64,
            max: MAX_BLOB_BYTES as u64,
        }),
        false => Ok(()),
    }
}

impl BlobCommitment {
    /// The blob's id: a keyed BLAKE3 hash of the commitment's bytes, so it
    /// names the size and every segment.
    pub fn id(&self) -> [u8; 32] {
        blake3::derive_key(ID_CONTEXT, &self.encode())
    }

    /// Whether `blob` is the blob committed to: same size, same segments.
    pub fn matches(&self, blob: &[u8]) -> Result<bool, DaError> {
        Ok(commit(blob)? == *self)
    }

    /// The `ODC1` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + 48 * self.segments.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for segment in &self.segments {
            out.extend_from_slice(segment);
        }
        out
    }

    /// Parses `ODC1` bytes, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, DaError> {
        let bad = |reason: &str| DaError::BadCommitment(reason.to_string());
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("not ODC1"))?;
        let (size, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("truncated"))?;
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated"))?;
        let size = u64::from_le_bytes(*size);
        let count = u32::from_le_bytes(*count) as usize;
        check_size(usize::try_from(size).unwrap_or(usize::MAX))?;
        if count > MAX_SEGMENTS || count != segment_count(size as usize) {
            return Err(bad("the segment count does not fit the size"));
        }
        if rest.len() != 48 * count {
            return Err(bad("the commitments do not fill the bytes"));
        }
        let segments = rest
            .chunks_exact(48)
            .map(|c| c.try_into().expect("48 bytes"))
            .collect();
        Ok(Self { size, segments })
    }

    /// Segment `index`'s commitment, as the library takes it.
    pub(crate) fn segment(&self, index: usize) -> Option<Bytes48> {
        self.segments.get(index).map(|c| Bytes48::new(*c))
    }
}
