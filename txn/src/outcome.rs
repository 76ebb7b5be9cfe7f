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
    /// Its id was already decided; nothing was applied again.
    Duplicate {
        /// What was decided the first time.
        original: Box<Outcome>,
    },
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
            Outcome::BadSignature { .. } => "bad_signature",
            Outcome::Malformed { .. } => "malformed",
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
            tag => {
                return Err(DecodeError::BadTag {
                    field: "outcome tag",
                    tag,
                });
            }
        })
    }
}
