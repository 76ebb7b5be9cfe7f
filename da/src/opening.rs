//! Openings of one cell: 64 field elements (1,984 payload bytes) of one
//! segment, with a KZG proof against the segment's commitment, so a holder
//! of the commitment checks that piece of the blob without the rest.
//!
//! The cells are EIP-7594's: the segment's polynomial evaluated over twice
//! its domain and cut into 128 cells of 64 evaluations; the first 64 cells
//! are the segment's own elements in order (checked by a test), the rest
//! redundancy. An opening names a data cell.

use crate::DaError;
use crate::commit::{BlobCommitment, kzg_error, settings};
use crate::limits::DATA_CELLS_PER_SEGMENT;
use crate::pack::{cell_payload_range, segment_payload, to_kzg_blob, unpack_elements};
use c_kzg::{BYTES_PER_CELL, Bytes48, Cell};

/// One cell of one segment, and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellOpening {
    /// The segment.
    pub segment: u32,
    /// The data cell, `0..64`.
    pub cell: u16,
    /// The cell's 64 field elements (2,048 bytes).
    pub elements: Vec<u8>,
    /// Its KZG proof.
    pub proof: [u8; 48],
}

/// Every data cell's opening of segment `segment` of `blob`: computing one
/// costs as much as computing all (the proofs come out together).
pub fn open_segment(blob: &[u8], segment: usize) -> Result<Vec<CellOpening>, DaError> {
    let kzg_blob = to_kzg_blob(segment_payload(blob, segment));
    let (cells, proofs) = settings()
        .compute_cells_and_kzg_proofs(&kzg_blob)
        .map_err(|e| kzg_error("opening a segment", e))?;
    let openings = (0..DATA_CELLS_PER_SEGMENT).map(|cell| CellOpening {
        segment: segment as u32,
        cell: cell as u16,
        elements: cells[cell].to_bytes().to_vec(),
        proof: *proofs[cell].to_bytes(),
    });
    Ok(openings.collect())
}

/// Checks `opening` against `commitment`; returns the blob's bytes it
/// proves (a cell past the blob's end proves its padding, and gives fewer
/// or no bytes).
pub fn verify_opening(
    commitment: &BlobCommitment,
    opening: &CellOpening,
) -> Result<Vec<u8>, DaError> {
    let bad = |reason: &str| DaError::BadOpening(reason.to_string());
    let segment = opening.segment as usize;
    let cell = usize::from(opening.cell);
    let segment_commitment = commitment
        .segment(segment)
        .ok_or_else(|| bad("no such segment"))?;
    if cell >= DATA_CELLS_PER_SEGMENT {
        return Err(bad("not a data cell"));
    }
    if opening.elements.len() != BYTES_PER_CELL {
        return Err(bad("a cell is 2,048 bytes"));
    }
    let elements = Cell::from_bytes(&opening.elements).map_err(|e| kzg_error("the cell", e))?;
    let verified = settings()
        .verify_cell_kzg_proof_batch(
            &[segment_commitment],
            &[cell as u64],
            &[elements],
            &[Bytes48::new(opening.proof)],
        )
        .map_err(|e| kzg_error("checking the proof", e))?;
    if !verified {
        return Err(bad("the proof does not hold for this commitment"));
    }
    let payload = unpack_elements(&opening.elements).ok_or_else(|| bad("not packed elements"))?;
    Ok(trim_to_blob(commitment.size, segment, cell, payload))
}

/// The part of a cell's payload that lies within a blob of `size` bytes.
fn trim_to_blob(size: u64, segment: usize, cell: usize, mut payload: Vec<u8>) -> Vec<u8> {
    let start =
        (segment * crate::limits::SEGMENT_PAYLOAD_BYTES + cell_payload_range(cell).start) as u64;
    let keep = size.saturating_sub(start).min(payload.len() as u64) as usize;
    payload.truncate(keep);
    payload
}
