//! Order-preserving encoding of versioned keys.
//!
//! A stored key is `stream (32 bytes) ++ escaped(user key) ++ !version (BE)`.
//!
//! The user key is escaped so that its end is unambiguous and byte order is
//! kept: every `0x00` in it becomes `0x00 0xFF`, and it ends with `0x00 0x01`.
//! A key that is a prefix of another therefore sorts first (its terminator
//! `0x00 0x01` is below the longer key's next byte, or below its escaped
//! `0x00 0xFF`). The version is stored inverted and big-endian so that, for
//! one key, newer versions sort *before* older ones: "the newest version at or
//! below V" is one seek.

/// A 32-byte stream id.
pub type StreamId = [u8; 32];

/// Bytes of the version at the end of a versioned key. Everything before
/// them (the stream and the escaped key) is the *key prefix*, shared by
/// every version of one key and by no other key.
pub const VERSION_BYTES: usize = 8;

/// Why a stored key could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes end before the key does.
    #[error("versioned key is truncated")]
    Truncated,
    /// An escape sequence is not one this encoding writes.
    #[error("invalid escape byte {0:#04x} in versioned key")]
    BadEscape(u8),
    /// Bytes follow the version.
    #[error("versioned key has {0} trailing bytes")]
    Trailing(usize),
}

/// The first byte string after every string that starts with `prefix`
/// (None when no such string exists: `prefix` is all `0xFF`). The exclusive
/// end of a prefix range.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Encodes `(stream, key, version)` into one order-preserving byte string.
pub fn encode_versioned(stream: &StreamId, key: &[u8], version: u64) -> Vec<u8> {
    let mut out = encode_key_prefix(stream, key);
    out.extend_from_slice(&(!version).to_be_bytes());
    out
}

/// The part of a versioned key shared by every version of `key`: seeking to it
/// finds the key's newest version.
pub fn encode_key_prefix(stream: &StreamId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + key.len() + key.len() / 8 + 2 + 8);
    out.extend_from_slice(stream);
    for &byte in key {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
    out
}

/// Decodes a versioned key back into `(stream, key, version)`.
pub fn decode_versioned(bytes: &[u8]) -> Result<(StreamId, Vec<u8>, u64), KeyError> {
    let (stream, key, at) = split_key(bytes)?;
    let version_bytes: [u8; 8] = bytes
        .get(at..at + 8)
        .ok_or(KeyError::Truncated)?
        .try_into()
        .map_err(|_| KeyError::Truncated)?;
    let trailing = bytes.len() - (at + 8);
    if trailing != 0 {
        return Err(KeyError::Trailing(trailing));
    }
    Ok((stream, key, !u64::from_be_bytes(version_bytes)))
}

/// Decodes a key prefix ([`encode_key_prefix`]) back into `(stream, key)`.
pub fn decode_key_prefix(bytes: &[u8]) -> Result<(StreamId, Vec<u8>), KeyError> {
    let (stream, key, at) = split_key(bytes)?;
    match bytes.len() - at {
        0 => Ok((stream, key)),
        trailing => Err(KeyError::Trailing(trailing)),
    }
}

/// The stream and user key at the start of `bytes`, and where they end.
fn split_key(bytes: &[u8]) -> Result<(StreamId, Vec<u8>, usize), KeyError> {
    let stream: StreamId = bytes
        .get(..32)
        .ok_or(KeyError::Truncated)?
        .try_into()
        .map_err(|_| KeyError::Truncated)?;
    let mut key = Vec::new();
    let mut at = 32;
    loop {
        match *bytes.get(at).ok_or(KeyError::Truncated)? {
            0x00 => match *bytes.get(at + 1).ok_or(KeyError::Truncated)? {
                0xFF => key.push(0),
                0x01 => break,
                other => return Err(KeyError::BadEscape(other)),
            },
            byte => {
                key.push(byte);
                at += 1;
                continue;
            }
        }
        at += 2;
    }
    Ok((stream, key, at + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn versioned() -> impl Strategy<Value = (StreamId, Vec<u8>, u64)> {
        // Small alphabets make equal streams, shared prefixes and zero bytes common.
        (
            prop::array::uniform32(0u8..2),
            prop::collection::vec(prop::sample::select(vec![0u8, 1, 0xFF, b'a']), 0..6),
            any::<u64>(),
        )
    }

    proptest! {
        #[test]
        fn round_trips(v in versioned()) {
            let bytes = encode_versioned(&v.0, &v.1, v.2);
            prop_assert_eq!(decode_versioned(&bytes), Ok(v));
        }

        #[test]
        fn byte_order_is_stream_then_key_then_newest_version_first(a in versioned(), b in versioned()) {
            let expected = (a.0, &a.1, std::cmp::Reverse(a.2)).cmp(&(b.0, &b.1, std::cmp::Reverse(b.2)));
            let actual = encode_versioned(&a.0, &a.1, a.2).cmp(&encode_versioned(&b.0, &b.1, b.2));
            prop_assert_eq!(actual, expected);
        }

        #[test]
        fn truncated_keys_are_refused(v in versioned(), cut in any::<prop::sample::Index>()) {
            let bytes = encode_versioned(&v.0, &v.1, v.2);
            let keep = cut.index(bytes.len());
            prop_assert!(decode_versioned(&bytes[..keep]).is_err());
        }
    }

    #[test]
    fn prefix_of_a_key_sorts_before_it() {
        let s = [0u8; 32];
        assert!(encode_versioned(&s, b"ab", 0) < encode_versioned(&s, b"ab\0", u64::MAX));
        assert!(encode_versioned(&s, b"ab", 0) < encode_versioned(&s, b"abc", u64::MAX));
    }
}
