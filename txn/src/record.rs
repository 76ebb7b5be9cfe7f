//! The transaction record and its canonical encoding.
//!
//! # Encoding (version 1), all integers little-endian
//!
//! ```text
//! Transaction := 0x01 | id[16] | sender[20] | read_version u64
//!                | n u32 | n x Read | m u32 | m x Write | a u32 | a x AclOp
//! Read        := 0x00 | stream[32] | key            (one key)
//!              | 0x01 | stream[32] | start | 0x00    (start.. to the stream's end)
//!              | 0x01 | stream[32] | start | 0x01 | end   (start..end, end exclusive)
//! Write       := 0x00 | stream[32] | key             (delete)
//!              | 0x01 | stream[32] | key | value     (put)
//! AclOp       := tag u8 | fields of the variant in declaration order
//!                (mining operations: tags 0x60-0x62, see `MiningOp`;
//!                retention operations: tags 0x70-0x71, see `RetentionOp`;
//!                data-availability operations: tags 0x80-0x82, see
//!                `DaOp`)
//! key, value, name := len u32 | bytes
//! Signed      := tx bytes (len u32 | bytes) | signature[65]
//! Batch       := "OTB1" | count u32 | count x Signed (len u32 | bytes)
//! ```
//!
//! Decoding checks every count and length against [`crate::limits`] before
//! allocating, and rejects unknown tags and trailing bytes: one record, one
//! encoding.

use crate::StreamId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::*;

/// A 20-byte account address (the identity of a sender).
pub type Address = [u8; 20];

/// A transaction id, unique per sender: the idempotency key.
pub type TxnId = [u8; 16];

const TXN_VERSION: u8 = 1;
/// Magic of a batch of signed transactions.
pub const BATCH_MAGIC: &[u8; 4] = b"OTB1";

/// Something a transaction read, whose change would invalidate it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    /// One key.
    Key {
        /// Its stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
    },
    /// Every key in `start..end` (to the end of the stream when `end` is None).
    Range {
        /// Its stream.
        stream: StreamId,
        /// First key, inclusive.
        start: Vec<u8>,
        /// Last key, exclusive.
        end: Option<Vec<u8>>,
    },
}

/// A write: a put, or a delete when `value` is None.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Write {
    /// The stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or None to delete.
    pub value: Option<Vec<u8>>,
}

/// An access-control operation. See `docs/ACL.md` for who may do what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AclOp {
    /// Create the stream `stream_id(sender, name)`; the sender becomes its admin.
    CreateStream {
        /// The creator-chosen name.
        name: Vec<u8>,
    },
    /// Make `account` an admin of the stream.
    GrantAdmin {
        /// The stream.
        stream: StreamId,
        /// Who.
        account: Address,
    },
    /// Give up one's own admin role.
    RenounceAdmin {
        /// The stream.
        stream: StreamId,
    },
    /// Make `key` special: only its special writers (and admins) may write it.
    SetKeySpecial {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
    },
    /// Make `key` normal again.
    SetKeyNormal {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
    },
    /// Let `account` write the stream's normal keys.
    GrantWriter {
        /// The stream.
        stream: StreamId,
        /// Who.
        account: Address,
    },
    /// Take the writer role from `account`.
    RevokeWriter {
        /// The stream.
        stream: StreamId,
        /// Who.
        account: Address,
    },
    /// Give up one's own writer role.
    RenounceWriter {
        /// The stream.
        stream: StreamId,
    },
    /// Let `account` write the special key `key`.
    GrantSpecialWriter {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
        /// Who.
        account: Address,
    },
    /// Take the special-writer role of `key` from `account`.
    RevokeSpecialWriter {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
        /// Who.
        account: Address,
    },
    /// Give up one's own special-writer role of `key`.
    RenounceSpecialWriter {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
    },
    /// Make `account` a gateway: replay applies the unsigned transactions of
    /// the entries it attests. Needs admin of the log (of
    /// [`crate::attest::SYSTEM_STREAM`]).
    GrantGateway {
        /// Who.
        account: Address,
    },
    /// Take the gateway role from `account`. Needs admin of the log.
    RevokeGateway {
        /// Who.
        account: Address,
    },
    /// A storage-mining operation: changes no access-control fact; replay's
    /// mining rules decide it (see `docs/MINING.md`).
    Mining(MiningOp),
    /// A retention operation: changes no access-control fact; replay's
    /// retention rules decide it (see `docs/RETENTION.md`).
    Retention(RetentionOp),
    /// A data-availability operation: changes no access-control fact;
    /// replay's blob rules decide it (see `crate::da`).
    Da(DaOp),
}

