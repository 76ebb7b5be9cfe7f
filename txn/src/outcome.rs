//! What replay decided for a transaction, and its stored encoding.

use crate::StreamId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::MAX_KEY_BYTES;

/// The decision for one transaction. Everything but `Committed` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; its writes are visible from `version` on.
    Committed {
        /// The commit version.
        version: u64,
    },
    /// Something it read was written after its read version.
    Conflict {
        /// The stream of the conflicting key.
        stream: StreamId,
        /// The first conflicting key found.
        key: Vec<u8>,
    },
    /// Its read version is older than the conflict window reaches.
    TooOld {
        /// The transaction's read version.
        read_version: u64,
        /// The oldest read version that could still be checked.
        oldest: u64,
    },
    /// Its read version is newer than anything applied.
    FutureVersion {
        /// The transaction's read version.
        read_version: u64,
        /// The newest applied version.
        applied: u64,
    },
    /// An access-control rule forbids one of its writes or operations.
    PermissionDenied {
        /// The write (`"write"`) or operation name refused.
        op: String,
        /// The stream.
        stream: StreamId,
        /// The key, for key-level refusals.
        key: Option<Vec<u8>>,
    },
    /// It names a stream that does not exist.
    UnknownStream {
        /// The stream.
        stream: StreamId,
    },
    /// It creates a stream that already exists.
    StreamExists {
        /// The stream.
        stream: StreamId,
    },
    /// Its id was already decided for this same transaction (a resend);
    /// nothing was applied again.
    Duplicate {
        /// What was decided the first time.
        original: Box<Outcome>,
    },
    /// Its id was already decided for a *different* transaction of the same
    /// sender; nothing was applied. Ids name one transaction for ever: the
    /// client must pick a fresh id.
    IdReused,
    /// Its signature is invalid or not the sender's. Not recorded under the
    /// claimed sender, so a forgery cannot burn someone else's id.
    BadSignature {
        /// Why.
        reason: String,
    },
    /// It could not be decoded. Not recorded.
    Malformed {
        /// Why.
        reason: String,
    },
    /// It was unsigned, in an entry attested by an account that is not a
    /// gateway at that position of the log. Not recorded under the sender
    /// (who never proved anything), so a forged entry cannot burn ids.
    NotAGateway {
        /// Who signed the entry.
        gateway: [u8; 20],
    },
    /// A mining operation the mining rules refuse (see `docs/MINING.md`):
    /// a proof that does not verify, answers a closed epoch, repeats a
    /// rewarded attempt, or comes from someone other than its miner.
    MiningRefused {
        /// Why.
        reason: String,
    },
    /// A retention operation the retention rules refuse (see
    /// `docs/RETENTION.md`): a compaction past the policy's floor, to a
    /// version not yet committed or already compacted, or a policy out of
    /// bounds.
    RetentionRefused {
        /// Why.
        reason: String,
    },
    /// A data-availability operation the blob rules refuse (see
    /// `crate::da`): parts that are not the blob's, a record its owner
    /// already holds, a record that does not exist or has not expired.
    DaRefused {
        /// Why.
        reason: String,
    },
}

/// Bytes for a person: quoted text when they are printable UTF-8, else
/// `0x` and hex.
pub fn shown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => format!("\"{text}\""),
        _ => format!("0x{}", crate::ids::hex(bytes)),
    }
}

/// What the outcome means, for people: keys shown by [`shown`], streams
/// in hex, and what the client can do about it.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = crate::ids::hex;
        match self {
            Outcome::Committed { version } => write!(f, "committed at version {version}"),
            Outcome::Conflict { stream, key } => write!(
                f,
                "conflict: key {} of stream {} was written after this transaction's snapshot; retry with a fresh snapshot",
                shown(key),
                hex(stream)
            ),
            Outcome::TooOld {
                read_version,
                oldest,
            } => write!(
                f,
                "too old: the snapshot (version {read_version}) is older than the oldest version reads can still be checked against ({oldest}); retry with a fresh snapshot"
            ),
            Outcome::FutureVersion {
                read_version,
                applied,
            } => write!(
                f,
                "future version: the snapshot (version {read_version}) is newer than anything applied ({applied})"
            ),
            Outcome::PermissionDenied { op, stream, key } => {
                write!(
                    f,
                    "permission denied: this sender may not {op} in stream {}",
                    hex(stream)
                )?;
                match key {
                    Some(key) => write!(f, " (key {})", shown(key)),
                    None => Ok(()),
                }
            }
            Outcome::UnknownStream { stream } => write!(f, "unknown stream {}", hex(stream)),
            Outcome::StreamExists { stream } => write!(f, "stream {} already exists", hex(stream)),
            Outcome::Duplicate { original } => write!(
                f,
                "duplicate: this transaction was decided before ({original})"
            ),
            Outcome::IdReused => write!(
                f,
                "id reused: this sender's id was already used by a different transaction; nothing was applied; use a fresh id"
            ),
            Outcome::BadSignature { reason } => write!(f, "bad signature: {reason}"),
            Outcome::Malformed { reason } => write!(f, "malformed transaction: {reason}"),
            Outcome::NotAGateway { gateway } => write!(
                f,
                "not attested: the entry was signed by 0x{}, which is not a gateway here; nothing was applied",
                crate::ids::hex(gateway)
            ),
            Outcome::MiningRefused { reason } => write!(f, "mining refused: {reason}"),
            Outcome::RetentionRefused { reason } => write!(f, "retention refused: {reason}"),
            Outcome::DaRefused { reason } => write!(f, "blob refused: {reason}"),
        }
    }
}

