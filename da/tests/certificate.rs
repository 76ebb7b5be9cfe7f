//! Certificates: what the stand-alone verifier accepts, and the strangers,
//! forgers and replayers it refuses.

use ordo_da::certificate::{Certificate, CertificateError, Trust, log_id, verify};
use ordo_log::{Coder, EntryDescriptor, EntryHeader};
use ordo_txn::Address;
use ordo_txn::da::part_tags;
use ordo_txn::testkit::signing_key;

const SEQUENCER: u8 = 7;
const STRANGER: u8 = 8;

fn address(key: u8) -> Address {
    ordo_txn::address_of(&signing_key(key))
}

/// A blob of `size` bytes cut into parts of at most `part` bytes, ordered
/// from seq 5 on and recorded right after, signed by `signers`.
fn certified(size: usize, part: usize, signers: &[u8]) -> (Vec<u8>, Certificate) {
    let blob: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let commitment = ordo_da::commit(&blob).expect("commits");
    let mut coder = Coder::new();
    let headers: Vec<Vec<u8>> = blob
        .chunks(part)
        .enumerate()
        .map(|(i, bytes)| {
            let entry = coder.encode(bytes, 4096, 4, 2).expect("codes");
            EntryHeader {
                seq: 5 + i as u64,
                entry: EntryDescriptor::of(&entry, part_tags(commitment.id()), address(SEQUENCER)),
            }
            .encode()
        })
        .collect();
    let mut certificate = Certificate {
        log: log_id(b"genesis header"),
        blob: commitment.id(),
        owner: [3; 20],
        size: size as u64,
        expires_at: 2_000_000_000,
        recorded_in: 5 + headers.len() as u64,
        commitment: commitment.encode(),
        headers,
        signatures: vec![],
        chain: None,
    };
    sign(&mut certificate, signers);
    (blob, certificate)
}

fn sign(certificate: &mut Certificate, signers: &[u8]) {
    let statement = certificate.statement();
    certificate.signatures = signers
        .iter()
        .map(|&k| ordo_txn::sign::sign_hash(statement, &signing_key(k)).expect("signs"))
        .collect();
}

fn trusting(keys: &[u8], threshold: usize) -> Trust {
    Trust {
        signers: keys.iter().map(|&k| address(k)).collect(),
        threshold,
        log: Some(log_id(b"genesis header")),
    }
}

#[test]
fn a_certificate_signed_by_the_trusted_sequencer_verifies_and_its_blob_checks() {
    let (blob, certificate) = certified(300_000, 128 * 1024, &[SEQUENCER]);
    let decoded = Certificate::decode(&certificate.encode()).expect("decodes");
    assert_eq!(decoded, certificate);
    let verified = verify(&decoded, &trusting(&[SEQUENCER], 1)).expect("verifies");
    assert_eq!(verified.signed_by, vec![address(SEQUENCER)]);
    assert_eq!(verified.parts.len(), 3);
    decoded
        .check_blob(&blob)
        .expect("the blob is the certified one");
}

