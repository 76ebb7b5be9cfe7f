//! The stored value of a versioned row: a tag byte, then the value for a
//! put; a delete is a tombstone, a lone tag byte.

const TOMBSTONE: u8 = 0;
const PUT: u8 = 1;

/// A value as of some version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The version that wrote it.
    pub version: u64,
    /// The value, or `None` if that version deleted the key.
    pub value: Option<Vec<u8>>,
}

/// A stored value that is neither a put nor a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad value tag")]
pub struct BadValueTag;

/// Encodes a row value: a tag byte, then the value for puts.
pub fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TOMBSTONE],
        Some(v) => {
            let mut out = Vec::with_capacity(1 + v.len());
            out.push(PUT);
            out.extend_from_slice(v);
            out
        }
    }
}

/// The value a stored row holds (`None` for a tombstone).
pub fn decode_value(bytes: &[u8]) -> Result<Option<Vec<u8>>, BadValueTag> {
    match bytes.split_first() {
        Some((&TOMBSTONE, [])) => Ok(None),
        Some((&PUT, value)) => Ok(Some(value.to_vec())),
        _ => Err(BadValueTag),
    }
}

/// Whether a stored row is a tombstone.
pub fn is_tombstone(bytes: &[u8]) -> bool {
    bytes == [TOMBSTONE]
}

/// A stored row's value as the version `version` of its key.
pub fn decode_stored(version: u64, stored: &[u8]) -> Result<Versioned, BadValueTag> {
    Ok(Versioned {
        version,
        value: decode_value(stored)?,
    })
}