/// A retention operation, carried among a transaction's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionOp {
    /// Sets the policy: how much history the log keeps at least. Needs
    /// admin of the log.
    SetPolicy {
        /// The newest versions always kept (`u64::MAX`: keep everything).
        keep_versions: u64,
        /// Seconds of history the automatic compactor keeps.
        keep_secs: u64,
    },
    /// Raises the horizon to `to`: reads below it are refused from then on
    /// and the history they needed is collected. Needs admin of the log or
    /// the gateway role.
    Compact {
        /// The new horizon.
        to: u64,
    },
}

/// A data-availability operation, carried among a transaction's
/// operations (tags 0x80-0x82).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DaOp {
    /// Records a blob its parts carry, owned by the transaction's sender.
    Record {
        /// The blob id (`ordo_da::BlobCommitment::id`).
        id: [u8; 32],
        /// The blob's length in bytes.
        size: u64,
        /// When the blob may be expired, in Unix seconds (the gateway's
        /// clock, or the owner's choice when it signs the record).
        expires_at: u64,
        /// The blob's KZG commitment (`ODC1` bytes).
        commitment: Vec<u8>,
        /// The seqs of its parts, in blob order.
        parts: Vec<u64>,
    },
    /// Deletes the sender's record of blob `id`.
    Delete {
        /// The blob id.
        id: [u8; 32],
    },
    /// Deletes `owner`'s record of blob `id`, whose expiry `now` has
    /// reached. Needs the gateway role.
    Expire {
        /// The blob id.
        id: [u8; 32],
        /// The record's owner.
        owner: Address,
        /// The gateway's clock, in Unix seconds.
        now: u64,
    },
}

impl DaOp {
    /// The operation's stable name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            DaOp::Record { .. } => "record_blob",
            DaOp::Delete { .. } => "delete_blob",
            DaOp::Expire { .. } => "expire_blob",
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            DaOp::Record {
                id,
                size,
                expires_at,
                commitment,
                parts,
            } => {
                w.u8(0x80).fixed(id).u64(*size).u64(*expires_at);
                w.bytes(commitment);
                w.count(parts.len());
                for seq in parts {
                    w.u64(*seq);
                }
            }
            DaOp::Delete { id } => {
                w.u8(0x81).fixed(id);
            }
            DaOp::Expire { id, owner, now } => {
                w.u8(0x82).fixed(id).fixed(owner).u64(*now);
            }
        }
    }

    /// Decodes the fields after `tag` (0x80-0x82).
    pub(crate) fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match tag {
            0x80 => {
                let id = r.fixed("blob id")?;
                let size = r.u64("blob size")?;
                let expires_at = r.u64("expires at")?;
                let commitment = r
                    .bytes("blob commitment", MAX_DA_COMMITMENT_BYTES)?
                    .to_vec();
                let count = r.count("blob parts", MAX_BLOB_PARTS)?;
                let parts = (0..count)
                    .map(|_| r.u64("part seq"))
                    .collect::<Result<_, _>>()?;
                DaOp::Record {
                    id,
                    size,
                    expires_at,
                    commitment,
                    parts,
                }
            }
            0x81 => DaOp::Delete {
                id: r.fixed("blob id")?,
            },
            0x82 => DaOp::Expire {
                id: r.fixed("blob id")?,
                owner: r.fixed("owner")?,
                now: r.u64("now")?,
            },
            tag => {
                return Err(DecodeError::BadTag {
                    field: "acl tag",
                    tag,
                });
            }
        })
    }
}

/// A storage-mining operation, carried among a transaction's operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MiningOp {
    /// Turns mining on for the log, once. Needs admin of the log.
    Configure {
        /// Entries per epoch.
        epoch_entries: u64,
        /// Proofs per epoch the difficulty steers toward.
        target_proofs: u64,
        /// The first epoch's target, 32 bytes big-endian (higher is easier).
        initial_target: [u8; 32],
        /// Reward credited to a miner's beneficiary per accepted proof.
        reward_per_proof: u64,
    },
    /// Makes the sender a miner whose rewards go to `beneficiary` (sent
    /// again, it changes the beneficiary).
    RegisterMiner {
        /// Who is credited.
        beneficiary: Address,
    },
    /// A proof of random access (`OMP1` bytes) by its miner, the sender.
    SubmitProof {
        /// The proof.
        proof: Vec<u8>,
    },
}