#[test]
fn a_certificate_signed_by_a_stranger_is_refused() {
    let (_, certificate) = certified(1, 1024, &[STRANGER]);
    let refused = verify(&certificate, &trusting(&[SEQUENCER], 1));
    assert!(
        matches!(
            refused,
            Err(CertificateError::TooFewSigners {
                signed: 0,
                needed: 1,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn a_quorum_needs_that_many_distinct_trusted_signers() {
    let (_, mut certificate) = certified(1000, 1024, &[1, 2]);
    let voters = trusting(&[1, 2, 3], 2);
    verify(&certificate, &voters).expect("two of three");
    sign(&mut certificate, &[1, 1]);
    assert!(matches!(
        verify(&certificate, &voters),
        Err(CertificateError::TooFewSigners { signed: 1, .. })
    ));
}

/// `headers` with the last one's seq moved one on (still in order).
fn moved_seq(headers: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut moved = headers.to_vec();
    let last = moved.last_mut().expect("a part");
    let mut header = EntryHeader::decode(last).expect("a header");
    header.seq += 1;
    *last = header.encode();
    moved
}

/// What a forgery's refusal must be.
type Expected = fn(&CertificateError) -> bool;

#[test]
fn forged_certificates_are_refused() {
    let (_, good) = certified(200_000, 128 * 1024, &[SEQUENCER]);
    let trust = trusting(&[SEQUENCER], 1);
    let (_, other) = certified(5, 1024, &[SEQUENCER]);
    let forgeries: Vec<(&str, Certificate, Expected)> = vec![
        (
            "another blob's commitment",
            Certificate {
                commitment: other.commitment.clone(),
                ..good.clone()
            },
            |e| matches!(e, CertificateError::Commitment { .. }),
        ),
        (
            "another size",
            Certificate {
                size: good.size - 1,
                ..good.clone()
            },
            |e| matches!(e, CertificateError::Commitment { .. }),
        ),
        (
            "a part of another blob",
            Certificate {
                headers: vec![good.headers[0].clone(), other.headers[0].clone()],
                ..good.clone()
            },
            |e| matches!(e, CertificateError::Parts(_)),
        ),
        (
            "parts out of order",
            Certificate {
                headers: good.headers.iter().rev().cloned().collect(),
                ..good.clone()
            },
            |e| matches!(e, CertificateError::Parts(_)),
        ),
        (
            "a damaged signature",
            Certificate {
                signatures: vec![[9; 65]],
                ..good.clone()
            },
            |e| matches!(e, CertificateError::TooFewSigners { .. }),
        ),
        (
            "a part moved to another seq",
            Certificate {
                headers: moved_seq(&good.headers),
                ..good.clone()
            },
            |e| matches!(e, CertificateError::TooFewSigners { .. }),
        ),
    ];
    for (what, forged, expected) in forgeries {
        let refused = verify(&forged, &trust).expect_err(what);
        assert!(expected(&refused), "{what}: {refused}");
    }
    // The log is signed too: a verifier that names no log still refuses a
    // certificate moved to another under the same signatures.
    let moved = Certificate {
        log: log_id(b"another genesis"),
        ..good.clone()
    };
    let any_log = Trust { log: None, ..trust };
    assert!(matches!(
        verify(&moved, &any_log),
        Err(CertificateError::TooFewSigners { .. })
    ));
}

#[test]
fn a_certificate_replayed_from_another_log_is_refused() {
    let (_, mut certificate) = certified(10, 1024, &[SEQUENCER]);
    certificate.log = log_id(b"another genesis");
    sign(&mut certificate, &[SEQUENCER]);
    assert!(matches!(
        verify(&certificate, &trusting(&[SEQUENCER], 1)),
        Err(CertificateError::WrongLog { .. })
    ));
}

#[test]
fn bytes_that_are_not_the_certified_blob_are_refused() {
    let (blob, certificate) = certified(140_000, 64 * 1024, &[SEQUENCER]);
    let mut changed = blob.clone();
    changed[100_000] ^= 1;
    assert!(matches!(
        certificate.check_blob(&changed),
        Err(CertificateError::NotTheBlob(_))
    ));
    assert!(certificate.check_blob(&blob[1..]).is_err());
}

#[test]
fn no_trust_and_damaged_bytes_are_typed_errors() {
    let (_, certificate) = certified(10, 1024, &[SEQUENCER]);
    let none = Trust {
        signers: vec![],
        threshold: 1,
        log: None,
    };
    assert_eq!(verify(&certificate, &none), Err(CertificateError::NoTrust));
    let bytes = certificate.encode();
    for cut in [0, 3, 40, bytes.len() - 1] {
        assert!(matches!(
            Certificate::decode(&bytes[..cut]),
            Err(CertificateError::Malformed(_))
        ));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Certificate::decode(&longer).is_err());
}

#[test]
fn the_log_records_exactly_the_blobs_the_commitments_cover() {
    use ordo_da::limits::{MAX_BLOB_BYTES, MAX_SEGMENTS};
    assert_eq!(ordo_txn::da::MAX_DA_BLOB_BYTES, MAX_BLOB_BYTES as u64);
    let largest = 16 + 48 * MAX_SEGMENTS;
    assert!(
        largest <= ordo_txn::da::MAX_DA_COMMITMENT_BYTES,
        "{largest}"
    );
}
