//! Bytes as field elements, and back.
//!
//! A blob is cut into segments of [`SEGMENT_PAYLOAD_BYTES`]; each segment
//! becomes one KZG blob of [`ELEMENTS_PER_SEGMENT`] field elements, each
//! element a zero byte then 31 payload bytes (big-endian, so always below
//! the field's modulus). Only the last segment is padded, with zeros to its
//! own end: a 1-byte blob is one segment, never a 32 MiB one.

use crate::limits::{
    CELL_PAYLOAD_BYTES, ELEMENTS_PER_SEGMENT, PAYLOAD_BYTES_PER_ELEMENT, SEGMENT_PAYLOAD_BYTES,
};
use c_kzg::{BYTES_PER_FIELD_ELEMENT, Blob};

/// Segments a blob of `size` bytes takes (an empty blob takes one).
pub fn segment_count(size: usize) -> usize {
    size.div_ceil(SEGMENT_PAYLOAD_BYTES).max(1)
}

/// The payload bytes of segment `index` of `blob` (the last may be short).
pub fn segment_payload(blob: &[u8], index: usize) -> &[u8] {
    let start = (index * SEGMENT_PAYLOAD_BYTES).min(blob.len());
    let end = (start + SEGMENT_PAYLOAD_BYTES).min(blob.len());
    &blob[start..end]
}

/// `payload` (at most one segment's) as a KZG blob, zero-padded.
pub fn to_kzg_blob(payload: &[u8]) -> Box<Blob> {
    assert!(
        payload.len() <= SEGMENT_PAYLOAD_BYTES,
        "one segment at most"
    );
    let mut blob = Box::new(Blob::new([0; c_kzg::BYTES_PER_BLOB]));
    for (element, bytes) in payload.chunks(PAYLOAD_BYTES_PER_ELEMENT).enumerate() {
        let at = element * BYTES_PER_FIELD_ELEMENT + 1;
        blob[at..at + bytes.len()].copy_from_slice(bytes);
    }
    blob
}

/// The payload bytes of `elements` consecutive field elements (32 bytes
/// each), or None if one does not start with the zero byte packing gives.
pub fn unpack_elements(elements: &[u8]) -> Option<Vec<u8>> {
    let mut payload = Vec::with_capacity(elements.len() / 32 * PAYLOAD_BYTES_PER_ELEMENT);
    for element in elements.chunks_exact(BYTES_PER_FIELD_ELEMENT) {
        let (&first, rest) = element.split_first()?;
        if first != 0 {
            return None;
        }
        payload.extend_from_slice(rest);
    }
    Some(payload)
}

/// The range of a segment's payload bytes that data cell `cell` carries.
pub fn cell_payload_range(cell: usize) -> std::ops::Range<usize> {
    let start = cell * CELL_PAYLOAD_BYTES;
    start..start + CELL_PAYLOAD_BYTES
}

/// Elements of one segment (for the assertion that packing fills them).
const _: () = assert!(ELEMENTS_PER_SEGMENT * BYTES_PER_FIELD_ELEMENT == c_kzg::BYTES_PER_BLOB);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_round_trips_through_its_field_elements() {
        for size in [0, 1, 30, 31, 32, 1_000, SEGMENT_PAYLOAD_BYTES] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            let blob = to_kzg_blob(&payload);
            let back = unpack_elements(&blob[..]).expect("packed elements");
            assert_eq!(&back[..size], &payload[..], "size {size}");
            assert!(back[size..].iter().all(|&b| b == 0), "padding is zeros");
        }
    }

    #[test]
    fn segments_cover_the_blob_and_only_the_last_is_short() {
        assert_eq!(segment_count(0), 1);
        assert_eq!(segment_count(SEGMENT_PAYLOAD_BYTES), 1);
        assert_eq!(segment_count(SEGMENT_PAYLOAD_BYTES + 1), 2);
        let blob = vec![1u8; SEGMENT_PAYLOAD_BYTES + 5];
        assert_eq!(segment_payload(&blob, 0).len(), SEGMENT_PAYLOAD_BYTES);
        assert_eq!(segment_payload(&blob, 1).len(), 5);
        assert!(segment_payload(&blob, 2).is_empty());
    }

    #[test]
    fn an_element_with_a_nonzero_first_byte_is_not_ours() {
        let mut element = [0u8; 32];
        element[0] = 1;
        assert_eq!(unpack_elements(&element), None);
    }
}