impl Outcome {
    /// Whether the transaction was applied.
    pub fn is_committed(&self) -> bool {
        matches!(self, Outcome::Committed { .. })
    }

    /// Stable name of the outcome kind, for metrics and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Committed { .. } => "committed",
            Outcome::Conflict { .. } => "conflict",
            Outcome::TooOld { .. } => "too_old",
            Outcome::FutureVersion { .. } => "future_version",
            Outcome::PermissionDenied { .. } => "permission_denied",
            Outcome::UnknownStream { .. } => "unknown_stream",
            Outcome::StreamExists { .. } => "stream_exists",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::IdReused => "id_reused",
            Outcome::BadSignature { .. } => "bad_signature",
            Outcome::Malformed { .. } => "malformed",
            Outcome::NotAGateway { .. } => "not_a_gateway",
            Outcome::MiningRefused { .. } => "mining_refused",
            Outcome::RetentionRefused { .. } => "retention_refused",
            Outcome::DaRefused { .. } => "da_refused",
        }
    }

    /// Canonical bytes (stored, and hashed into the state digest).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.finish()
    }

    fn encode_into(&self, w: &mut Writer) {
        match self {
            Outcome::Committed { version } => w.u8(0).u64(*version),
            Outcome::Conflict { stream, key } => w.u8(1).fixed(stream).bytes(key),
            Outcome::TooOld {
                read_version,
                oldest,
            } => w.u8(2).u64(*read_version).u64(*oldest),
            Outcome::FutureVersion {
                read_version,
                applied,
            } => w.u8(3).u64(*read_version).u64(*applied),
            Outcome::PermissionDenied { op, stream, key } => {
                w.u8(4).bytes(op.as_bytes()).fixed(stream);
                match key {
                    None => w.u8(0),
                    Some(key) => w.u8(1).bytes(key),
                }
            }
            Outcome::UnknownStream { stream } => w.u8(5).fixed(stream),
            Outcome::StreamExists { stream } => w.u8(6).fixed(stream),
            Outcome::Duplicate { original } => {
                w.u8(7);
                original.encode_into(w);
                w
            }
            Outcome::BadSignature { reason } => w.u8(8).bytes(reason.as_bytes()),
            Outcome::Malformed { reason } => w.u8(9).bytes(reason.as_bytes()),
            Outcome::IdReused => w.u8(10),
            Outcome::NotAGateway { gateway } => w.u8(11).fixed(gateway),
            Outcome::MiningRefused { reason } => w.u8(12).bytes(reason.as_bytes()),
            Outcome::RetentionRefused { reason } => w.u8(13).bytes(reason.as_bytes()),
            Outcome::DaRefused { reason } => w.u8(14).bytes(reason.as_bytes()),
        };
    }

    /// Parses stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let outcome = Self::decode_from(&mut r, 0)?;
        r.finish()?;
        Ok(outcome)
    }

    fn decode_from(r: &mut Reader<'_>, depth: u8) -> Result<Self, DecodeError> {
        let text = |r: &mut Reader<'_>, field| {
            r.bytes(field, 4096)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        Ok(match r.u8("outcome tag")? {
            0 => Outcome::Committed {
                version: r.u64("version")?,
            },
            1 => Outcome::Conflict {
                stream: r.fixed("stream")?,
                key: r.bytes("key", MAX_KEY_BYTES)?.to_vec(),
            },
            2 => Outcome::TooOld {
                read_version: r.u64("read version")?,
                oldest: r.u64("oldest")?,
            },
            3 => Outcome::FutureVersion {
                read_version: r.u64("read version")?,
                applied: r.u64("applied")?,
            },
            4 => {
                let op = text(r, "op")?;
                let stream = r.fixed("stream")?;
                let key = match r.u8("key tag")? {
                    0 => None,
                    1 => Some(r.bytes("key", MAX_KEY_BYTES)?.to_vec()),
                    tag => {
                        return Err(DecodeError::BadTag {
                            field: "key tag",
                            tag,
                        });
                    }
                };
                Outcome::PermissionDenied { op, stream, key }
            }
            5 => Outcome::UnknownStream {
                stream: r.fixed("stream")?,
            },
            6 => Outcome::StreamExists {
                stream: r.fixed("stream")?,
            },
            7 if depth == 0 => Outcome::Duplicate {
                original: Box::new(Self::decode_from(r, 1)?),
            },
            8 => Outcome::BadSignature {
                reason: text(r, "reason")?,
            },
            9 => Outcome::Malformed {
                reason: text(r, "reason")?,
            },
            10 => Outcome::IdReused,
            11 => Outcome::NotAGateway {
                gateway: r.fixed("gateway")?,
            },
            12 => Outcome::MiningRefused {
                reason: text(r, "reason")?,
            },
            13 => Outcome::RetentionRefused {
                reason: text(r, "reason")?,
            },
            14 => Outcome::DaRefused {
                reason: text(r, "reason")?,
            },
            tag => {
                return Err(DecodeError::BadTag {
                    field: "outcome tag",
                    tag,
                });
            }
        })
    }
}