/// A transaction as its sender built it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// Unique per sender; a second transaction with the same id is a duplicate.
    pub id: TxnId,
    /// Who sends it; must match the address recovered from the signature.
    pub sender: Address,
    /// The snapshot version the reads were made at.
    pub read_version: u64,
    /// What was read.
    pub reads: Vec<Read>,
    /// What to write, applied in order (a later write of the same key wins).
    pub writes: Vec<Write>,
    /// Access-control operations, checked against the state before the transaction.
    pub acl: Vec<AclOp>,
}

/// A transaction and its sender's recoverable secp256k1 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// `r || s || v` over [`crate::sign::signing_hash`] of the encoded transaction.
    pub signature: [u8; 65],
}

fn check_len(field: &'static str, len: usize, limit: usize) -> Result<(), DecodeError> {
    if len > limit {
        Err(DecodeError::TooLong { field, len, limit })
    } else {
        Ok(())
    }
}

impl Read {
    fn encode(&self, w: &mut Writer) {
        match self {
            Read::Key { stream, key } => {
                w.u8(0).fixed(stream).bytes(key);
            }
            Read::Range { stream, start, end } => {
                w.u8(1).fixed(stream).bytes(start);
                match end {
                    None => w.u8(0),
                    Some(end) => w.u8(1).bytes(end),
                };
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("read tag")? {
            0 => Ok(Read::Key {
                stream: r.fixed("stream")?,
                key: r.bytes("key", MAX_KEY_BYTES)?.to_vec(),
            }),
            1 => {
                let stream = r.fixed("stream")?;
                let start = r.bytes("range start", MAX_KEY_BYTES)?.to_vec();
                let end = match r.u8("range end tag")? {
                    0 => None,
                    1 => Some(r.bytes("range end", MAX_KEY_BYTES)?.to_vec()),
                    tag => {
                        return Err(DecodeError::BadTag {
                            field: "range end tag",
                            tag,
                        });
                    }
                };
                if end.as_ref().is_some_and(|end| *end < start) {
                    return Err(DecodeError::InvertedRange {
                        field: "range read",
                    });
                }
                Ok(Read::Range { stream, start, end })
            }
            tag => Err(DecodeError::BadTag {
                field: "read tag",
                tag,
            }),
        }
    }
}

impl Write {
    fn encode(&self, w: &mut Writer) {
        match &self.value {
            None => w.u8(0).fixed(&self.stream).bytes(&self.key),
            Some(value) => w.u8(1).fixed(&self.stream).bytes(&self.key).bytes(value),
        };
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("write tag")?;
        let stream = r.fixed("stream")?;
        let key = r.bytes("key", MAX_KEY_BYTES)?.to_vec();
        let value = match tag {
            0 => None,
            1 => Some(r.bytes("value", MAX_VALUE_BYTES)?.to_vec()),
            tag => {
                return Err(DecodeError::BadTag {
                    field: "write tag",
                    tag,
                });
            }
        };
        Ok(Write { stream, key, value })
    }
}

impl AclOp {
    /// The operation's stable name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            AclOp::CreateStream { .. } => "create_stream",
            AclOp::GrantAdmin { .. } => "grant_admin",
            AclOp::RenounceAdmin { .. } => "renounce_admin",
            AclOp::SetKeySpecial { .. } => "set_key_special",
            AclOp::SetKeyNormal { .. } => "set_key_normal",
            AclOp::GrantWriter { .. } => "grant_writer",
            AclOp::RevokeWriter { .. } => "revoke_writer",
            AclOp::RenounceWriter { .. } => "renounce_writer",
            AclOp::GrantSpecialWriter { .. } => "grant_special_writer",
            AclOp::RevokeSpecialWriter { .. } => "revoke_special_writer",
            AclOp::RenounceSpecialWriter { .. } => "renounce_special_writer",
            AclOp::GrantGateway { .. } => "grant_gateway",
            AclOp::RevokeGateway { .. } => "revoke_gateway",
            AclOp::Mining(MiningOp::Configure { .. }) => "configure_mining",
            AclOp::Mining(MiningOp::RegisterMiner { .. }) => "register_miner",
            AclOp::Mining(MiningOp::SubmitProof { .. }) => "submit_proof",
            AclOp::Retention(RetentionOp::SetPolicy { .. }) => "set_retention_policy",
            AclOp::Retention(RetentionOp::Compact { .. }) => "compact",
            AclOp::Da(op) => op.name(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            AclOp::CreateStream { name } => w.u8(0x01).bytes(name),
            AclOp::GrantAdmin { stream, account } => w.u8(0x10).fixed(stream).fixed(account),
            AclOp::RenounceAdmin { stream } => w.u8(0x11).fixed(stream),
            AclOp::SetKeySpecial { stream, key } => w.u8(0x20).fixed(stream).bytes(key),
            AclOp::SetKeyNormal { stream, key } => w.u8(0x21).fixed(stream).bytes(key),
            AclOp::GrantWriter { stream, account } => w.u8(0x30).fixed(stream).fixed(account),
            AclOp::RevokeWriter { stream, account } => w.u8(0x31).fixed(stream).fixed(account),
            AclOp::RenounceWriter { stream } => w.u8(0x32).fixed(stream),
            AclOp::GrantSpecialWriter {
                stream,
                key,
                account,
            } => w.u8(0x40).fixed(stream).bytes(key).fixed(account),
            AclOp::RevokeSpecialWriter {
                stream,
                key,
                account,
            } => w.u8(0x41).fixed(stream).bytes(key).fixed(account),
            AclOp::RenounceSpecialWriter { stream, key } => w.u8(0x42).fixed(stream).bytes(key),
            AclOp::GrantGateway { account } => w.u8(0x50).fixed(account),
            AclOp::RevokeGateway { account } => w.u8(0x51).fixed(account),
            AclOp::Mining(MiningOp::Configure {
                epoch_entries,
                target_proofs,
                initial_target,
                reward_per_proof,
            }) => w
                .u8(0x60)
                .u64(*epoch_entries)
                .u64(*target_proofs)
                .fixed(initial_target)
                .u64(*reward_per_proof),
            AclOp::Mining(MiningOp::RegisterMiner { beneficiary }) => w.u8(0x61).fixed(beneficiary),
            AclOp::Mining(MiningOp::SubmitProof { proof }) => w.u8(0x62).bytes(proof),
            AclOp::Retention(RetentionOp::SetPolicy {
                keep_versions,
                keep_secs,
            }) => w.u8(0x70).u64(*keep_versions).u64(*keep_secs),
            AclOp::Retention(RetentionOp::Compact { to }) => w.u8(0x71).u64(*to),
            AclOp::Da(op) => {
                op.encode(w);
                w
            }
        };
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = |r: &mut Reader<'_>| r.bytes("key", MAX_KEY_BYTES).map(<[u8]>::to_vec);
        Ok(match r.u8("acl tag")? {
            0x01 => AclOp::CreateStream {
                name: r.bytes("stream name", MAX_STREAM_NAME_BYTES)?.to_vec(),
            },
            0x10 => AclOp::GrantAdmin {
                stream: r.fixed("stream")?,
                account: r.fixed("account")?,
            },
            0x11 => AclOp::RenounceAdmin {
                stream: r.fixed("stream")?,
            },
            0x20 => AclOp::SetKeySpecial {
                stream: r.fixed("stream")?,
                key: key(r)?,
            },
            0x21 => AclOp::SetKeyNormal {
                stream: r.fixed("stream")?,
                key: key(r)?,
            },
            0x30 => AclOp::GrantWriter {
                stream: r.fixed("stream")?,
                account: r.fixed("account")?,
            },
            0x31 => AclOp::RevokeWriter {
                stream: r.fixed("stream")?,
                account: r.fixed("account")?,
            },
            0x32 => AclOp::RenounceWriter {
                stream: r.fixed("stream")?,
            },
            0x40 => AclOp::GrantSpecialWriter {
                stream: r.fixed("stream")?,
                key: key(r)?,
                account: r.fixed("account")?,
            },
            0x41 => AclOp::RevokeSpecialWriter {
                stream: r.fixed("stream")?,
                key: key(r)?,
                account: r.fixed("account")?,
            },
            0x42 => AclOp::RenounceSpecialWriter {
                stream: r.fixed("stream")?,
                key: key(r)?,
            },
            0x50 => AclOp::GrantGateway {
                account: r.fixed("account")?,
            },
            0x51 => AclOp::RevokeGateway {
                account: r.fixed("account")?,
            },
            0x60 => AclOp::Mining(MiningOp::Configure {
                epoch_entries: r.u64("epoch entries")?,
                target_proofs: r.u64("target proofs")?,
                initial_target: r.fixed("initial target")?,
                reward_per_proof: r.u64("reward per proof")?,
            }),
            0x61 => AclOp::Mining(MiningOp::RegisterMiner {
                beneficiary: r.fixed("beneficiary")?,
            }),
            0x62 => AclOp::Mining(MiningOp::SubmitProof {
                proof: r.bytes("mining proof", MAX_MINING_PROOF_BYTES)?.to_vec(),
            }),
            0x70 => AclOp::Retention(RetentionOp::SetPolicy {
                keep_versions: r.u64("keep versions")?,
                keep_secs: r.u64("keep seconds")?,
            }),
            0x71 => AclOp::Retention(RetentionOp::Compact {
                to: r.u64("horizon")?,
            }),
            tag @ 0x80..=0x82 => AclOp::Da(DaOp::decode(tag, r)?),
            tag => {
                return Err(DecodeError::BadTag {
                    field: "acl tag",
                    tag,
                });
            }
        })
    }
}

impl Transaction {
    /// A transaction with id `id`, reading at `read_version`, that reads,
    /// writes and changes nothing yet; [`crate::sign()`] sets its sender.
    pub fn new(id: TxnId, read_version: u64) -> Self {
        Self {
            id,
            sender: [0; 20],
            read_version,
            reads: vec![],
            writes: vec![],
            acl: vec![],
        }
    }

