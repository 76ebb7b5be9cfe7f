//! An entry header as a sequencer stores and serves it: decoding never
//! panics, and whatever decodes re-encodes to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_log::EntryHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = EntryHeader::decode(data) {
        assert_eq!(
            header.encode(),
            data,
            "a decoded header must re-encode to its bytes"
        );
    }
});
