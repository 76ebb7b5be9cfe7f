//! A log entry's payload as replay reads it: a batch of signed
//! transactions, an attested or submitted entry, or a genesis record
//! (either ordering). Every framing and
//! every transaction decode without panicking, and a payload yields one
//! decision per transaction (or one for the genesis record, or for the
//! whole of a broken entry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_txn::attest::{Genesis, decode_attested, decode_submitted};

fuzz_target!(|data: &[u8]| {
    let checked = ordo_txn::check_entry(data);
    let expected = match data.get(..4) {
        Some(b"OTA1" | b"OTA2") => decode_attested(data).map_or(1, |entry| entry.items.len()),
        Some(b"OTS1") => decode_submitted(data).map_or(1, |items| items.len()),
        Some(b"OGN1" | b"OGN2") => 1,
        _ => ordo_txn::decode_batch(data).map_or(1, |txs| txs.len()),
    };
    assert_eq!(checked.len(), expected);
    if let Ok(genesis) = Genesis::decode(data) {
        assert_eq!(Genesis::decode(&genesis.encode()), Ok(genesis), "one record, one encoding");
    }
});
