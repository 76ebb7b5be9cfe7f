//! The bank test: concurrent transfers between a few accounts, with many
//! conflicts. Money is neither made nor lost at any snapshot version, and
//! every committed transfer is exactly the change its version made.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ordo_kv::StreamId;
use ordo_txn::testkit::XorShift;
use ordo_txn::{AclOp, Outcome, Read, Transaction, Write};
use std::sync::{Arc, Barrier};

const ACCOUNTS: usize = 5;
const OPENING_BALANCE: u64 = 1_000;
const CLIENTS: usize = 4;
const TRANSFERS_PER_CLIENT: usize = 60;
const OWNER: usize = 0;

fn bank() -> StreamId {
    stream_of(OWNER, b"bank")
}

fn account_key(i: usize) -> Vec<u8> {
    format!("acct-{i}").into_bytes()
}

fn balance(bytes: Option<Vec<u8>>) -> u64 {
    u64::from_be_bytes(bytes.unwrap().try_into().unwrap())
}

/// A committed transfer, as the client saw it.
#[derive(Debug, Clone)]
struct Transfer {
    version: u64,
    from: usize,
    to: usize,
    amount: u64,
}

/// Opens the bank: the owner creates the stream, makes each client (accounts
/// 1..=CLIENTS) a writer, and funds the accounts. Returns the version at
/// which the accounts were funded.
fn open_bank(node: &Node) -> u64 {
    let create = Transaction {
        acl: vec![AclOp::CreateStream {
            name: b"bank".to_vec(),
        }],
        ..blank(txn_id(1), 0)
    };
    assert!(node.submit(signed_by(OWNER, create)).is_committed());
    let grants = (1..=CLIENTS)
        .map(|c| AclOp::GrantWriter {
            stream: bank(),
            account: address(c),
        })
        .collect();
    let writes = (0..ACCOUNTS)
        .map(|i| Write {
            stream: bank(),
            key: account_key(i),
            value: Some(OPENING_BALANCE.to_be_bytes().to_vec()),
        })
        .collect();
    let fund = Transaction {
        acl: grants,
        writes,
        ..blank(txn_id(2), node.snapshot())
    };
    match node.submit(signed_by(OWNER, fund)) {
        Outcome::Committed { version } => version,
        other => panic!("funding failed: {other:?}"),
    }
}

/// One transfer attempt at the current snapshot.
/// With `after_read`, waits there between reading and submitting.
fn attempt(
    node: &Node,
    client: usize,
    id: u64,
    (from, to): (usize, usize),
    amount: u64,
    after_read: Option<&Barrier>,
) -> (Outcome, u64) {
    let at = node.snapshot();
    let (a, b) = (
        balance(node.read(&bank(), &account_key(from), at)),
        balance(node.read(&bank(), &account_key(to), at)),
    );
    if let Some(barrier) = after_read {
        barrier.wait();
    }
    let amount = amount.min(a);
    let tx = Transaction {
        reads: vec![
            Read::Key {
                stream: bank(),
                key: account_key(from),
            },
            Read::Key {
                stream: bank(),
                key: account_key(to),
            },
        ],
        writes: vec![
            Write {
                stream: bank(),
                key: account_key(from),
                value: Some((a - amount).to_be_bytes().to_vec()),
            },
            Write {
                stream: bank(),
                key: account_key(to),
                value: Some((b + amount).to_be_bytes().to_vec()),
            },
        ],
        ..blank(txn_id(id), at)
    };
    (node.submit(signed_by(client, tx)), amount)
}

/// A client: a first transfer out of account 0 taken by every client at the
/// same snapshot (so all but one must conflict), then pseudo-random
/// transfers, each retried until it commits.
fn client(node: &Node, client: usize, start: &Barrier) -> (Vec<Transfer>, usize) {
    let mut committed = Vec::new();
    let mut conflicts = 0;
    let mut id = (client as u64) << 32;
    let mut xorshift = XorShift::new((client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for round in 0..TRANSFERS_PER_CLIENT {
        let rng = xorshift.next_u64();
        let from = if round == 0 {
            0
        } else {
            (rng % ACCOUNTS as u64) as usize
        };
        let to = (from + 1 + (rng >> 8) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + (rng >> 16) % 50;
        let mut after_read = (round == 0).then_some(start);
        loop {
            id += 1;
            match attempt(node, client, id, (from, to), amount, after_read.take()) {
                (Outcome::Committed { version }, amount) => {
                    committed.push(Transfer {
                        version,
                        from,
                        to,
                        amount,
                    });
                    break;
                }
                (Outcome::Conflict { .. }, _) => conflicts += 1,
                (other, _) => panic!("client {client}: unexpected {other:?}"),
            }
        }
    }
    (committed, conflicts)
}

fn balances_at(node: &Node, version: u64) -> Vec<u64> {
    let page = node
        .store()
        .scan(&bank(), b"", None, version, 100, 1 << 20)
        .unwrap();
    assert_eq!(
        page.rows.len(),
        ACCOUNTS,
        "every account exists at version {version}"
    );
    page.rows
        .into_iter()
        .map(|row| balance(Some(row.value)))
        .collect()
}

#[test]
fn concurrent_transfers_conserve_money_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path()));
    let funded = open_bank(&node);
    // No client submits its first transfer before all have read theirs, so
    // they all read account 0 at the same version and all but one conflict.
    let start = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (1..=CLIENTS)
        .map(|c| {
            let (node, start) = (node.clone(), start.clone());
            std::thread::spawn(move || client(&node, c, &start))
        })
        .collect();
    let mut transfers = Vec::new();
    let mut conflicts = 0;
    for handle in handles {
        let (mine, theirs) = handle.join().unwrap();
        transfers.extend(mine);
        conflicts += theirs;
    }
    assert_eq!(transfers.len(), CLIENTS * TRANSFERS_PER_CLIENT);
    assert!(conflicts > 0, "the clients contended and some lost");
    transfers.sort_by_key(|t| t.version);
    let last = node.snapshot();
    assert_eq!(
        last,
        funded + transfers.len() as u64,
        "each version after funding is one transfer"
    );

    let total = OPENING_BALANCE * ACCOUNTS as u64;
    let mut previous = balances_at(&node, funded);
    assert_eq!(previous.iter().sum::<u64>(), total);
    for (transfer, version) in transfers.iter().zip(funded + 1..) {
        assert_eq!(transfer.version, version, "versions are gap-free");
        let now = balances_at(&node, version);
        assert_eq!(
            now.iter().sum::<u64>(),
            total,
            "money is conserved at version {version}"
        );
        let mut expected = previous.clone();
        expected[transfer.from] -= transfer.amount;
        expected[transfer.to] += transfer.amount;
        assert_eq!(now, expected, "version {version} is exactly {transfer:?}");
        previous = now;
    }
}
