//! Entry headers: what the sequencer orders, and their canonical encoding.
//!
//! A header names an entry without carrying its payload: the commitment, the
//! geometry needed to check shards against it, the tags (stream ids) readers
//! filter by, and the submitter. The sequencer never looks further than this.
//!
//! # Encoding (version 1)
//!
//! ```text
//! version      u8      = 1
//! seq          u64 LE
//! commitment   [u8; 32]
//! payload_len  u64 LE
//! chunk_size   u32 LE
//! data_shards  u16 LE
//! parity       u16 LE
//! tag_count    u8      <= MAX_TAGS
//! tags         [u8; 32] x tag_count
//! submitter    [u8; 20]
//! crc32c       u32 LE  over every byte before it
//! ```
//!
//! The encoding is canonical: one header has exactly one encoding, and
//! decoding rejects short input, trailing bytes, unknown versions, invalid
//! geometry and any altered byte (the CRC-32C catches every burst of up to
//! 32 bits, so any single changed byte).

use crate::{Geometry, Hash, LogError, limits::MAX_TAGS};

/// A 32-byte stream id: what a reader filters entries by.
pub type StreamId = [u8; 32];

/// A 20-byte account address: who submitted an entry.
pub type Address = [u8; 20];

/// Current header encoding version.
pub const HEADER_VERSION: u8 = 1;

/// Encoded size of a header without tags.
const FIXED_LEN: usize = 1 + 8 + 32 + 16 + 1 + 20 + 4;

/// Largest encoded header.
pub const MAX_HEADER_BYTES: usize = FIXED_LEN + 32 * MAX_TAGS;

/// An entry as submitted for ordering: everything in a header but its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDescriptor {
    /// Commitment to the entry's shards (see [`crate::entry`]).
    pub commitment: Hash,
    /// The entry's shape, bound into the commitment.
    pub geometry: Geometry,
    /// Stream ids this entry belongs to.
    pub tags: Vec<StreamId>,
    /// Who submitted the entry.
    pub submitter: Address,
}

impl EntryDescriptor {
    /// What the sequencer orders for the coded entry `encoded`.
    pub fn of(encoded: &crate::EncodedEntry, tags: Vec<StreamId>, submitter: Address) -> Self {
        Self {
            commitment: encoded.commitment,
            geometry: encoded.geometry,
            tags,
            submitter,
        }
    }

    /// Checks the descriptor against the limits.
    pub fn validate(&self) -> Result<(), LogError> {
        self.geometry.validate()?;
        if self.tags.len() > MAX_TAGS {
            return Err(LogError::TooManyTags {
                count: self.tags.len(),
                max: MAX_TAGS,
            });
        }
        Ok(())
    }
}

/// An ordered entry: its place in the log and its descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Position in the log, gap-free from 0.
    pub seq: u64,
    /// What was ordered.
    pub entry: EntryDescriptor,
}

impl EntryHeader {
    /// Canonical bytes of the header. The descriptor must be valid.
    pub fn encode(&self) -> Vec<u8> {
        let e = &self.entry;
        let mut out = Vec::with_capacity(FIXED_LEN + 32 * e.tags.len());
        out.push(HEADER_VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&e.commitment);
        out.extend_from_slice(&e.geometry.to_bytes());
        out.push(e.tags.len() as u8);
        for tag in &e.tags {
            out.extend_from_slice(tag);
        }
        out.extend_from_slice(&e.submitter);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses canonical bytes, rejecting anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        const WHAT: &str = "entry header";
        if bytes.len() < FIXED_LEN {
            return Err(LogError::Truncated {
                what: WHAT,
                needed: FIXED_LEN - bytes.len(),
            });
        }
        let tag_count = bytes[1 + 8 + 32 + 16] as usize;
        let expected = FIXED_LEN + 32 * tag_count;
        if bytes.len() < expected {
            return Err(LogError::Truncated {
                what: WHAT,
                needed: expected - bytes.len(),
            });
        }
        if bytes.len() > expected {
            return Err(LogError::TrailingBytes {
                what: WHAT,
                extra: bytes.len() - expected,
            });
        }
        let (body, crc) = bytes.split_at(expected - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err(LogError::ChecksumMismatch { what: WHAT });
        }
        if body[0] != HEADER_VERSION {
            return Err(LogError::UnknownVersion {
                what: WHAT,
                version: body[0],
            });
        }
        if tag_count > MAX_TAGS {
            return Err(LogError::TooManyTags {
                count: tag_count,
                max: MAX_TAGS,
            });
        }
        let mut r = Cursor(&body[1..]);
        let seq = u64::from_le_bytes(r.take());
        let commitment = r.take();
        let geometry = Geometry::new(
            u64::from_le_bytes(r.take()),
            u32::from_le_bytes(r.take()),
            u16::from_le_bytes(r.take()),
            u16::from_le_bytes(r.take()),
        )?;
        let _count: [u8; 1] = r.take();
        let tags = (0..tag_count).map(|_| r.take()).collect();
        let submitter = r.take();
        Ok(Self {
            seq,
            entry: EntryDescriptor {
                commitment,
                geometry,
                tags,
                submitter,
            },
        })
    }
}

/// Reads fixed-size fields from a slice whose length was checked up front.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = EntryHeader> {
        (
            any::<u64>(),
            any::<[u8; 32]>(),
            0u64..=crate::limits::MAX_PAYLOAD_BYTES,
            8u32..=20,
            1u16..=crate::limits::MAX_DATA_SHARDS,
            1u16..=crate::limits::MAX_PARITY_SHARDS,
            proptest::collection::vec(any::<[u8; 32]>(), 0..=MAX_TAGS),
            any::<[u8; 20]>(),
        )
            .prop_map(|(seq, commitment, len, log_chunk, k, m, tags, submitter)| {
                EntryHeader {
                    seq,
                    entry: EntryDescriptor {
                        commitment,
                        geometry: Geometry {
                            payload_len: len,
                            chunk_size: 1 << log_chunk,
                            data_shards: k,
                            parity_shards: m,
                        },
                        tags,
                        submitter,
                    },
                }
            })
    }

    proptest! {
        #[test]
        fn round_trips(h in header()) {
            let bytes = h.encode();
            prop_assert!(bytes.len() <= MAX_HEADER_BYTES);
            prop_assert_eq!(EntryHeader::decode(&bytes), Ok(h));
        }

        #[test]
        fn rejects_truncation(h in header(), cut in any::<prop::sample::Index>()) {
            let bytes = h.encode();
            let keep = cut.index(bytes.len());
            prop_assert!(EntryHeader::decode(&bytes[..keep]).is_err());
        }

        #[test]
        fn rejects_any_altered_byte(h in header(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut bytes = h.encode();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            prop_assert!(EntryHeader::decode(&bytes).is_err());
        }

        #[test]
        fn rejects_trailing_bytes(h in header(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
            let mut bytes = h.encode();
            bytes.extend_from_slice(&extra);
            prop_assert!(EntryHeader::decode(&bytes).is_err());
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let _ = EntryHeader::decode(&bytes);
        }
    }
}