    /// A transaction that creates the stream `name`, owned by its signer.
    pub fn create_stream(id: TxnId, read_version: u64, name: Vec<u8>) -> Self {
        Self {
            acl: vec![AclOp::CreateStream { name }],
            ..Self::new(id, read_version)
        }
    }

    /// Canonical bytes: what is signed and what replicas decode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TXN_VERSION)
            .fixed(&self.id)
            .fixed(&self.sender)
            .u64(self.read_version);
        w.count(self.reads.len());
        self.reads.iter().for_each(|x| x.encode(&mut w));
        w.count(self.writes.len());
        self.writes.iter().for_each(|x| x.encode(&mut w));
        w.count(self.acl.len());
        self.acl.iter().for_each(|x| x.encode(&mut w));
        w.finish()
    }

    /// Parses canonical bytes, enforcing every limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_len("transaction", bytes.len(), MAX_TXN_BYTES)?;
        let mut r = Reader::new(bytes);
        r.expect_tag("transaction version", TXN_VERSION)?;
        let (id, sender, read_version) =
            (r.fixed("id")?, r.fixed("sender")?, r.u64("read version")?);
        let n = r.count("read set", MAX_READS)?;
        let reads = (0..n)
            .map(|_| Read::decode(&mut r))
            .collect::<Result<_, _>>()?;
        let n = r.count("write set", MAX_WRITES)?;
        let writes = (0..n)
            .map(|_| Write::decode(&mut r))
            .collect::<Result<_, _>>()?;
        let n = r.count("acl set", MAX_ACL_OPS)?;
        let acl = (0..n)
            .map(|_| AclOp::decode(&mut r))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            id,
            sender,
            read_version,
            reads,
            writes,
            acl,
        })
    }
}

