//! Behaviour of the local sequencer beyond the conformance suite (see
//! `sequencer_conformance.rs`): read batches, locking, and what it does
//! with each kind of torn or damaged file.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::{LocalSequencer, LocalSequencerOptions, Sequencer, SequencerError, stress};
use std::io::Write;
use std::sync::Arc;

fn open(dir: &std::path::Path) -> LocalSequencer {
    LocalSequencer::open(dir, LocalSequencerOptions::default()).expect("opens")
}

fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("sequencer.log")
}

#[tokio::test]
async fn concurrent_appends_are_gap_free_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let sequencer = Arc::new(open(dir.path()));
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let sequencer = sequencer.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..20 {
                    seqs.push(
                        sequencer
                            .append(stress::descriptor(1, task, i))
                            .await
                            .unwrap()
                            .seq,
                    );
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..640).collect::<Vec<u64>>());
    sequencer.close();
    let reopened = open(dir.path());
    assert_eq!(reopened.tail(), 640);
    assert_eq!(
        reopened.read(0, 10_000).await.unwrap().len(),
        ordo_log::limits::MAX_READ_BATCH.min(640)
    );
}

#[tokio::test]
async fn a_second_handle_is_refused_and_closed_handles_refuse_appends() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let second = LocalSequencer::open(dir.path(), LocalSequencerOptions::default());
    assert!(
        matches!(second, Err(SequencerError::Locked(_))),
        "{second:?}"
    );
    first.close();
    let error = first.append(stress::descriptor(3, 0, 0)).await.unwrap_err();
    assert_eq!(error, SequencerError::Closed);
    let _reopened = open(dir.path());
}

async fn log_with(dir: &std::path::Path, entries: u64) {
    let sequencer = open(dir);
    for i in 0..entries {
        sequencer.append(stress::descriptor(5, 0, i)).await.unwrap();
    }
    sequencer.close();
}

#[tokio::test]
async fn a_torn_tail_is_dropped_on_open() {
    for garbage in [
        vec![0x4f],
        vec![0u8; 100],
        b"OSQ1\xff\xff\x00\x00partial".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        log_with(dir.path(), 5).await;
        let clean_len = std::fs::metadata(log_file(dir.path())).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(log_file(dir.path()))
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        let sequencer = open(dir.path());
        assert_eq!(sequencer.tail(), 5);
        assert_eq!(
            std::fs::metadata(log_file(dir.path())).unwrap().len(),
            clean_len,
            "the torn tail is cut off"
        );
        assert_eq!(
            sequencer
                .append(stress::descriptor(5, 1, 0))
                .await
                .unwrap()
                .seq,
            5,
            "appends continue after it"
        );
    }
}

#[tokio::test]
async fn a_truncated_last_frame_is_dropped_but_earlier_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3).await;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(log_file(dir.path()))
        .unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - 7).unwrap();
    let sequencer = open(dir.path());
    assert_eq!(sequencer.tail(), 2, "only the torn third frame is lost");
}

#[tokio::test]
async fn damage_before_the_tail_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 6).await;
    let mut bytes = std::fs::read(log_file(dir.path())).unwrap();
    bytes[40] ^= 0x01; // inside the first frame's body
    std::fs::write(log_file(dir.path()), &bytes).unwrap();
    let result = LocalSequencer::open(dir.path(), LocalSequencerOptions::default());
    assert!(
        matches!(result, Err(SequencerError::Corrupt { offset: 0, .. })),
        "{result:?}"
    );
}
