//! The certificate of a dispersed blob, and its stand-alone verifier.
//!
//! A certificate's **statement** says: in log `log`, the entries whose
//! headers it carries hold blob `blob` of `size` bytes in order, committed
//! to by `commitment` (KZG, `ODC1`). The sequencer's keys sign it: the
//! node's own key on a log one node orders (`ordo dev`), a quorum of voters
//! on a replicated one, each after checking every header against its own
//! copy of the order. The record's `owner`, `expires_at` and `recorded_in`
//! ride along as the issuing node's state says them: no signature covers
//! them (a voter keeps no state to check them against).
//!
//! [`verify`] trusts nothing the certificate says about who signed: the
//! caller names the keys it trusts and how many of them must sign
//! ([`Trust`]). It checks, with no network and no node:
//!
//! 1. the commitment decodes, names the certificate's size, and hashes to
//!    its blob id (so no other bytes can be passed off under the id);
//! 2. every header decodes, is tagged as a part of this blob, in
//!    increasing seqs, and their lengths add up to the size;
//! 3. the log is the one the caller expects, when it names one;
//! 4. at least `threshold` distinct trusted keys signed the statement.
//!
//! [`Certificate::check_blob`] then checks retrieved bytes against it: the
//! KZG commitment, and each part's bytes against its header's entry
//! commitment.
//!
//! Bytes (`ODT1`, integers little-endian): the statement, `"ODT1" |
//! log[32] | blob[32] | size u64 | commitment (len u32 | bytes) | parts u32
//! | parts x (len u32 | header)`, then `owner[20] | expires_at u64 |
//! recorded_in u64 | signatures u32 | signatures x 65 | chain`, where
//! `chain` is `0`, or `1 | chain_id u64 | contract[20] | first header (len
//! u32 | bytes) | events u32 | events x (block u64 | block hash[32] | tx
//! hash[32] | log index u64)` on a log a chain orders. The signatures are
//! over a keyed BLAKE3 hash of the statement's bytes.

use crate::BlobCommitment;
use ordo_log::hex;
use ordo_log::{Coder, EntryHeader};
use ordo_txn::Address;
use ordo_txn::codec::{Reader, Writer};
use ordo_txn::da::{MAX_BLOB_PARTS, MAX_DA_COMMITMENT_BYTES, part_of};

const MAGIC: &[u8; 4] = b"ODT1";
const STATEMENT_CONTEXT: &str = "ordo/da/certificate-statement/v1";

/// Most signatures a certificate carries: more than any sequencer has
/// voters.
pub const MAX_CERTIFICATE_SIGNATURES: usize = 64;

/// Largest encoded certificate: checked before anything is decoded.
pub const MAX_CERTIFICATE_BYTES: usize = 256 * 1024;

/// A dispersed blob's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The log's id: a keyed hash of its first header.
    pub log: [u8; 32],
    /// The blob id.
    pub blob: [u8; 32],
    /// Who dispersed it.
    pub owner: Address,
    /// Its length in bytes.
    pub size: u64,
    /// When a gateway may expire its record (Unix seconds).
    pub expires_at: u64,
    /// The entry that recorded it.
    pub recorded_in: u64,
    /// Its KZG commitment (`ODC1`).
    pub commitment: Vec<u8>,
    /// The encoded headers of its parts, in blob order.
    pub headers: Vec<Vec<u8>>,
    /// Signatures over [`Certificate::statement`].
    pub signatures: Vec<[u8; 65]>,
    /// On a log a chain orders, where each header was ordered there
    /// (instead of signatures).
    pub chain: Option<ChainInclusion>,
}

/// How a log a chain orders proves each header's place: the event that
/// carried it, which a verifier checks against an endpoint of its own
/// choosing (`ordo_evm::inclusion::check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInclusion {
    /// The chain's id.
    pub chain_id: u64,
    /// The log's contract.
    pub contract: [u8; 20],
    /// The log's first header, encoded: the log id hashes it.
    pub genesis: Vec<u8>,
    /// The event of the first header, then of each part, in order.
    pub events: Vec<EventRef>,
}

/// The event that carried a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef {
    /// The block's number.
    pub block_number: u64,
    /// The block's hash.
    pub block_hash: [u8; 32],
    /// The transaction's hash.
    pub tx_hash: [u8; 32],
    /// The event's index in the block.
    pub log_index: u64,
}

