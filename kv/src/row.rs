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

/// A heads row's value (see [`crate::heads`]): `version u64 BE ++ the
/// stored value`.
pub fn encode_head(version: u64, stored: &[u8]) -> Vec<u8> {
    let mut head = Vec::with_capacity(8 + stored.len());
    head.extend_from_slice(&version.to_be_bytes());
    head.extend_from_slice(stored);
    head
}

/// A heads row's version and stored value; `None` if it is too short.
pub fn decode_head(head: &[u8]) -> Option<(u64, &[u8])> {
    let (version, stored) = head.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*version), stored))
}

/// The version of a heads row that is a tombstone, for collection (any
/// other row, and the covered version's, gives `None`).
pub fn tombstone_version(head: &[u8]) -> Option<u64> {
    let (version, stored) = decode_head(head)?;
    is_tombstone(stored).then_some(version)
}
