//! Commitments and openings of blobs: deterministic, bound to every byte
//! and the size, and an opening proves exactly its cell's bytes against
//! exactly its blob's commitment.

use ordo_da::limits::{
    CELL_PAYLOAD_BYTES, DATA_CELLS_PER_SEGMENT, MAX_BLOB_BYTES, SEGMENT_PAYLOAD_BYTES,
};
use ordo_da::{BlobCommitment, CellOpening, DaError, commit, open_segment, verify_opening};

/// `size` bytes that never repeat with a short period (so that segments
/// differ), from `seed`.
fn blob(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_commitment_is_deterministic_and_names_every_byte_and_the_size() {
    let data = blob(SEGMENT_PAYLOAD_BYTES + 100, 1);
    let committed = commit(&data).expect("commits");
    assert_eq!(committed.segments.len(), 2);
    assert_eq!(commit(&data).expect("again"), committed);
    assert!(committed.matches(&data).expect("checks"));
    let mut flipped = data.clone();
    flipped[SEGMENT_PAYLOAD_BYTES + 7] ^= 1;
    assert!(!committed.matches(&flipped).expect("checks"));
    let mut longer = data.clone();
    longer.push(0);
    let padded = commit(&longer).expect("commits");
    assert_eq!(
        padded.segments, committed.segments,
        "a trailing zero pads alike"
    );
    assert_ne!(padded.id(), committed.id(), "but the size tells them apart");
}

#[test]
fn commitment_bytes_round_trip_and_anything_else_is_refused() {
    let committed = commit(&blob(1000, 2)).expect("commits");
    let bytes = committed.encode();
    assert_eq!(BlobCommitment::decode(&bytes), Ok(committed.clone()));
    for cut in [0, 3, 15, bytes.len() - 1] {
        assert!(
            BlobCommitment::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(BlobCommitment::decode(&trailing).is_err());
    let mut wrong_count = bytes.clone();
    wrong_count[4..12].copy_from_slice(&(SEGMENT_PAYLOAD_BYTES as u64 * 3).to_le_bytes());
    assert!(
        BlobCommitment::decode(&wrong_count).is_err(),
        "size and count disagree"
    );
    // Bytes that are no curve point decode, and no opening holds against
    // them: the library checks points where it uses them.
    let mut not_a_point = bytes;
    not_a_point[16..64].fill(0xff);
    let garbled = BlobCommitment::decode(&not_a_point).expect("the layout is right");
    let opening = open_segment(&blob(1000, 2), 0)
        .expect("opens")
        .swap_remove(0);
    assert!(matches!(
        verify_opening(&garbled, &opening),
        Err(DaError::Kzg(_))
    ));
}

#[test]
fn a_blob_over_the_limit_is_refused_with_its_size() {
    let oversized = vec![0u8; MAX_BLOB_BYTES + 1];
    assert_eq!(
        commit(&oversized),
        Err(DaError::TooLarge {
            size: MAX_BLOB_BYTES as u64 + 1,
            max: MAX_BLOB_BYTES as u64
        })
    );
}

#[test]
fn the_data_cells_are_the_segment_in_order_and_each_opening_proves_its_bytes() {
    let data = blob(SEGMENT_PAYLOAD_BYTES + 3 * CELL_PAYLOAD_BYTES + 10, 3);
    let committed = commit(&data).expect("commits");
    let mut proved = Vec::new();
    for segment in 0..committed.segments.len() {
        let openings = open_segment(&data, segment).expect("opens");
        assert_eq!(openings.len(), DATA_CELLS_PER_SEGMENT);
        for opening in &openings {
            proved.extend(verify_opening(&committed, opening).expect("an honest opening holds"));
        }
    }
    assert_eq!(proved, data, "the cells, trimmed to the size, are the blob");
}

fn an_opening() -> (BlobCommitment, CellOpening, Vec<u8>) {
    let data = blob(SEGMENT_PAYLOAD_BYTES * 2, 4);
    let committed = commit(&data).expect("commits");
    let opening = open_segment(&data, 1).expect("opens").swap_remove(5);
    (committed, opening, data)
}

#[test]
fn a_tampered_moved_or_foreign_opening_is_refused() {
    let (committed, honest, _) = an_opening();
    let refused = |opening: &CellOpening| verify_opening(&committed, opening).is_err();
    let mut flipped = honest.clone();
    flipped.elements[100] ^= 1;
    assert!(refused(&flipped), "a changed byte");
    let mut moved = honest.clone();
    moved.cell = 6;
    assert!(refused(&moved), "another cell's place");
    let mut other_segment = honest.clone();
    other_segment.segment = 0;
    assert!(refused(&other_segment), "another segment's commitment");
    let mut no_segment = honest.clone();
    no_segment.segment = 9;
    assert!(refused(&no_segment), "no such segment");
    let mut parity = honest.clone();
    parity.cell = 64;
    assert!(refused(&parity), "a redundancy cell is no data");
    let mut short = honest.clone();
    short.elements.pop();
    assert!(refused(&short), "a short cell");
    let mut bad_proof = honest.clone();
    bad_proof.proof = open_segment(&blob(SEGMENT_PAYLOAD_BYTES, 9), 0).expect("opens")[5].proof;
    assert!(refused(&bad_proof), "another blob's proof");
    let foreign = commit(&blob(SEGMENT_PAYLOAD_BYTES * 2, 5)).expect("commits");
    assert!(
        verify_opening(&foreign, &honest).is_err(),
        "another blob's commitment"
    );
}