impl SignedTransaction {
    /// Canonical bytes of the transaction and its signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.tx.encode()).fixed(&self.signature);
        w.finish()
    }

    /// Parses canonical bytes. The signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tx = Transaction::decode(r.bytes("transaction", MAX_TXN_BYTES)?)?;
        let signature = r.fixed("signature")?;
        r.finish()?;
        Ok(Self { tx, signature })
    }
}

/// Packs signed transactions into one log payload.
pub fn encode_batch<'a, T>(txs: T) -> Vec<u8>
where
    T: IntoIterator<Item = &'a SignedTransaction>,
    T::IntoIter: ExactSizeIterator,
{
    let encoded: Vec<Vec<u8>> = txs.into_iter().map(SignedTransaction::encode).collect();
    encode_encoded_batch(encoded.iter().map(Vec::as_slice))
}

/// [`encode_batch`] of signed transactions given as their canonical bytes
/// (what ingress decoded them from), without encoding them again.
pub fn encode_encoded_batch<'a>(txs: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(BATCH_MAGIC);
    w.count(txs.len());
    for tx in txs {
        w.bytes(tx);
    }
    w.finish()
}

/// Splits a log payload into its transactions. A payload whose framing is
/// broken yields an error for the whole entry; a transaction that does not
/// decode yields an error in its own slot, so one bad transaction cannot hide
/// the others.
pub fn decode_batch(
    payload: &[u8],
) -> Result<Vec<Result<SignedTransaction, DecodeError>>, DecodeError> {
    let mut r = Reader::new(payload);
    r.expect_magic(BATCH_MAGIC, "batch magic")?;
    let n = r.count("batch", MAX_BATCH_TXNS)?;
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        let bytes = r.bytes("signed transaction", MAX_ITEM_BYTES)?;
        txs.push(SignedTransaction::decode(bytes));
    }
    r.finish()?;
    Ok(txs)
}
