//! Replicas replaying the same log agree, and a replica killed with SIGKILL
//! mid-log resumes exactly where its state says, applying nothing twice and
//! skipping nothing.
//!
//! The test writes a log of signed transaction batches (with conflicts,
//! stale reads, duplicates and a garbage entry) through the log crate, and
//! replays it in-process into a memory store as the reference replica,
//! recording the applied position after every entry. Then it runs the real
//! `ordo replay` against the log again and again, killing it with SIGKILL
//! after a random number of entries, and checks every position it prints
//! against the reference. Finally a clean run must end on the reference's
//! digest, and so must a second, independent replica.
#![allow(clippy::unwrap_used)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ordo_kv::MemEngine;
use ordo_log::{
    CodingParams, EntryWriter, LocalSequencer, LocalSequencerOptions, RocksLog, RocksLogOptions,
    RocksShardStore,
};
use ordo_txn::testkit::{
    XorShift as Rng, blank, create_stream, signed, signing_key as key, txn_id,
};
use ordo_txn::{AclOp, Applied, Read, Replayer, Transaction, Write};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

const ENTRIES: u64 = 200;
const TXS_PER_ENTRY: u64 = 10;
const KILL_CYCLES: usize = 20;
const WRITERS: u8 = 4;

/// The payload of entry `seq`, built against the reference replica's state
/// so that read versions are realistic (current, lagging or too new).
fn entry_payload(seq: u64, reference: &Replayer<MemEngine>, rng: &mut Rng) -> Vec<u8> {
    let owner = key(1);
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"replay");
    if seq == 0 {
        let create = create_stream([0; 16], 0, b"replay");
        let grants = (2..2 + WRITERS)
            .map(|w| AclOp::GrantWriter {
                stream,
                account: ordo_txn::address_of(&key(w)),
            })
            .collect();
        let grant = Transaction {
            id: [1; 16],
            acl: grants,
            ..create.clone()
        };
        return ordo_txn::encode_batch(&[signed(create, &owner), signed(grant, &owner)]);
    }
    if seq == ENTRIES / 2 {
        return b"not a batch".to_vec();
    }
    let applied = reference.applied().version;
    let txs: Vec<_> = (0..TXS_PER_ENTRY)
        .map(|i| {
            let writer = 2 + (rng.next_u64() % u64::from(WRITERS)) as u8;
            // Now and then reuse an earlier id: a duplicate.
            let n = if rng.next_u64().is_multiple_of(20) {
                seq.saturating_sub(3) * TXS_PER_ENTRY + i
            } else {
                seq * TXS_PER_ENTRY + i
            };
            let k = |r: u64| format!("k{:02}", r % 24).into_bytes();
            let read_version = match rng.next_u64() % 10 {
                0 => applied + 1,
                1..=4 => applied.saturating_sub(rng.next_u64() % 4),
                _ => applied,
            };
            let mut reads = vec![Read::Key {
                stream,
                key: k(rng.next_u64()),
            }];
            if rng.next_u64().is_multiple_of(4) {
                let start = k(rng.next_u64());
                reads.push(Read::Range {
                    stream,
                    start,
                    end: Some(b"k99".to_vec()),
                });
            }
            let writes = (0..2)
                .map(|_| Write {
                    stream,
                    key: k(rng.next_u64()),
                    value: (!rng.next_u64().is_multiple_of(5))
                        .then(|| rng.next_u64().to_be_bytes().to_vec()),
                })
                .collect();
            let tx = Transaction {
                reads,
                writes,
                ..blank(txn_id(n), read_version)
            };
            signed(tx, &key(writer))
        })
        .collect();
    ordo_txn::encode_batch(&txs)
}

/// How a data directory keeps its log.
#[derive(Clone, Copy)]
enum Layout {
    /// Shards and headers in one RocksDB (what nodes make today).
    Joint,
    /// A header file and a shard store (data directories made before).
    TwoFiles,
}

/// A writer over a new log in `data`, and what closes it.
fn open_writer(data: &Path, layout: Layout) -> (EntryWriter, Box<dyn FnOnce()>) {
    let coding = CodingParams::default();
    match layout {
        Layout::Joint => {
            let log =
                Arc::new(RocksLog::open(data.join("log-db"), RocksLogOptions::default()).unwrap());
            let writer = EntryWriter::joint(log.clone(), coding).unwrap();
            (writer, Box::new(move || log.close()))
        }
        Layout::TwoFiles => {
            let sequencer = Arc::new(
                LocalSequencer::open(data.join("log"), LocalSequencerOptions::default()).unwrap(),
            );
            let shards = Arc::new(RocksShardStore::open(data.join("shards")).unwrap());
            let writer = EntryWriter::new(shards, sequencer.clone(), coding).unwrap();
            (writer, Box::new(move || sequencer.close()))
        }
    }
}

