//! A scan continuation token, which clients hold as opaque bytes and hand
//! back: decoding any bytes never panics, and what decodes re-encodes to
//! the same token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_kv::mvcc::Continuation;

fuzz_target!(|data: &[u8]| {
    if let Some(continuation) = Continuation::decode(data) {
        assert_eq!(continuation.encode(), data);
    }
});
