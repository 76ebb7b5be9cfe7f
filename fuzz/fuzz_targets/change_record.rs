//! A stored change record (the keys each version wrote), as replay and
//! watch read it back: decoding never panics and never allocates past the
//! record's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ordo_txn::changes::decode(data);
});
