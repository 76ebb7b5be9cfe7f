//! SQL text as `ordo.v1.Sql` receives it: splitting, parsing and
//! positioning errors never panic, whatever the bytes (as text).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for statement in ordo_sql::parse::parse_each(&text) {
        let _ = statement;
    }
});
