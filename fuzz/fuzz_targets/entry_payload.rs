//! A log entry's payload as replay reads it: the batch framing and every
//! transaction in it decode without panicking, and a payload yields one
//! decision per transaction (or one for the whole, broken entry).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let checked = ordo_txn::check_entry(data);
    match ordo_txn::decode_batch(data) {
        Ok(txs) => assert_eq!(checked.len(), txs.len()),
        Err(_) => assert_eq!(checked.len(), 1),
    }
});
