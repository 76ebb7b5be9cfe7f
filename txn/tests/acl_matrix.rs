//! The access-control matrix: every operation tried by every kind of role,
//! each against a freshly built stream, with the expected outcome and its
//! effect (or lack of one) on the stored facts. Then forged signatures.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ordo_kv::{Column, MemEngine, StreamId};
use ordo_txn::replay::fact_holds;
use ordo_txn::{AclOp, Address, Fact, Outcome, Replayer, Transaction, Write};
use std::sync::Arc;

const ADMIN: usize = 0;
const WRITER: usize = 1;
const SPECIAL: usize = 2;
const STRANGER: usize = 3;
const EX_ADMIN: usize = 4;
const EX_WRITER: usize = 5;
const EX_SPECIAL: usize = 6;
const REVOKED: usize = 7;
/// Holds the writer and special-writer roles; the target of revocations.
const TARGET: usize = 8;
/// Holds nothing; the target of grants.
const NEWCOMER: usize = 9;

const ROLES: [(&str, usize); 8] = [
    ("admin", ADMIN),
    ("writer", WRITER),
    ("special writer", SPECIAL),
    ("stranger", STRANGER),
    ("renounced admin", EX_ADMIN),
    ("renounced writer", EX_WRITER),
    ("renounced special writer", EX_SPECIAL),
    ("revoked writer", REVOKED),
];

fn main_stream() -> StreamId {
    stream_of(ADMIN, b"main")
}

struct Setup {
    replayer: Replayer<Arc<MemEngine>>,
    next_id: u64,
}

impl Setup {
    /// Stream "main" of ADMIN with key "s" special and every role in place.
    fn new() -> Self {
        let replayer = Replayer::open(Arc::new(MemEngine::new())).unwrap();
        let mut setup = Setup {
            replayer,
            next_id: 1,
        };
        let s = main_stream();
        let special = b"s".to_vec();
        setup.commit(
            ADMIN,
            vec![AclOp::CreateStream {
                name: b"main".to_vec(),
            }],
            vec![],
        );
        let grants = vec![
            AclOp::SetKeySpecial {
                stream: s,
                key: special.clone(),
            },
            AclOp::GrantWriter {
                stream: s,
                account: address(WRITER),
            },
            AclOp::GrantSpecialWriter {
                stream: s,
                key: special.clone(),
                account: address(SPECIAL),
            },
            AclOp::GrantAdmin {
                stream: s,
                account: address(EX_ADMIN),
            },
            AclOp::GrantWriter {
                stream: s,
                account: address(EX_WRITER),
            },
            AclOp::GrantSpecialWriter {
                stream: s,
                key: special.clone(),
                account: address(EX_SPECIAL),
            },
            AclOp::GrantWriter {
                stream: s,
                account: address(REVOKED),
            },
            AclOp::GrantWriter {
                stream: s,
                account: address(TARGET),
            },
            AclOp::GrantSpecialWriter {
                stream: s,
                key: special.clone(),
                account: address(TARGET),
            },
        ];
        setup.commit(ADMIN, grants, vec![]);
        setup.commit(EX_ADMIN, vec![AclOp::RenounceAdmin { stream: s }], vec![]);
        setup.commit(EX_WRITER, vec![AclOp::RenounceWriter { stream: s }], vec![]);
        setup.commit(
            EX_SPECIAL,
            vec![AclOp::RenounceSpecialWriter {
                stream: s,
                key: special,
            }],
            vec![],
        );
        setup.commit(
            ADMIN,
            vec![AclOp::RevokeWriter {
                stream: s,
                account: address(REVOKED),
            }],
            vec![],
        );
        setup
    }

    fn tx(&mut self, acl: Vec<AclOp>, writes: Vec<Write>) -> Transaction {
        self.next_id += 1;
        let version = self.replayer.applied().version;
        Transaction {
            acl,
            writes,
            ..blank(txn_id(self.next_id), version)
        }
    }

    /// A new stream "fresh" of ADMIN, no special keys, WRITER a writer.
    fn fresh_stream_with_writer(&mut self) -> StreamId {
        let fresh = stream_of(ADMIN, b"fresh");
        let create = AclOp::CreateStream {
            name: b"fresh".to_vec(),
        };
        let grant = AclOp::GrantWriter {
            stream: fresh,
            account: address(WRITER),
        };
        // Two transactions: an operation sees the facts of earlier
        // transactions, not of earlier operations in its own.
        self.commit(ADMIN, vec![create], vec![]);
        self.commit(ADMIN, vec![grant], vec![]);
        fresh
    }

