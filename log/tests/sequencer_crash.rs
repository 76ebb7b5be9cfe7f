//! Crash safety of the durable logs with real processes and SIGKILL: the
//! local sequencer, and the joint log on RocksDB with its journal.
//!
//! A child process appends from several tasks and prints every acknowledged
//! seq. The test kills it at random moments, many times over, reopening the
//! log in between; afterwards every acknowledged seq must hold exactly the
//! header (or the whole entry) that was acknowledged, and seqs must run from
//! 0 without gaps.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::limits::MIN_JOURNAL_SEGMENT_BYTES;
use ordo_log::{
    EntryReader, LocalSequencer, LocalSequencerOptions, RocksLog, RocksLogOptions, Sequencer,
    stress,
};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

const CYCLES: u64 = 24;
const TASKS: u64 = 8;

/// (cycle, task, i) of every acknowledged append, by seq.
type Acks = BTreeMap<u64, (u64, u64, u64)>;

/// Runs one child until it has acknowledged `kill_after` appends, kills it,
/// and returns every ack it printed (including those printed before the kill
/// landed).
fn run_and_kill(dir: &std::path::Path, mode: &[&str], cycle: u64, kill_after: usize) -> Acks {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordo-log-stress"))
        .arg(dir)
        .args([TASKS.to_string(), cycle.to_string()])
        .args(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("stress tool starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let ready = lines.next().expect("a first line").expect("readable");
    assert!(
        ready.starts_with("ready "),
        "unexpected first line {ready:?}"
    );
    let mut acks = Acks::new();
    let mut killed = false;
    for line in lines {
        let Ok(line) = line else { break };
        // The last line may be cut short by the kill; only whole acks count.
        let fields: Vec<u64> = line
            .strip_prefix("ack ")
            .unwrap_or("")
            .split(' ')
            .filter_map(|f| f.parse().ok())
            .collect();
        if let [seq, c, task, i] = fields[..] {
            assert!(
                acks.insert(seq, (c, task, i)).is_none(),
                "seq {seq} acknowledged twice"
            );
        }
        if !killed && acks.len() >= kill_after {
            child.kill().expect("SIGKILL delivered");
            killed = true;
        }
    }
    if !killed {
        child.kill().expect("SIGKILL delivered");
    }
    child.wait().expect("child reaped");
    acks
}

/// Kills the stress tool in `mode` CYCLES times, checking the log with
/// `check` after each kill against every ack so far.
async fn crash_cycles<F, Fut>(mode: &[&str], check: F)
where
    F: Fn(std::path::PathBuf, Acks) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let seed: u64 = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = Acks::new();
    for cycle in 0..CYCLES {
        let kill_after = rng.random_range(0..300);
        let acks = run_and_kill(dir.path(), mode, cycle, kill_after);
        for (seq, who) in acks {
            assert!(
                all.insert(seq, who).is_none(),
                "seq {seq} given out again in cycle {cycle}"
            );
        }
        check(dir.path().to_path_buf(), all.clone()).await;
    }
    assert!(
        all.len() as u64 > CYCLES * 50,
        "too few appends ({}) to mean anything",
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    crash_cycles(&[], |dir, acks| async move { check_log(&dir, &acks).await }).await;
}

/// The joint log's journal rotates every few dozen entries here, so kills
/// land before, during and after retirements (flush, then removal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_joint_entries_survive_sigkill_whole() {
    crash_cycles(&["joint"], |dir, acks| async move {
        check_joint_log(&dir, &acks).await
    })
    .await;
}

/// The shard store of a storage member, journaled with the smallest
/// segments, beside a local sequencer: kills land before, during and after
/// the store's retirements too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_on_a_journaled_shard_store_survive_sigkill_whole() {
    crash_cycles(&["split"], |dir, acks| async move {
        let shards =
            ordo_log::RocksShardStore::open_with(dir.join("shards"), MIN_JOURNAL_SEGMENT_BYTES)
                .expect("the shard store reopens after SIGKILL");
        let options = LocalSequencerOptions::default();
        let headers = LocalSequencer::open(dir.join("headers"), options).expect("reopens");
        let tail = headers.tail();
        let reader = EntryReader::new(Arc::new(shards), Arc::new(headers));
        check_entries(&reader, tail, &acks).await;
    })
    .await;
}

/// Opens the joint log and reads back every entry below its tail.
async fn check_joint_log(dir: &std::path::Path, acks: &Acks) {
    let options = RocksLogOptions {
        journal_segment_bytes: MIN_JOURNAL_SEGMENT_BYTES,
        ..RocksLogOptions::default()
    };
    let log = Arc::new(RocksLog::open(dir, options).expect("reopens after SIGKILL"));
    let reader = EntryReader::new(log.clone(), log.clone());
    check_entries(&reader, log.tail(), acks).await;
    drop(reader);
    log.close();
}

/// Reads back every entry below the tail: each acknowledged one must
/// rebuild, every shard good, to the payload that was acknowledged.
async fn check_entries(reader: &EntryReader, tail: u64, acks: &Acks) {
    if let Some((&last, _)) = acks.last_key_value() {
        assert!(tail > last, "acknowledged seq {last} lost: tail is {tail}");
    }
    for seq in 0..tail {
        let (header, read) = reader
            .read(seq)
            .await
            .expect("every entry below the tail reads back");
        assert_eq!(header.seq, seq);
        assert!(
            read.missing.is_empty() && read.rejected.is_empty(),
            "seq {seq}: every shard there and good"
        );
        if let Some(&(cycle, task, i)) = acks.get(&seq) {
            assert_eq!(
                read.payload,
                stress::payload(cycle, task, i),
                "seq {seq} holds another payload"
            );
        }
    }
}

/// Opens the log and checks it against every ack so far.
async fn check_log(dir: &std::path::Path, acks: &Acks) {
    let sequencer =
        LocalSequencer::open(dir, LocalSequencerOptions::default()).expect("reopens after SIGKILL");
    let tail = sequencer.tail();
    if let Some((&last, _)) = acks.last_key_value() {
        assert!(tail > last, "acknowledged seq {last} lost: tail is {tail}");
    }
    let mut seq = 0;
    while seq < tail {
        let headers = sequencer.read(seq, 1000).await.expect("reads");
        assert!(
            !headers.is_empty(),
            "read at {seq} below tail {tail} returned nothing"
        );
        for header in headers {
            assert_eq!(header.seq, seq, "gap or reorder in the log");
            if let Some(&(cycle, task, i)) = acks.get(&seq) {
                assert_eq!(
                    header.entry,
                    stress::descriptor(cycle, task, i),
                    "seq {seq} holds another header"
                );
            }
            seq += 1;
        }
    }
    sequencer.close();
}