/// Writes the log into `data` and returns the reference position after each entry.
fn build_log(data: &Path, layout: Layout) -> Vec<Applied> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (writer, close) = open_writer(data, layout);
        let mut reference = Replayer::open(MemEngine::new()).unwrap();
        let mut rng = Rng::new(0x0005_EED0_F0D0);
        let mut positions = Vec::new();
        for seq in 0..ENTRIES {
            let payload = entry_payload(seq, &reference, &mut rng);
            let header = writer
                .append(payload.clone(), vec![], [0; 20])
                .await
                .unwrap();
            assert_eq!(header.seq, seq);
            reference
                .apply_entry(seq, ordo_txn::check_entry(&payload))
                .unwrap();
            positions.push(reference.applied());
        }
        drop(writer);
        close();
        positions
    })
}

fn spawn_replay(data: &Path, state: &Path) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["replay", "--progress", "--log-level", "warn", "--data-dir"])
        .arg(data)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Parses `word k=v k=v ...` into the word and a lookup.
fn parse(line: &str) -> (String, std::collections::HashMap<String, String>) {
    let mut parts = line.split_whitespace();
    let word = parts.next().unwrap_or_default().to_string();
    let fields = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (word, fields)
}

fn expect_position(
    fields: &std::collections::HashMap<String, String>,
    seq: u64,
    reference: &[Applied],
) {
    let want = reference[seq as usize];
    assert_eq!(
        fields["version"].parse::<u64>().unwrap(),
        want.version,
        "version after entry {seq}"
    );
    assert_eq!(
        fields["digest"],
        ordo_log::hex(&want.digest),
        "digest after entry {seq}"
    );
}

#[test]
fn replicas_agree_and_a_killed_replica_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let reference = build_log(&data, Layout::Joint);
    let version = reference[ENTRIES as usize - 1].version;
    assert!(
        version > ENTRIES && version < ENTRIES * TXS_PER_ENTRY,
        "the log commits some and aborts some: {version}"
    );
    let replica = dir.path().join("replica");
    let mut rng = Rng::new(0xC0FF_EE11);
    // The first entry the last run printed as applied, if any.
    let mut last_printed: Option<u64> = None;
    for cycle in 0..KILL_CYCLES {
        let (mut child, mut stdout) = spawn_replay(&data, &replica);
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let (word, fields) = parse(&line);
        assert_eq!(word, "resume", "cycle {cycle}: {line}");
        let resume: u64 = fields["next_seq"].parse().unwrap();
        let floor = last_printed.map_or(0, |s| s + 1);
        assert!(
            resume >= floor,
            "cycle {cycle}: resumed at {resume}, but {floor} entries were applied"
        );
        if resume > 0 {
            let version: u64 = fields["version"].parse().unwrap();
            assert_eq!(
                version,
                reference[resume as usize - 1].version,
                "cycle {cycle}: resumed version"
            );
        }
        let stop_after = 1 + rng.next_u64() % 8;
        for expected in resume..resume + stop_after {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            let (word, fields) = parse(&line);
            assert_eq!(
                word, "applied",
                "cycle {cycle}: the kill must land mid-log: {line}"
            );
            let seq: u64 = fields["seq"].parse().unwrap();
            assert_eq!(
                seq, expected,
                "cycle {cycle}: entries apply in order, none skipped"
            );
            expect_position(&fields, seq, &reference);
            last_printed = Some(seq);
        }
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
    }
    assert!(
        last_printed.unwrap() < ENTRIES - 1,
        "the kills all landed before the end of the log"
    );

    // A clean run finishes the log and ends on the reference digest.
    let last = reference[ENTRIES as usize - 1];
    let finish = |state: &Path| {
        let (mut child, stdout) = spawn_replay(&data, state);
        let lines: Vec<String> = stdout.lines().map(Result::unwrap).collect();
        assert!(child.wait().unwrap().success());
        let (word, fields) = parse(lines.last().unwrap());
        assert_eq!(word, "done");
        assert_eq!(fields["next_seq"].parse::<u64>().unwrap(), ENTRIES);
        expect_position(&fields, ENTRIES - 1, &reference);
        lines
    };
    let lines = finish(&replica);
    let (_, resumed) = parse(&lines[0]);
    assert!(resumed["next_seq"].parse::<u64>().unwrap() > last_printed.unwrap());
    // An independent replica built in one go agrees too.
    let lines = finish(&dir.path().join("second"));
    assert_eq!(
        lines.len(),
        ENTRIES as usize + 2,
        "resume, one line per entry, done"
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "done next_seq={ENTRIES} version={} digest={}",
            last.version,
            ordo_log::hex(&last.digest)
        )
    );
}

#[test]
fn a_data_directory_in_the_two_file_layout_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let reference = build_log(&data, Layout::TwoFiles);
    let (mut child, stdout) = spawn_replay(&data, &dir.path().join("replica"));
    let lines: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    let (word, fields) = parse(lines.last().unwrap());
    assert_eq!(word, "done", "{lines:?}");
    assert_eq!(fields["next_seq"].parse::<u64>().unwrap(), ENTRIES);
    expect_position(&fields, ENTRIES - 1, &reference);
    assert!(
        !data.join("log-db").exists(),
        "an old directory is read where it is, not converted"
    );
}
