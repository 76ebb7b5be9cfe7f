//! Stream ids: derived from the creator, so they cannot be squatted.

use crate::StreamId;
use crate::record::Address;

const STREAM_KEY: [u8; 32] = *b"ordo/txn/stream-id/v1...........";

/// The id of the stream `creator` creates under `name`.
pub fn stream_id(creator: &Address, name: &[u8]) -> StreamId {
    let mut hasher = blake3::Hasher::new_keyed(&STREAM_KEY);
    hasher.update(creator);
    hasher.update(name);
    *hasher.finalize().as_bytes()
}

/// Lower-case hex of `bytes` (ids, addresses and hashes in messages).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
