//! Data-availability blobs in the log: their parts and their records.
//!
//! A blob is carried by one or more **parts**: ordinary log entries whose
//! payload is a run of the blob's bytes and whose header is tagged
//! `[DA_PART_TAG, blob id]`. Replay never reads a part's payload (a
//! replica need not fetch every blob to keep the state): it notes the
//! part's header (blob id, entry commitment, length, submitter) in a meta
//! row, and never decides transactions from a tagged entry, whatever its
//! bytes hold.
//!
//! A **record** (`DaOp::Record`, sent as the blob owner's transaction)
//! names the parts in order; replay checks them against those rows and
//! writes the blob's row in the system stream, where the KV API and SQL's
//! `da_blobs` view read it. Rows are keyed by blob id and owner, so two
//! owners of the same bytes each hold their own record and no one can
//! take or squat another's.
//!
//! The rules (each refusal is `Outcome::DaRefused` with the reason):
//!
//! - a record names 1..=[`MAX_BLOB_PARTS`] parts, by strictly increasing
//!   seqs, each an earlier entry tagged with the record's blob id and
//!   submitted by the owner itself or by the gateway that vouches for the
//!   record (a stranger cannot claim a blob another gateway stored); their
//!   lengths sum to the record's size, at most [`MAX_DA_BLOB_BYTES`];
//! - an owner records a blob once while its record lives;
//! - only the owner deletes its record (`DaOp::Delete`), at any time;
//! - a gateway expires a record (`DaOp::Expire`) whose expiry its clock
//!   has reached: replay reads no clock, so the time is the gateway's
//!   statement, carried in the operation and kept in the log (gateways are
//!   trusted for time, as they are for the retention policy's seconds).
//!
//! Replay does not check that the record's KZG commitment is the one its
//! id names, nor that the parts hold the committed bytes: it cannot
//! without reading them. Certificates carry both and their verifier
//! checks the first; retrieval checks the bytes against the commitment
//! before returning them (docs/DA.md).

use crate::StreamId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::record::Address;
pub use crate::record::DaOp;

/// The first tag of a blob part's header; the second is the blob id. Not
/// a value [`crate::stream_id`] produces (those are BLAKE3 outputs).
pub const DA_PART_TAG: StreamId = *b"ordo/da-part/v1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Where blob records start in the system stream: `PREFIX | id[32] |
/// owner[20]`.
pub const BLOB_PREFIX: &[u8] = b"da/blob/";

pub use crate::limits::{MAX_BLOB_PARTS, MAX_DA_BLOB_BYTES, MAX_DA_COMMITMENT_BYTES};

const RECORD_MAGIC: &[u8; 4] = b"ODR1";

/// Whether an entry with these header tags is a blob part, and of which
/// blob.
pub fn part_of(tags: &[StreamId]) -> Option<[u8; 32]> {
    match tags {
        [tag, id] if *tag == DA_PART_TAG => Some(*id),
        _ => None,
    }
}

/// The tags of a part of blob `id`.
pub fn part_tags(id: [u8; 32]) -> Vec<StreamId> {
    vec![DA_PART_TAG, id]
}

/// The system-stream key of `owner`'s record of blob `id`.
pub fn record_key(id: &[u8; 32], owner: &Address) -> Vec<u8> {
    [BLOB_PREFIX, id.as_slice(), owner.as_slice()].concat()
}

/// The blob id and owner a record key names, if it is one.
pub fn parse_record_key(key: &[u8]) -> Option<([u8; 32], Address)> {
    let rest = key.strip_prefix(BLOB_PREFIX)?;
    let (id, owner) = rest.split_first_chunk::<32>()?;
    Some((*id, owner.try_into().ok()?))
}

/// One part of a recorded blob, as its header described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedPart {
    /// The part's log entry.
    pub seq: u64,
    /// Its entry's commitment.
    pub commitment: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

/// A blob's record, the value of its row in the system stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// Who dispersed it (and alone may delete it).
    pub owner: Address,
    /// Its length in bytes.
    pub size: u64,
    /// When a gateway may expire it, in Unix seconds.
    pub expires_at: u64,
    /// The log entry that recorded it.
    pub recorded_in: u64,
    /// Its KZG commitment (`ODC1` bytes).
    pub commitment: Vec<u8>,
    /// Its parts, in blob order.
    pub parts: Vec<RecordedPart>,
}

