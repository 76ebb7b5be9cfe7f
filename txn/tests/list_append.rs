//! A list-append check in the style of Elle. Concurrent clients run
//! transactions that append unique elements to lists and read lists. From
//! what they observed and the final lists, the test infers the
//! write-write, write-read and read-write (anti-) dependencies between
//! committed transactions, and checks that:
//!
//! - no read saw an element of an aborted transaction (G1a) or a state in
//!   the middle of another transaction's appends (G1b);
//! - every read is a prefix of the final list, and every committed append is
//!   in it exactly once (no lost or duplicated appends);
//! - the dependency graph has no cycle: none of write-write edges (G0),
//!   none of write-write and write-read edges (G1c), none at all (G2);
//! - every edge points forward in log (commit version) order, so that order
//!   is a serial order explaining every observation.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ordo_kv::StreamId;
use ordo_txn::testkit::XorShift;
use ordo_txn::{AclOp, Outcome, Read, Transaction, Write};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

const KEYS: usize = 4;
const CLIENTS: usize = 4;
const TXNS_PER_CLIENT: usize = 80;
const OWNER: usize = 0;

fn lists() -> StreamId {
    stream_of(OWNER, b"lists")
}

fn key(i: usize) -> Vec<u8> {
    format!("list-{i}").into_bytes()
}