    fn run(&mut self, who: usize, acl: Vec<AclOp>, writes: Vec<Write>) -> Outcome {
        let tx = self.tx(acl, writes);
        apply(&mut self.replayer, &[signed_by(who, tx)]).remove(0)
    }

    fn commit(&mut self, who: usize, acl: Vec<AclOp>, writes: Vec<Write>) {
        let outcome = self.run(who, acl, writes);
        assert!(
            outcome.is_committed(),
            "set-up step by account {who} failed: {outcome:?}"
        );
    }

    fn holds(&self, fact: &Fact) -> bool {
        let version = self.replayer.applied().version;
        fact_holds(self.replayer.store(), &main_stream(), fact, version).unwrap()
    }

    /// Every fact about "main" that any test account could hold.
    fn facts(&self) -> Vec<(Fact, bool)> {
        let mut all = vec![
            Fact::Exists,
            Fact::SpecialKey(b"s".to_vec()),
            Fact::SpecialKey(b"n".to_vec()),
        ];
        for who in (0..=NEWCOMER).map(address) {
            all.extend([
                Fact::Admin(who),
                Fact::Writer(who),
                Fact::SpecialWriter(who, b"s".to_vec()),
            ]);
        }
        all.into_iter()
            .map(|f| (f.clone(), self.holds(&f)))
            .collect()
    }

    fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        let version = self.replayer.applied().version;
        let found = self
            .replayer
            .store()
            .get(Column::Data, &main_stream(), key, version)
            .unwrap();
        found.and_then(|v| v.value)
    }
}

/// One operation of the matrix: what it is, and what must be true after it
/// commits.
struct Case {
    name: &'static str,
    acl: fn(Address) -> Vec<AclOp>,
    writes: Vec<Write>,
    effect: fn(&Setup, Address) -> bool,
    /// Roles (by index into ROLES) for which it commits.
    allowed: &'static [usize],
}

fn put(key: &[u8]) -> Vec<Write> {
    vec![Write {
        stream: main_stream(),
        key: key.to_vec(),
        value: Some(b"v".to_vec()),
    }]
}

const EVERYONE: &[usize] = &[
    ADMIN, WRITER, SPECIAL, STRANGER, EX_ADMIN, EX_WRITER, EX_SPECIAL, REVOKED,
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "write a normal key",
            acl: |_| vec![],
            writes: put(b"n"),
            effect: |st, _| st.value(b"n").is_some(),
            allowed: &[ADMIN, WRITER],
        },
        Case {
            name: "write a special key",
            acl: |_| vec![],
            writes: put(b"s"),
            effect: |st, _| st.value(b"s").is_some(),
            allowed: &[ADMIN, SPECIAL],
        },
        Case {
            name: "grant admin",
            acl: |_| {
                vec![AclOp::GrantAdmin {
                    stream: main_stream(),
                    account: address(NEWCOMER),
                }]
            },
            writes: vec![],
            effect: |st, _| st.holds(&Fact::Admin(address(NEWCOMER))),
            allowed: &[ADMIN],
        },
        Case {
            name: "renounce admin",
            acl: |_| {
                vec![AclOp::RenounceAdmin {
                    stream: main_stream(),
                }]
            },
            writes: vec![],
            effect: |st, who| !st.holds(&Fact::Admin(who)),
            allowed: EVERYONE,
        },
        Case {
            name: "set key special",
            acl: |_| {
                vec![AclOp::SetKeySpecial {
                    stream: main_stream(),
                    key: b"n".to_vec(),
                }]
            },
            writes: vec![],
            effect: |st, _| st.holds(&Fact::SpecialKey(b"n".to_vec())),
            allowed: &[ADMIN],
        },
        Case {
            name: "set key normal",
            acl: |_| {
                vec![AclOp::SetKeyNormal {
                    stream: main_stream(),
                    key: b"s".to_vec(),
                }]
            },
            writes: vec![],
            effect: |st, _| !st.holds(&Fact::SpecialKey(b"s".to_vec())),
            allowed: &[ADMIN],
        },
        Case {
            name: "grant writer",
            acl: |_| {
                vec![AclOp::GrantWriter {
                    stream: main_stream(),
                    account: address(NEWCOMER),
                }]
            },
            writes: vec![],
            effect: |st, _| st.holds(&Fact::Writer(address(NEWCOMER))),
            allowed: &[ADMIN, WRITER],
        },
        Case {
            name: "revoke writer",
            acl: |_| {
                vec![AclOp::RevokeWriter {
                    stream: main_stream(),
                    account: address(TARGET),
                }]
            },
            writes: vec![],
            effect: |st, _| !st.holds(&Fact::Writer(address(TARGET))),
            allowed: &[ADMIN],
        },
        Case {
            name: "renounce writer",
            acl: |_| {
                vec![AclOp::RenounceWriter {
                    stream: main_stream(),
                }]
            },
            writes: vec![],
            effect: |st, who| !st.holds(&Fact::Writer(who)),
            allowed: EVERYONE,
        },
        Case {
            name: "grant special writer",
            acl: |_| {
                vec![AclOp::GrantSpecialWriter {
                    stream: main_stream(),
                    key: b"s".to_vec(),
                    account: address(NEWCOMER),
                }]
            },
            writes: vec![],
            effect: |st, _| st.holds(&Fact::SpecialWriter(address(NEWCOMER), b"s".to_vec())),
            allowed: &[ADMIN, SPECIAL],
        },
        Case {
            name: "revoke special writer",
            acl: |_| {
                vec![AclOp::RevokeSpecialWriter {
                    stream: main_stream(),
                    key: b"s".to_vec(),
                    account: address(TARGET),
                }]
            },
            writes: vec![],
            effect: |st, _| !st.holds(&Fact::SpecialWriter(address(TARGET), b"s".to_vec())),
            allowed: &[ADMIN],
        },
        Case {
            name: "renounce special writer",
            acl: |_| {
                vec![AclOp::RenounceSpecialWriter {
                    stream: main_stream(),
                    key: b"s".to_vec(),
                }]
            },
            writes: vec![],
            effect: |st, who| !st.holds(&Fact::SpecialWriter(who, b"s".to_vec())),
            allowed: EVERYONE,
        },
    ]
}