impl BlobRecord {
    /// The row's bytes (`ODR1`).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.commitment.len() + 48 * self.parts.len());
        w.fixed(RECORD_MAGIC)
            .fixed(&self.owner)
            .u64(self.size)
            .u64(self.expires_at)
            .u64(self.recorded_in)
            .bytes(&self.commitment);
        w.count(self.parts.len());
        for part in &self.parts {
            w.u64(part.seq).fixed(&part.commitment).u64(part.len);
        }
        w.finish()
    }

    /// Parses a row, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.expect_magic(RECORD_MAGIC, "blob record magic")?;
        let owner = r.fixed("owner")?;
        let size = r.u64("blob size")?;
        let expires_at = r.u64("expires at")?;
        let recorded_in = r.u64("recorded in")?;
        let commitment = r
            .bytes("blob commitment", MAX_DA_COMMITMENT_BYTES)?
            .to_vec();
        let count = r.count("blob parts", MAX_BLOB_PARTS)?;
        let parts = (0..count)
            .map(|_| {
                Ok(RecordedPart {
                    seq: r.u64("part seq")?,
                    commitment: r.fixed("part commitment")?,
                    len: r.u64("part length")?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        r.finish()?;
        Ok(Self {
            owner,
            size,
            expires_at,
            recorded_in,
            commitment,
            parts,
        })
    }
}

#[cfg(feature = "replay")]
pub(crate) use rules::{Deciding, PartRow};

#[cfg(feature = "replay")]
mod rules {
    use super::*;
    use crate::Outcome;
    use crate::attest::SYSTEM_STREAM;
    use crate::record::Write;
    use ordo_kv::{Column, Engine, MvccError, MvccStore, WriteBatch};

    /// Where replay notes each part's header in the meta column: `PREFIX |
    /// seq (big-endian)`.
    const PART_PREFIX: &[u8] = b"da-part/";

    /// A part's header as replay noted it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct PartRow {
        pub(crate) blob: [u8; 32],
        pub(crate) commitment: [u8; 32],
        pub(crate) len: u64,
        pub(crate) submitter: Address,
    }

    impl PartRow {
        /// Stages the row of part `seq` in `batch`.
        pub(crate) fn stage(&self, seq: u64, batch: &mut WriteBatch) {
            let mut row = Writer::with_capacity(32 + 32 + 8 + 20);
            row.fixed(&self.blob)
                .fixed(&self.commitment)
                .u64(self.len)
                .fixed(&self.submitter);
            batch.put(Column::Meta, part_key(seq), row.finish());
        }

        fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(bytes);
            let row = Self {
                blob: r.fixed("blob id")?,
                commitment: r.fixed("commitment")?,
                len: r.u64("length")?,
                submitter: r.fixed("submitter")?,
            };
            r.finish()?;
            Ok(row)
        }
    }

    fn part_key(seq: u64) -> Vec<u8> {
        [PART_PREFIX, seq.to_be_bytes().as_slice()].concat()
    }

    /// The row replay noted for entry `seq`, if it was a blob part.
    pub(crate) fn part_row<E: Engine>(engine: &E, seq: u64) -> Result<Option<PartRow>, MvccError> {
        let Some(bytes) = engine.get(Column::Meta, &part_key(seq))? else {
            return Ok(None);
        };
        PartRow::decode(&bytes)
            .map(Some)
            .map_err(|e| MvccError::Corrupt(format!("blob part row {seq}: {e}")))
    }

    /// What deciding one operation needs.
    pub(crate) struct Deciding<'a, E> {
        /// The state before the transaction.
        pub(crate) store: &'a MvccStore<E>,
        /// Blob rows written by earlier transactions of the same entry.
        pub(crate) staged: &'a crate::FastMap<Vec<u8>, Option<Vec<u8>>>,
        /// Blob rows earlier operations of the same transaction write.
        pub(crate) pending: &'a [Write],
        /// The transaction's sender.
        pub(crate) sender: Address,
        /// The gateway that vouched for it (attested or submitted), if any.
        pub(crate) vouched_by: Option<Address>,
        /// Whether the sender holds the gateway role.
        pub(crate) sender_is_gateway: bool,
        /// The entry being applied.
        pub(crate) seq: u64,
        /// The version the transaction is decided against.
        pub(crate) version: u64,
    }

    /// A decision: the system-stream row to write, or the refusal.
    pub(crate) type Decision = Result<Result<Write, Outcome>, MvccError>;

    fn refused(reason: String) -> Decision {
        Ok(Err(Outcome::DaRefused { reason }))
    }

    impl<E: Engine> Deciding<'_, E> {
        /// Decides `op`.
        pub(crate) fn decide(&self, op: &DaOp) -> Decision {
            match op {
                DaOp::Record {
                    id,
                    size,
                    expires_at,
                    commitment,
                    parts,
                } => {
                    let parts = match self.check_parts(id, *size, parts)? {
                        Ok(parts) => parts,
                        Err(reason) => return refused(reason),
                    };
                    let key = record_key(id, &self.sender);
                    if self.record(&key)?.is_some() {
                        return refused(format!(
                            "0x{} already holds a record of blob 0x{}",
                            crate::ids::hex(&self.sender),
                            crate::ids::hex(id)
                        ));
                    }
                    let record = BlobRecord {
                        owner: self.sender,
                        size: *size,
                        expires_at: *expires_at,
                        recorded_in: self.seq,
                        commitment: commitment.clone(),
                        parts,
                    };
                    Ok(Ok(row(key, Some(record.encode()))))
                }
                DaOp::Delete { id } => self.remove(id, &self.sender, None),
                DaOp::Expire { id, owner, now } => {
                    if !self.sender_is_gateway {
                        return Ok(Err(Outcome::PermissionDenied {
                            op: op.name().into(),
                            stream: SYSTEM_STREAM,
                            key: None,
                        }));
                    }
                    self.remove(id, owner, Some(*now))
                }
            }
        }

        /// Removes `owner`'s record of `id`; when `now` is given, only if
        /// its expiry has come.
        fn remove(&self, id: &[u8; 32], owner: &Address, now: Option<u64>) -> Decision {
            let key = record_key(id, owner);
            let Some(record) = self.record(&key)? else {
                return refused(format!(
                    "0x{} holds no record of blob 0x{}",
                    crate::ids::hex(owner),
                    crate::ids::hex(id)
                ));
            };
            if let Some(now) = now
                && now < record.expires_at
            {
                return refused(format!(
                    "blob 0x{} expires at {} (Unix seconds), not yet at {now}",
                    crate::ids::hex(id),
                    record.expires_at
                ));
            }
            Ok(Ok(row(key, None)))
        }

        /// The live record under `key`, counting rows written earlier in
        /// the transaction, then in the entry.
        fn record(&self, key: &[u8]) -> Result<Option<BlobRecord>, MvccError> {
            let pending = self.pending.iter().rev().find(|w| w.key == key);
            let bytes = match (pending, self.staged.get(key)) {
                (Some(write), _) => write.value.clone(),
                (None, Some(staged)) => staged.clone(),
                (None, None) => self
                    .store
                    .get(Column::Data, &SYSTEM_STREAM, key, self.version)?
                    .and_then(|found| found.value),
            };
            bytes
                .map(|bytes| {
                    BlobRecord::decode(&bytes)
                        .map_err(|e| MvccError::Corrupt(format!("blob record: {e}")))
                })
                .transpose()
        }

        /// The parts a record names, if they carry blob `id` and add up to
        /// `size`; else why not.
        fn check_parts(
            &self,
            id: &[u8; 32],
            size: u64,
            seqs: &[u64],
        ) -> Result<Result<Vec<RecordedPart>, String>, MvccError> {
            if seqs.is_empty() {
                return Ok(Err("a record names at least one part".into()));
            }
            if size > MAX_DA_BLOB_BYTES {
                return Ok(Err(format!(
                    "a blob holds at most {MAX_DA_BLOB_BYTES} bytes, not {size}"
                )));
            }
            if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.last() >= Some(&self.seq) {
                return Ok(Err(
                    "parts are named by strictly increasing seqs of earlier entries".into(),
                ));
            }
            let mut parts = Vec::with_capacity(seqs.len());
            for &seq in seqs {
                let Some(part) = part_row(self.store.engine(), seq)? else {
                    return Ok(Err(format!("entry {seq} is not a blob part")));
                };
                if part.blob != *id {
                    return Ok(Err(format!(
                        "entry {seq} is a part of blob 0x{}",
                        crate::ids::hex(&part.blob)
                    )));
                }
                if part.submitter != self.sender && Some(part.submitter) != self.vouched_by {
                    return Ok(Err(format!(
                        "entry {seq} was submitted by 0x{}, neither the owner nor the gateway vouching for this record",
                        crate::ids::hex(&part.submitter)
                    )));
                }
                parts.push(RecordedPart {
                    seq,
                    commitment: part.commitment,
                    len: part.len,
                });
            }
            let carried: u64 = parts.iter().map(|p| p.len).sum();
            if carried != size {
                return Ok(Err(format!(
                    "the parts carry {carried} bytes, the record says {size}"
                )));
            }
            Ok(Ok(parts))
        }
    }

    fn row(key: Vec<u8>, value: Option<Vec<u8>>) -> Write {
        Write {
            stream: SYSTEM_STREAM,
            key,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_row_round_trips_and_refuses_trailing_bytes() {
        let record = BlobRecord {
            owner: [7; 20],
            size: 10,
            expires_at: 1_900_000_000,
            recorded_in: 9,
            commitment: vec![1, 2, 3],
            parts: vec![RecordedPart {
                seq: 4,
                commitment: [5; 32],
                len: 10,
            }],
        };
        let bytes = record.encode();
        assert_eq!(BlobRecord::decode(&bytes), Ok(record));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(BlobRecord::decode(&longer).is_err());
        assert!(BlobRecord::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn only_headers_tagged_as_parts_name_a_blob() {
        assert_eq!(part_of(&part_tags([3; 32])), Some([3; 32]));
        assert_eq!(part_of(&[DA_PART_TAG]), None);
        assert_eq!(part_of(&[[0; 32], [3; 32]]), None);
        assert_eq!(part_of(&[DA_PART_TAG, [3; 32], [4; 32]]), None);
    }

    #[test]
    fn a_record_key_names_its_blob_and_owner() {
        let key = record_key(&[1; 32], &[2; 20]);
        assert_eq!(parse_record_key(&key), Some(([1; 32], [2; 20])));
        assert_eq!(parse_record_key(&key[..key.len() - 1]), None);
        assert_eq!(parse_record_key(b"mining/x"), None);
    }
}