/// The part of a certificate its signers sign, as a voter receives it to
/// check and sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The log's id.
    pub log: [u8; 32],
    /// The blob id.
    pub blob: [u8; 32],
    /// The blob's length.
    pub size: u64,
    /// Its KZG commitment (`ODC1`).
    pub commitment: Vec<u8>,
    /// The encoded headers of its parts, in blob order.
    pub headers: Vec<Vec<u8>>,
}

impl Statement {
    /// The statement's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.finish()
    }

    fn write(&self, w: &mut Writer) {
        w.fixed(MAGIC)
            .fixed(&self.log)
            .fixed(&self.blob)
            .u64(self.size)
            .bytes(&self.commitment)
            .count(self.headers.len());
        for header in &self.headers {
            w.bytes(header);
        }
    }

    /// The hash its signers sign.
    pub fn hash(&self) -> [u8; 32] {
        blake3::derive_key(STATEMENT_CONTEXT, &self.encode())
    }

    /// Parses a statement's bytes alone, within every limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        check_length(bytes)?;
        let mut r = Reader::new(bytes);
        let statement = Self::read(&mut r)?;
        r.finish()?;
        Ok(statement)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, CertificateError> {
        r.expect_magic(MAGIC, "certificate magic")?;
        let (log, blob, size) = (r.fixed("log")?, r.fixed("blob")?, r.u64("size")?);
        let commitment = r.bytes("commitment", MAX_DA_COMMITMENT_BYTES)?.to_vec();
        let parts = r.count("parts", MAX_BLOB_PARTS)?;
        let headers = (0..parts)
            .map(|_| {
                Ok(r.bytes("header", ordo_log::header::MAX_HEADER_BYTES)?
                    .to_vec())
            })
            .collect::<Result<_, CertificateError>>()?;
        Ok(Self {
            log,
            blob,
            size,
            commitment,
            headers,
        })
    }
}

fn check_length(bytes: &[u8]) -> Result<(), CertificateError> {
    match bytes.len() > MAX_CERTIFICATE_BYTES {
        true => Err(CertificateError::Malformed(format!(
            "{} bytes; a certificate has at most {MAX_CERTIFICATE_BYTES}",
            bytes.len()
        ))),
        false => Ok(()),
    }
}

/// Whose signatures a verifier accepts, and how many it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The sequencer's keys the verifier trusts.
    pub signers: Vec<Address>,
    /// How many distinct trusted keys must have signed (at least 1).
    pub threshold: usize,
    /// The log the certificate must be of, if the verifier knows it.
    pub log: Option<[u8; 32]>,
}

/// What a certificate that verified says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The parts' headers, decoded.
    pub parts: Vec<EntryHeader>,
    /// The trusted keys that signed.
    pub signed_by: Vec<Address>,
}

/// Why a certificate, or bytes against it, were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// The commitment is malformed, or is not the blob's.
    #[error("the commitment is not blob 0x{blob}'s: {reason}")]
    Commitment {
        /// The blob id, hex.
        blob: String,
        /// Why.
        reason: String,
    },
    /// The parts do not carry the blob.
    #[error("the parts do not carry the blob: {0}")]
    Parts(String),
    /// The certificate is of another log.
    #[error("the certificate is of log 0x{found}, not 0x{expected}")]
    WrongLog {
        /// The log it names, hex.
        found: String,
        /// The log expected, hex.
        expected: String,
    },
    /// Too few trusted keys signed.
    #[error("{signed} of the trusted keys signed the certificate; {needed} must (signed by: {by})")]
    TooFewSigners {
        /// Trusted keys that signed.
        signed: usize,
        /// How many must.
        needed: usize,
        /// Every key that signed, hex, trusted or not.
        by: String,
    },
    /// The caller trusts no one.
    #[error("no trusted signer: name the sequencer's keys and a threshold of at least 1")]
    NoTrust,
    /// Bytes that are not the certified blob.
    #[error("the bytes are not the certified blob: {0}")]
    NotTheBlob(String),
}

impl Certificate {
    /// What its signers sign.
    pub fn signed(&self) -> Statement {
        Statement {
            log: self.log,
            blob: self.blob,
            size: self.size,
            commitment: self.commitment.clone(),
            headers: self.headers.clone(),
        }
    }

    /// The hash its signers sign: [`Statement::hash`] of its statement.
    pub fn statement(&self) -> [u8; 32] {
        self.signed().hash()
    }

