//! Canonical, bounded binary encoding primitives.
//!
//! Integers are fixed-width little-endian (one value, one encoding: no varint
//! ambiguity), byte strings are a `u32` length then the bytes. The reader
//! takes a limit for every length it reads, so a forged length can never make
//! a replica allocate more than the caller allows, and it reports exactly what
//! was wrong as a typed error.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Input ended before the field did.
    #[error("truncated {field}: needed {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length exceeds the limit for its field.
    #[error("{field} is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A count of items exceeds the limit for its field.
    #[error("{field} has {count} entries, over the limit of {limit}")]
    TooMany {
        /// The field being read.
        field: &'static str,
        /// The count found.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A key range whose end sorts before its start: a reader that meant
    /// "nothing" writes an empty range (`end == start`).
    #[error("{field} ends before it starts")]
    InvertedRange {
        /// The field being read.
        field: &'static str,
    },
    /// A tag byte names no known variant.
    #[error("unknown {field} {tag:#04x}")]
    BadTag {
        /// The field being read.
        field: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A number that must index something is past its end.
    #[error("{field} {value} is out of range (must be below {bound})")]
    OutOfRange {
        /// The field being read.
        field: &'static str,
        /// The number found.
        value: u64,
        /// The exclusive upper bound.
        bound: u64,
    },
    /// Bytes remain after the value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Appends fields to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` bytes, for encodings whose size
    /// is known up front (saves the buffer's regrowth copies).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Writes one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Writes a `u64`, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Writes fixed-size bytes with no length.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Writes a `u32` count of items (the framing [`Reader::count`] reads).
    /// Callers check their limits first; counts are far below `u32::MAX`.
    pub fn count(&mut self, n: usize) -> &mut Self {
        let n = u32::try_from(n).expect("counts are limited far below 4 G");
        self.buf.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Writes a length-prefixed byte string. Callers check their limits
    /// before writing; lengths over `u32::MAX` cannot be encoded.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("byte strings are limited far below 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a byte slice, refusing anything short or oversized.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }

    /// Reads a format byte that must be `expected` (a layout version).
    pub fn expect_tag(&mut self, field: &'static str, expected: u8) -> Result<(), DecodeError> {
        match self.u8(field)? {
            tag if tag == expected => Ok(()),
            tag => Err(DecodeError::BadTag { field, tag }),
        }
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let bytes = self.take(field, 8)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    /// Reads `N` fixed bytes.
    pub fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a length-prefixed byte string of at most `limit` bytes.
    pub fn bytes(&mut self, field: &'static str, limit: usize) -> Result<&'a [u8], DecodeError> {
        let len = u32::from_le_bytes(self.fixed(field)?) as usize;
        if len > limit {
            return Err(DecodeError::TooLong { field, len, limit });
        }
        self.take(field, len)
    }

    /// Reads a `u32` count of items, refusing more than `limit`.
    pub fn count(&mut self, field: &'static str, limit: usize) -> Result<usize, DecodeError> {
        let count = u32::from_le_bytes(self.fixed(field)?) as usize;
        if count > limit {
            return Err(DecodeError::TooMany {
                field,
                count,
                limit,
            });
        }
        Ok(count)
    }

    /// Reads four bytes that must be `magic` (a format's name and version).
    pub fn expect_magic(
        &mut self,
        magic: &[u8; 4],
        field: &'static str,
    ) -> Result<(), DecodeError> {
        let found: [u8; 4] = self.fixed(field)?;
        match found == *magic {
            true => Ok(()),
            false => Err(DecodeError::BadTag {
                field,
                tag: found[0],
            }),
        }
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(a: u8, b: u64, key: &[u8], id: [u8; 16]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(a).u64(b).bytes(key).fixed(&id);
        w.finish()
    }

    fn decode(bytes: &[u8], limit: usize) -> Result<(u8, u64, Vec<u8>, [u8; 16]), DecodeError> {
        let mut r = Reader::new(bytes);
        let value = (
            r.u8("a")?,
            r.u64("b")?,
            r.bytes("key", limit)?.to_vec(),
            r.fixed("id")?,
        );
        r.finish()?;
        Ok(value)
    }

    proptest! {
        #[test]
        fn round_trips(a: u8, b: u64, key in prop::collection::vec(any::<u8>(), 0..64), id: [u8; 16]) {
            prop_assert_eq!(decode(&encode(a, b, &key, id), 64), Ok((a, b, key, id)));
        }

        #[test]
        fn truncation_and_trailing_bytes_are_refused(key in prop::collection::vec(any::<u8>(), 0..64), cut in any::<prop::sample::Index>()) {
            let bytes = encode(1, 2, &key, [3; 16]);
            prop_assert!(decode(&bytes[..cut.index(bytes.len())], 64).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(decode(&longer, 64), Err(DecodeError::Trailing(1)));
        }
    }

    #[test]
    fn forged_length_is_refused_before_allocating() {
        let mut w = Writer::new();
        w.u8(0).u64(0).fixed(&u32::MAX.to_le_bytes());
        let error = decode(&w.finish(), 1024).expect_err("length over the limit");
        assert_eq!(
            error,
            DecodeError::TooLong {
                field: "key",
                len: u32::MAX as usize,
                limit: 1024
            }
        );
    }
}