#[test]
fn every_role_gets_exactly_the_operations_the_rules_allow() {
    let mut failures = Vec::new();
    for case in cases() {
        for (role, who) in ROLES {
            let mut setup = Setup::new();
            let before = setup.facts();
            let outcome = setup.run(who, (case.acl)(address(who)), case.writes.clone());
            let expected = case.allowed.contains(&who);
            let ok = if expected {
                outcome.is_committed() && (case.effect)(&setup, address(who))
            } else {
                matches!(outcome, Outcome::PermissionDenied { .. }) && setup.facts() == before
            };
            if !ok {
                failures.push(format!(
                    "{} by {role}: expected allowed={expected}, got {outcome:?}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_denied_write_names_the_operation_stream_and_key() {
    let mut setup = Setup::new();
    let outcome = setup.run(STRANGER, vec![], put(b"n"));
    assert_eq!(
        outcome,
        Outcome::PermissionDenied {
            op: "write".into(),
            stream: main_stream(),
            key: Some(b"n".to_vec())
        }
    );
    assert_eq!(setup.value(b"n"), None);
}

#[test]
fn operations_in_one_transaction_do_not_enable_each_other() {
    let mut setup = Setup::new();
    // The stranger cannot grant itself writer and then use it in one go, and
    // an admin's grant in the same transaction does not count for its writes
    // either way: checks see the state before the transaction.
    let grant_self = vec![AclOp::GrantWriter {
        stream: main_stream(),
        account: address(STRANGER),
    }];
    assert!(matches!(
        setup.run(STRANGER, grant_self, put(b"n")),
        Outcome::PermissionDenied { .. }
    ));
    let renounce_then_write = vec![AclOp::RenounceAdmin {
        stream: main_stream(),
    }];
    assert!(
        setup
            .run(ADMIN, renounce_then_write, put(b"n"))
            .is_committed(),
        "checked before the renounce"
    );
    assert!(!setup.holds(&Fact::Admin(address(ADMIN))));
    assert!(
        matches!(
            setup.run(ADMIN, vec![], put(b"s")),
            Outcome::PermissionDenied { .. }
        ),
        "admin is gone now"
    );
}

#[test]
fn streams_cannot_be_squatted() {
    let mut setup = Setup::new();
    // Creating the same name again is refused for the creator...
    let again = vec![AclOp::CreateStream {
        name: b"main".to_vec(),
    }];
    assert_eq!(
        setup.run(ADMIN, again.clone(), vec![]),
        Outcome::StreamExists {
            stream: main_stream()
        }
    );
    // ...and for anyone else it names a different stream, owned by them.
    let before = setup.facts();
    assert!(setup.run(STRANGER, again, vec![]).is_committed());
    let theirs = stream_of(STRANGER, b"main");
    assert_ne!(theirs, main_stream());
    assert_eq!(setup.facts(), before, "the original stream is untouched");
    let version = setup.replayer.applied().version;
    assert!(
        fact_holds(
            setup.replayer.store(),
            &theirs,
            &Fact::Admin(address(STRANGER)),
            version
        )
        .unwrap()
    );
    // A stream nobody created cannot be used, not even by naming its id.
    let ghost = stream_of(STRANGER, b"never created");
    let grant = vec![AclOp::GrantAdmin {
        stream: ghost,
        account: address(STRANGER),
    }];
    assert_eq!(
        setup.run(STRANGER, grant, vec![]),
        Outcome::UnknownStream { stream: ghost }
    );
    let write = vec![Write {
        stream: ghost,
        key: b"k".to_vec(),
        value: None,
    }];
    assert_eq!(
        setup.run(STRANGER, vec![], write),
        Outcome::UnknownStream { stream: ghost }
    );
}

#[test]
fn forged_or_damaged_signatures_never_apply() {
    let mut setup = Setup::new();
    let before = (setup.facts(), setup.replayer.applied().version);
    let grant = vec![AclOp::GrantAdmin {
        stream: main_stream(),
        account: address(STRANGER),
    }];

    // Signed by the stranger, claiming to be the admin.
    let tx = setup.tx(grant.clone(), put(b"n"));
    let mut forged = signed_by(STRANGER, tx);
    forged.tx.sender = address(ADMIN);
    let mut batch = vec![forged];

    // Signed by the admin, then altered.
    let tx = setup.tx(grant.clone(), put(b"n"));
    let mut altered = signed_by(ADMIN, tx);
    altered.tx.writes[0].value = Some(b"changed".to_vec());
    batch.push(altered);

    // Signed by the admin, with bits of the signature flipped.
    for bit in (0..65 * 8).step_by(7) {
        let tx = setup.tx(grant.clone(), put(b"n"));
        let mut damaged = signed_by(ADMIN, tx);
        damaged.signature[bit / 8] ^= 1 << (bit % 8);
        batch.push(damaged);
    }
    let outcomes = apply(&mut setup.replayer, &batch);
    assert_eq!(outcomes.len(), batch.len());
    for (i, outcome) in outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Outcome::BadSignature { .. }),
            "transaction {i}: {outcome:?}"
        );
    }
    assert_eq!((setup.facts(), setup.replayer.applied().version), before);
    assert_eq!(setup.value(b"n"), None);
}

#[test]
fn a_writer_revoked_earlier_in_the_same_entry_may_not_write() {
    let mut setup = Setup::new();
    // A stream without special keys, where replay may remember writers.
    let fresh = setup.fresh_stream_with_writer();
    let write_x = |value: &[u8]| Write {
        stream: fresh,
        key: b"x".to_vec(),
        value: Some(value.to_vec()),
    };
    // The writer writes once, so replay has seen it allowed before.
    setup.commit(WRITER, vec![], vec![write_x(b"1")]);
    let revoke = setup.tx(
        vec![AclOp::RevokeWriter {
            stream: fresh,
            account: address(WRITER),
        }],
        vec![],
    );
    let write = setup.tx(vec![], vec![write_x(b"2")]);
    let outcomes = apply(
        &mut setup.replayer,
        &[signed_by(ADMIN, revoke), signed_by(WRITER, write)],
    );
    assert!(outcomes[0].is_committed(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Outcome::PermissionDenied { .. }),
        "{outcomes:?}"
    );
    // And in the entries after it.
    assert!(matches!(
        setup.run(WRITER, vec![], vec![write_x(b"3")]),
        Outcome::PermissionDenied { .. }
    ));
}

#[test]
fn a_key_made_special_later_is_protected_from_the_next_entry_on() {
    let mut setup = Setup::new();
    let fresh = setup.fresh_stream_with_writer();
    let write_x = || {
        vec![Write {
            stream: fresh,
            key: b"x".to_vec(),
            value: Some(b"1".to_vec()),
        }]
    };
    // The stream has no special keys yet: the writer may write "x".
    setup.commit(WRITER, vec![], write_x());
    setup.commit(
        ADMIN,
        vec![AclOp::SetKeySpecial {
            stream: fresh,
            key: b"x".to_vec(),
        }],
        vec![],
    );
    assert!(matches!(
        setup.run(WRITER, vec![], write_x()),
        Outcome::PermissionDenied { .. }
    ));
    setup.commit(
        ADMIN,
        vec![AclOp::SetKeyNormal {
            stream: fresh,
            key: b"x".to_vec(),
        }],
        vec![],
    );
    setup.commit(WRITER, vec![], write_x());
}