    /// The `ODT1` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.signed().write(&mut w);
        w.fixed(&self.owner)
            .u64(self.expires_at)
            .u64(self.recorded_in)
            .count(self.signatures.len());
        for signature in &self.signatures {
            w.fixed(signature);
        }
        match &self.chain {
            None => w.u8(0),
            Some(chain) => chain.write(w.u8(1)),
        };
        w.finish()
    }

    /// Parses `ODT1` bytes within every limit, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        check_length(bytes)?;
        let mut r = Reader::new(bytes);
        let Statement {
            log,
            blob,
            size,
            commitment,
            headers,
        } = Statement::read(&mut r)?;
        let owner = r.fixed("owner")?;
        let (expires_at, recorded_in) = (r.u64("expires at")?, r.u64("recorded in")?);
        let signatures = r.count("signatures", MAX_CERTIFICATE_SIGNATURES)?;
        let signatures = (0..signatures)
            .map(|_| r.fixed("signature"))
            .collect::<Result<_, _>>()?;
        let chain = ChainInclusion::read(&mut r)?;
        r.finish()?;
        Ok(Self {
            log,
            blob,
            owner,
            size,
            expires_at,
            recorded_in,
            commitment,
            headers,
            signatures,
            chain,
        })
    }

    /// The first header and each part's with the event that carried it,
    /// checked to be this certificate's log and parts.
    pub fn chain_items(&self) -> Result<Vec<(EntryHeader, EventRef)>, CertificateError> {
        let chain = (self.chain.as_ref())
            .ok_or_else(|| CertificateError::Malformed("no chain inclusion".into()))?;
        let genesis = EntryHeader::decode(&chain.genesis)
            .map_err(|e| CertificateError::Parts(format!("the first header: {e}")))?;
        if genesis.seq != 0 || log_id(&chain.genesis) != self.log {
            return Err(CertificateError::Parts(
                "the first header is not the log's".into(),
            ));
        }
        let parts = self.parts()?;
        if chain.events.len() != parts.len() + 1 {
            return Err(CertificateError::Malformed(
                "one event per part and one for the first header".into(),
            ));
        }
        let headers = std::iter::once(genesis).chain(parts);
        Ok(headers.zip(chain.events.iter().copied()).collect())
    }

    /// The commitment, checked to be the blob's (size and id).
    pub fn blob_commitment(&self) -> Result<BlobCommitment, CertificateError> {
        let wrong = |reason: String| CertificateError::Commitment {
            blob: hex(&self.blob),
            reason,
        };
        let commitment =
            BlobCommitment::decode(&self.commitment).map_err(|e| wrong(e.to_string()))?;
        if commitment.size != self.size {
            return Err(wrong(format!(
                "it commits to {} bytes, the certificate says {}",
                commitment.size, self.size
            )));
        }
        if commitment.id() != self.blob {
            return Err(wrong(format!(
                "it hashes to blob 0x{}",
                hex(&commitment.id())
            )));
        }
        Ok(commitment)
    }

    /// The parts' headers, checked to carry the blob in order.
    pub fn parts(&self) -> Result<Vec<EntryHeader>, CertificateError> {
        let bad = |reason: String| Err(CertificateError::Parts(reason));
        if self.headers.is_empty() {
            return bad("no parts".into());
        }
        let mut parts = Vec::with_capacity(self.headers.len());
        for (i, bytes) in self.headers.iter().enumerate() {
            let header = EntryHeader::decode(bytes)
                .map_err(|e| CertificateError::Parts(format!("header {i}: {e}")))?;
            if part_of(&header.entry.tags) != Some(self.blob) {
                return bad(format!(
                    "header {i} (seq {}) is not a part of the blob",
                    header.seq
                ));
            }
            if parts
                .last()
                .is_some_and(|p: &EntryHeader| p.seq >= header.seq)
            {
                return bad(format!("header {i} (seq {}) is out of order", header.seq));
            }
            parts.push(header);
        }
        let carried: u64 = parts.iter().map(|p| p.entry.geometry.payload_len).sum();
        if carried != self.size {
            return bad(format!(
                "they carry {carried} bytes, the blob has {}",
                self.size
            ));
        }
        Ok(parts)
    }

    /// The distinct keys that signed the statement (signatures that do not
    /// recover are ignored: they count for no one).
    pub fn signers(&self) -> Vec<Address> {
        let statement = self.statement();
        let mut signers: Vec<Address> = self
            .signatures
            .iter()
            .filter_map(|s| ordo_txn::sign::recover_canonical(s, statement).ok())
            .collect();
        signers.sort_unstable();
        signers.dedup();
        signers
    }

    /// Checks `bytes` against the certificate: its size, each part's bytes
    /// against its header's entry commitment, and the whole against the
    /// KZG commitment. Call after [`verify`].
    pub fn check_blob(&self, bytes: &[u8]) -> Result<(), CertificateError> {
        let not = |reason: String| Err(CertificateError::NotTheBlob(reason));
        if bytes.len() as u64 != self.size {
            return not(format!("{} bytes, the blob has {}", bytes.len(), self.size));
        }
        let mut offset = 0usize;
        let mut coder = Coder::new();
        for header in self.parts()? {
            let g = header.entry.geometry;
            let len = g.payload_len as usize;
            let part = &bytes[offset..offset + len];
            let coded = coder
                .encode(part, g.chunk_size, g.data_shards, g.parity_shards)
                .map_err(|e| {
                    CertificateError::NotTheBlob(format!("coding part {}: {e}", header.seq))
                })?;
            if coded.commitment != header.entry.commitment {
                return not(format!(
                    "part {} does not match its entry's commitment",
                    header.seq
                ));
            }
            offset += len;
        }
        let commitment = self.blob_commitment()?;
        match commitment.matches(bytes) {
            Ok(true) => Ok(()),
            Ok(false) => not("they do not match the KZG commitment".into()),
            Err(e) => not(e.to_string()),
        }
    }
}