fn decode(bytes: Option<Vec<u8>>) -> Vec<u32> {
    bytes
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn encode(list: &[u32]) -> Vec<u8> {
    list.iter().flat_map(|e| e.to_be_bytes()).collect()
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Append(usize, u32),
    Read(usize),
}

/// A finished transaction: what it did and saw, and how it ended.
#[derive(Debug, Clone)]
struct Record {
    appends: Vec<(usize, u32)>,
    reads: Vec<(usize, Vec<u32>)>,
    version: Option<u64>,
}

/// Runs `ops` as one transaction at the current snapshot: reads see the
/// snapshot plus the transaction's own earlier appends; every key touched is
/// in the read set, since an append reads the list it extends.
fn run(node: &Node, client: usize, id: u64, ops: &[Op]) -> Record {
    let at = node.snapshot();
    let mut local: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut record = Record {
        appends: vec![],
        reads: vec![],
        version: None,
    };
    for op in ops {
        let k = match *op {
            Op::Append(k, _) | Op::Read(k) => k,
        };
        let list = local
            .entry(k)
            .or_insert_with(|| decode(node.read(&lists(), &key(k), at)));
        match *op {
            Op::Append(k, e) => {
                list.push(e);
                record.appends.push((k, e));
            }
            Op::Read(k) => record.reads.push((k, list.clone())),
        }
    }
    let appended: HashSet<usize> = record.appends.iter().map(|(k, _)| *k).collect();
    let tx = Transaction {
        reads: local
            .keys()
            .map(|&k| Read::Key {
                stream: lists(),
                key: key(k),
            })
            .collect(),
        writes: local
            .iter()
            .filter(|(k, _)| appended.contains(k))
            .map(|(&k, list)| Write {
                stream: lists(),
                key: key(k),
                value: Some(encode(list)),
            })
            .collect(),
        ..blank(txn_id(id), at)
    };
    record.version = match node.submit(signed_by(client, tx)) {
        Outcome::Committed { version } => Some(version),
        Outcome::Conflict { .. } => None,
        other => panic!("unexpected outcome {other:?}"),
    };
    record
}

/// A client's workload: 1 to 4 operations per transaction, about half
/// appends, elements unique across clients.
fn client(node: &Node, client: usize) -> Vec<Record> {
    let mut rng = XorShift::new((client as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut next = || rng.next_u64();
    let mut element = (client as u32) << 20;
    (0..TXNS_PER_CLIENT)
        .map(|n| {
            let ops: Vec<Op> = (0..1 + next() % 4)
                .map(|_| {
                    let k = (next() % KEYS as u64) as usize;
                    if next() % 2 == 0 {
                        element += 1;
                        Op::Append(k, element)
                    } else {
                        Op::Read(k)
                    }
                })
                .collect();
            run(node, client, ((client as u64) << 32) + n as u64, &ops)
        })
        .collect()
}

fn set_up(node: &Node) {
    let create = Transaction {
        acl: vec![AclOp::CreateStream {
            name: b"lists".to_vec(),
        }],
        ..blank(txn_id(1), 0)
    };
    assert!(node.submit(signed_by(OWNER, create)).is_committed());
    let grants = (1..=CLIENTS)
        .map(|c| AclOp::GrantWriter {
            stream: lists(),
            account: address(c),
        })
        .collect();
    let grant = Transaction {
        acl: grants,
        ..blank(txn_id(2), node.snapshot())
    };
    assert!(node.submit(signed_by(OWNER, grant)).is_committed());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Edge {
    WriteWrite,
    WriteRead,
    ReadWrite,
}

/// Finds a cycle among `nodes` using only edges of the given kinds.
fn find_cycle(
    edges: &HashMap<usize, Vec<(usize, Edge)>>,
    kinds: &[Edge],
    nodes: usize,
) -> Option<Vec<usize>> {
    // Iterative three-colour depth-first search.
    let mut colour = vec![0u8; nodes];
    for root in 0..nodes {
        if colour[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        colour[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let out = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            match out
                .iter()
                .skip(*next)
                .position(|(_, kind)| kinds.contains(kind))
            {
                None => {
                    colour[node] = 2;
                    stack.pop();
                }
                Some(offset) => {
                    *next += offset + 1;
                    let target = out[*next - 1].0;
                    match colour[target] {
                        0 => {
                            colour[target] = 1;
                            stack.push((target, 0));
                        }
                        1 => {
                            let start = stack.iter().position(|(n, _)| *n == target).unwrap();
                            return Some(stack[start..].iter().map(|(n, _)| *n).collect());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

#[test]
fn concurrent_list_appends_are_serializable_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path()));
    set_up(&node);
    let all = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (1..=CLIENTS)
        .map(|c| {
            let (node, all) = (node.clone(), all.clone());
            std::thread::spawn(move || {
                let records = client(&node, c);
                all.lock().unwrap().extend(records);
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let records = std::mem::take(&mut *all.lock().unwrap());
    let last = node.snapshot();
    let finals: Vec<Vec<u32>> = (0..KEYS)
        .map(|k| decode(node.read(&lists(), &key(k), last)))
        .collect();

    let committed: Vec<&Record> = records.iter().filter(|r| r.version.is_some()).collect();
    let aborted = records.len() - committed.len();
    assert!(
        aborted > 0,
        "the workload must contend for the test to mean anything"
    );
    let writer_of: HashMap<u32, usize> = committed
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.appends.iter().map(move |(_, e)| (*e, i)))
        .collect();
    let aborted_elements: HashSet<u32> = records
        .iter()
        .filter(|r| r.version.is_none())
        .flat_map(|r| r.appends.iter().map(|(_, e)| *e))
        .collect();

    // Final lists: every committed append exactly once, nothing aborted.
    for (k, list) in finals.iter().enumerate() {
        let unique: HashSet<u32> = list.iter().copied().collect();
        assert_eq!(unique.len(), list.len(), "list {k} holds a duplicate");
        assert!(
            list.iter().all(|e| writer_of.contains_key(e)),
            "list {k} holds an aborted element (G1a)"
        );
    }
    let appended = committed.iter().map(|r| r.appends.len()).sum::<usize>();
    assert_eq!(
        finals.iter().map(Vec::len).sum::<usize>(),
        appended,
        "a committed append was lost"
    );

    let mut edges: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
    let mut add = |from: usize, to: usize, kind: Edge| {
        if from != to {
            edges.entry(from).or_default().push((to, kind));
        }
    };
    for list in &finals {
        for pair in list.windows(2) {
            add(writer_of[&pair[0]], writer_of[&pair[1]], Edge::WriteWrite);
        }
    }
    for (reader, record) in committed.iter().enumerate() {
        for (k, seen) in &record.reads {
            let list = &finals[*k];
            assert!(
                seen.iter().all(|e| !aborted_elements.contains(e)),
                "aborted read (G1a): {seen:?}"
            );
            assert!(
                list.starts_with(seen),
                "read {seen:?} of list {k} is not a prefix of {list:?}"
            );
            if let Some(last) = seen.last() {
                let writer = writer_of[last];
                let next = list.get(seen.len()).map(|e| writer_of[e]);
                assert!(
                    writer == reader || next != Some(writer),
                    "intermediate read (G1b) of list {k}: {seen:?}"
                );
                add(writer, reader, Edge::WriteRead);
            }
            if let Some(next) = list.get(seen.len()) {
                add(reader, writer_of[next], Edge::ReadWrite);
            }
        }
    }

    use Edge::*;
    for (name, kinds) in [
        ("G0", &[WriteWrite][..]),
        ("G1c", &[WriteWrite, WriteRead]),
        ("G2", &[WriteWrite, WriteRead, ReadWrite]),
    ] {
        let cycle = find_cycle(&edges, kinds, committed.len());
        assert!(cycle.is_none(), "{name} cycle among transactions {cycle:?}");
    }
    let version = |i: usize| committed[i].version.unwrap();
    let edge_count: usize = edges.values().map(Vec::len).sum();
    assert!(
        edge_count > committed.len(),
        "the history must be dense enough to check"
    );
    for (from, outs) in &edges {
        for (to, kind) in outs {
            assert!(
                version(*from) < version(*to),
                "{kind:?} edge goes back in log order: {from} -> {to}"
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut edges = HashMap::new();
    edges.insert(0, vec![(1, Edge::WriteWrite)]);
    edges.insert(1, vec![(2, Edge::WriteRead)]);
    edges.insert(2, vec![(0, Edge::ReadWrite), (3, Edge::WriteWrite)]);
    assert_eq!(find_cycle(&edges, &[Edge::WriteWrite], 4), None);
    assert_eq!(
        find_cycle(&edges, &[Edge::WriteWrite, Edge::WriteRead], 4),
        None
    );
    let cycle = find_cycle(
        &edges,
        &[Edge::WriteWrite, Edge::WriteRead, Edge::ReadWrite],
        4,
    )
    .unwrap();
    assert_eq!(cycle.len(), 3);
}
