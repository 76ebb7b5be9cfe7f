//! A transaction that read nothing has nothing the conflict window must
//! vouch for: however far the log has moved past its snapshot, it is never
//! `too_old`. One that read something still is.

mod common;

use common::*;
use ordo_kv::MemEngine;
use ordo_txn::{Outcome, Read, Replayer, Transaction, Write};

/// The conflict window of this test: small, so the log passes it quickly.
const WINDOW: u64 = 4;

#[test]
fn a_blind_write_at_version_0_commits_however_far_the_log_has_moved() {
    let mut replayer = Replayer::open_with_window(MemEngine::new(), WINDOW).expect("opens");
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"blind");
    assert!(apply(&mut replayer, &[signed_by(0, create)])[0].is_committed());
    let stream = stream_of(0, b"blind");
    let write = |n: u64, read_version: u64, reads: Vec<Read>| Transaction {
        reads,
        writes: vec![Write {
            stream,
            key: n.to_be_bytes().to_vec(),
            value: Some(vec![1]),
        }],
        ..blank(txn_id(n), read_version)
    };
    for n in 2..2 + 3 * WINDOW {
        let at = replayer.applied().version;
        assert!(apply(&mut replayer, &[signed_by(0, write(n, at, vec![]))])[0].is_committed());
    }
    let blind = write(100, 0, vec![]);
    let outcome = apply(&mut replayer, &[signed_by(0, blind)]).remove(0);
    assert!(outcome.is_committed(), "{outcome:?}");
    let read = vec![Read::Key {
        stream,
        key: b"anything".to_vec(),
    }];
    let reading = write(101, 0, read);
    let outcome = apply(&mut replayer, &[signed_by(0, reading)]).remove(0);
    assert!(
        matches!(
            outcome,
            Outcome::TooOld {
                read_version: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
}