/// Checks `certificate` with no trust in whoever issued it (see the
/// module's documentation).
pub fn verify(certificate: &Certificate, trust: &Trust) -> Result<Verified, CertificateError> {
    if trust.threshold == 0 || trust.signers.is_empty() {
        return Err(CertificateError::NoTrust);
    }
    certificate.blob_commitment()?;
    let parts = certificate.parts()?;
    if let Some(expected) = trust.log
        && expected != certificate.log
    {
        return Err(CertificateError::WrongLog {
            found: hex(&certificate.log),
            expected: hex(&expected),
        });
    }
    let signers = certificate.signers();
    let signed_by: Vec<Address> = signers
        .iter()
        .filter(|s| trust.signers.contains(s))
        .copied()
        .collect();
    if signed_by.len() < trust.threshold {
        let by: Vec<String> = signers.iter().map(|s| format!("0x{}", hex(s))).collect();
        return Err(CertificateError::TooFewSigners {
            signed: signed_by.len(),
            needed: trust.threshold,
            by: if by.is_empty() {
                "no one".into()
            } else {
                by.join(", ")
            },
        });
    }
    Ok(Verified { parts, signed_by })
}

/// The id of the log whose first header is `genesis_header` (encoded).
pub fn log_id(genesis_header: &[u8]) -> [u8; 32] {
    blake3::derive_key("ordo/log-id/v1", genesis_header)
}

impl ChainInclusion {
    fn write<'w>(&self, w: &'w mut Writer) -> &'w mut Writer {
        w.u64(self.chain_id)
            .fixed(&self.contract)
            .bytes(&self.genesis)
            .count(self.events.len());
        for event in &self.events {
            w.u64(event.block_number)
                .fixed(&event.block_hash)
                .fixed(&event.tx_hash)
                .u64(event.log_index);
        }
        w
    }

    /// The chain inclusion after the signatures, if the certificate has one.
    fn read(r: &mut Reader<'_>) -> Result<Option<Self>, CertificateError> {
        match r.u8("inclusion kind")? {
            0 => return Ok(None),
            1 => {}
            other => {
                return Err(CertificateError::Malformed(format!(
                    "inclusion kind {other}: 0 (signatures) or 1 (a chain)"
                )));
            }
        }
        let (chain_id, contract) = (r.u64("chain id")?, r.fixed("contract")?);
        let genesis = r
            .bytes("first header", ordo_log::header::MAX_HEADER_BYTES)?
            .to_vec();
        let count = r.count("events", MAX_BLOB_PARTS + 1)?;
        let events = (0..count)
            .map(|_| {
                Ok(EventRef {
                    block_number: r.u64("block")?,
                    block_hash: r.fixed("block hash")?,
                    tx_hash: r.fixed("transaction hash")?,
                    log_index: r.u64("log index")?,
                })
            })
            .collect::<Result<_, CertificateError>>()?;
        Ok(Some(Self {
            chain_id,
            contract,
            genesis,
            events,
        }))
    }
}

impl From<ordo_txn::codec::DecodeError> for CertificateError {
    fn from(e: ordo_txn::codec::DecodeError) -> Self {
        CertificateError::Malformed(e.to_string())
    }
}
