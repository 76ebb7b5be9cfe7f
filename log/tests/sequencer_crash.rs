//! Crash safety of the local sequencer with real processes and SIGKILL.
//!
//! A child process appends from several tasks and prints every acknowledged
//! seq. The test kills it at random moments, many times over, reopening the
//! log in between; afterwards every acknowledged seq must hold exactly the
//! header that was acknowledged, and seqs must run from 0 without gaps.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::{LocalSequencer, LocalSequencerOptions, Sequencer, stress};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const CYCLES: u64 = 24;
const TASKS: u64 = 8;

/// (cycle, task, i) of every acknowledged append, by seq.
type Acks = BTreeMap<u64, (u64, u64, u64)>;

/// Runs one child until it has acknowledged `kill_after` appends, kills it,
/// and returns every ack it printed (including those printed before the kill
/// landed).
fn run_and_kill(dir: &std::path::Path, cycle: u64, kill_after: usize) -> Acks {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordo-log-stress"))
        .arg(dir)
        .args([TASKS.to_string(), cycle.to_string()])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    let seed: u64 = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = Acks::new();
    for cycle in 0..CYCLES {
        let kill_after = rng.random_range(0..300);
        let acks = run_and_kill(dir.path(), cycle, kill_after);
        for (seq, who) in acks {
            assert!(
                all.insert(seq, who).is_none(),
                "seq {seq} given out again in cycle {cycle}"
            );
        }
        check_log(dir.path(), &all).await;
    }
    assert!(
        all.len() as u64 > CYCLES * 50,
        "too few appends ({}) to mean anything",
        all.len()
    );
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
