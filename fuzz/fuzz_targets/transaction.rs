//! A signed transaction as `Txn.Commit` receives it: decoding never
//! panics, whatever decodes re-encodes to exactly the same bytes (one
//! transaction, one encoding), and checking its signature never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_txn::SignedTransaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedTransaction::decode(data) {
        assert_eq!(
            signed.encode(),
            data,
            "a decoded transaction must re-encode to its bytes"
        );
        let _ = ordo_txn::sign::verify_hash(&signed);
    }
});
