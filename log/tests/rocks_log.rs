//! The joint log on RocksDB: it passes the shard store suite and the
//! sequencer suite, and an entry's shards and header are durable together
//! or not at all.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::conformance::{SequencerHarness, sequencer, shard_store};
use ordo_log::limits::MIN_JOURNAL_SEGMENT_BYTES;
use ordo_log::{
    CodingParams, EntryReader, EntryWriter, JointLog, RocksLog, RocksLogOptions, Sequencer,
    SequencerError, ShardStore, WriteFault,
};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A database directory, the log open over it, and its fault switch.
struct RocksHarness {
    dir: tempfile::TempDir,
    fault: Arc<WriteFault>,
    open: Option<Arc<RocksLog>>,
}

impl RocksHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            fault: Arc::new(WriteFault::default()),
            open: None,
        }
    }

    fn open_log(&mut self) -> Arc<RocksLog> {
        let options = RocksLogOptions {
            write_fault: Some(self.fault.clone()),
            // Small segments: the suites' writes rotate through several.
            journal_segment_bytes: MIN_JOURNAL_SEGMENT_BYTES,
        };
        let log = Arc::new(RocksLog::open(self.dir.path(), options).expect("opens"));
        self.open = Some(log.clone());
        log
    }

    fn close(&mut self) {
        if let Some(log) = self.open.take() {
            log.close();
            assert_eq!(Arc::strong_count(&log), 1, "the test holds no other handle");
        }
    }
}

/// The newest journal segment of the log in `dir`, and where its records end.
fn newest_segment(dir: &Path) -> (std::path::PathBuf, u64) {
    let segments = ordo_log::journal::inspect(&dir.join("journal")).unwrap();
    let newest = segments.last().expect("the log has a journal segment");
    (newest.path.clone(), newest.end)
}

#[async_trait::async_trait]
impl SequencerHarness for RocksHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        self.open_log()
    }

    async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
        drop(sequencer);
        self.close();
    }

    /// Half a journal record (a header promising more bytes than follow)
    /// after the last whole one, as a crash in the middle of a group write
    /// leaves it.
    fn tear_tail(&mut self) {
        let (path, end) = newest_segment(self.dir.path());
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(b"\x12\x34\x56\x78\xff\x7f\x01partial", end)
            .unwrap();
    }

    fn fail_next_write(&mut self) {
        self.fault.arm();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rocksdb_log_passes_the_sequencer_suite() {
    sequencer(RocksHarness::new).await;
}

#[test]
fn the_rocksdb_log_passes_the_shard_store_suite() {
    let root = tempfile::tempdir().unwrap();
    let counter = std::cell::Cell::new(0);
    shard_store(|| {
        counter.set(counter.get() + 1);
        let path = root.path().join(counter.get().to_string());
        RocksLog::open(path, small_segments()).unwrap()
    });
}

fn small_segments() -> RocksLogOptions {
    RocksLogOptions {
        journal_segment_bytes: MIN_JOURNAL_SEGMENT_BYTES,
        ..RocksLogOptions::default()
    }
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_written_in_one_sync_read_back_verified_after_a_restart() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let writer = EntryWriter::joint(log.clone(), CodingParams::default()).unwrap();
    let lengths = [0usize, 1, 5000, 300_000];
    for (seq, len) in lengths.iter().enumerate() {
        let header = writer
            .append(payload(seq as u8 + 1, *len), vec![[1; 32]], [2; 20])
            .await
            .unwrap();
        assert_eq!(header.seq, seq as u64, "seqs are consecutive");
    }
    drop((writer, log));
    harness.close();
    let log = harness.open_log();
    let reader = EntryReader::new(log.clone(), log.clone());
    for (seq, len) in lengths.iter().enumerate() {
        let (_, read) = reader.read(seq as u64).await.unwrap();
        assert_eq!(read.payload, payload(seq as u8 + 1, *len), "entry {seq}");
        assert!(read.missing.is_empty() && read.rejected.is_empty());
    }
    drop((reader, log));
    harness.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_joint_write_leaves_neither_shards_nor_header() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let kept = CodingParams::default().encode(b"kept").unwrap();
    let lost = CodingParams::default().encode(b"lost").unwrap();
    let describe = |encoded: &ordo_log::EncodedEntry| ordo_log::EntryDescriptor {
        commitment: encoded.commitment,
        geometry: encoded.geometry,
        tags: vec![],
        submitter: [0; 20],
    };
    log.append_with_shards(describe(&kept), kept.shards.clone())
        .await
        .unwrap();
    harness.fail_next_write();
    let failed = log
        .append_with_shards(describe(&lost), lost.shards.clone())
        .await;
    assert!(
        matches!(failed, Err(SequencerError::Poisoned(_))),
        "{failed:?}"
    );
    assert_eq!(log.tail(), 1, "the failed entry took no seq");
    drop(log);
    harness.close();
    let log = harness.open_log();
    assert_eq!(
        log.tail(),
        1,
        "the failed entry is not there after a reopen"
    );
    assert_eq!(log.list(&kept.commitment).unwrap().len(), kept.shards.len());
    assert!(
        log.list(&lost.commitment).unwrap().is_empty(),
        "no shard of the failed entry was stored"
    );
    drop(log);
    harness.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_log_is_refused_as_locked() {
    let mut harness = RocksHarness::new();
    let _log = harness.open_log();
    let second = RocksLog::open(harness.dir.path(), RocksLogOptions::default());
    assert!(
        matches!(second, Err(SequencerError::Locked(_))),
        "{second:?}"
    );
}

fn descriptor_of(encoded: &ordo_log::EncodedEntry) -> ordo_log::EntryDescriptor {
    ordo_log::EntryDescriptor {
        commitment: encoded.commitment,
        geometry: encoded.geometry,
        tags: vec![],
        submitter: [0; 20],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_and_queued_appends_share_one_gap_free_order_that_survives_a_reopen() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let entries: Vec<_> = (0..40u8)
        .map(|i| CodingParams::default().encode(&[i; 100]).unwrap())
        .collect();
    // Half the entries from a thread of their own, blocking; half queued
    // to the writer thread, at the same time.
    let blocking_log = log.clone();
    let blocking_entries = entries[..20].to_vec();
    let blocking = std::thread::spawn(move || {
        blocking_entries
            .iter()
            .map(|e| {
                let header =
                    blocking_log.append_with_shards_blocking(descriptor_of(e), e.shards.clone());
                header.unwrap().seq
            })
            .collect::<Vec<u64>>()
    });
    let mut seqs = Vec::new();
    for e in &entries[20..] {
        let header = log.append_with_shards(descriptor_of(e), e.shards.clone());
        seqs.push(header.await.unwrap().seq);
    }
    let blocking_seqs = blocking.join().unwrap();
    assert!(
        blocking_seqs.windows(2).all(|w| w[0] < w[1]),
        "in call order"
    );
    seqs.extend(blocking_seqs);
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..40).collect::<Vec<u64>>(),
        "every seq once, no gap"
    );
    drop(log);
    harness.close();
    let log = harness.open_log();
    assert_eq!(log.tail(), 40);
    for e in &entries {
        assert_eq!(log.list(&e.commitment).unwrap().len(), e.shards.len());
    }
    drop(log);
    harness.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_blocking_append_poisons_the_log_for_queued_appends_too() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let entry = CodingParams::default().encode(b"entry").unwrap();
    harness.fail_next_write();
    let failed = log.append_with_shards_blocking(descriptor_of(&entry), entry.shards.clone());
    assert!(
        matches!(failed, Err(SequencerError::Poisoned(_))),
        "{failed:?}"
    );
    let queued = log.append_with_shards(descriptor_of(&entry), entry.shards.clone());
    assert!(matches!(queued.await, Err(SequencerError::Poisoned(_))));
    assert_eq!(log.tail(), 0, "nothing was ordered");
    drop(log);
    harness.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_append_after_close_is_refused() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let entry = CodingParams::default().encode(b"entry").unwrap();
    log.close();
    let refused = log.append_with_shards_blocking(descriptor_of(&entry), entry.shards.clone());
    assert_eq!(refused, Err(SequencerError::Closed));
    assert_eq!(log.tail(), 0);
    drop(log);
    harness.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_to_a_journal_record_before_the_last_is_an_error_on_open_not_a_loss() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    for i in 0..3u8 {
        let entry = CodingParams::default().encode(&[i; 500]).unwrap();
        log.append_with_shards(descriptor_of(&entry), entry.shards.clone())
            .await
            .unwrap();
    }
    drop(log);
    harness.close();
    let (path, _) = newest_segment(harness.dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the first record's payload (its frame header is 16 bytes).
    bytes[40] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let reopened = RocksLog::open(harness.dir.path(), small_segments());
    match reopened {
        Err(SequencerError::Corrupt { reason, .. }) => {
            assert!(reason.contains("journal segment"), "{reason}")
        }
        other => panic!("expected a corrupt journal, got {other:?}"),
    }
}

#[test]
fn journal_segments_below_the_minimum_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = RocksLogOptions {
        journal_segment_bytes: MIN_JOURNAL_SEGMENT_BYTES - 1,
        ..RocksLogOptions::default()
    };
    let refused = RocksLog::open(dir.path(), options);
    match refused {
        Err(SequencerError::Io(reason)) => {
            assert!(reason.contains("below the minimum"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Shards an append wrote (kept under its seq) are replaced by a later put
/// and removed by a delete like any other, and survive a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_shards_are_found_replaced_and_deleted_by_commitment() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let encoded = CodingParams::default().encode(&payload(3, 9000)).unwrap();
    let commitment = encoded.commitment;
    log.append_with_shards(descriptor_of(&encoded), encoded.shards.clone())
        .await
        .unwrap();
    let all: Vec<u16> = encoded.shards.iter().map(|s| s.index).collect();
    assert_eq!(log.list(&commitment).unwrap(), all);
    assert_eq!(
        log.get(&commitment, 1).unwrap().as_ref(),
        Some(&encoded.shards[1])
    );

    let mut replaced = encoded.shards[1].clone();
    replaced.bytes = vec![0xAB; replaced.bytes.len()];
    log.put(&commitment, &replaced).unwrap();
    assert_eq!(
        log.get(&commitment, 1).unwrap(),
        Some(replaced.clone()),
        "the put wins"
    );
    log.delete(&commitment, 0).unwrap();
    assert!(!log.has(&commitment, 0).unwrap());
    assert_eq!(log.list(&commitment).unwrap(), all[1..].to_vec());

    drop(log);
    harness.close();
    let log = harness.open_log();
    assert_eq!(log.get(&commitment, 1).unwrap(), Some(replaced));
    assert_eq!(log.get(&commitment, 0).unwrap(), None);
    assert_eq!(
        log.get(&commitment, 2).unwrap().as_ref(),
        Some(&encoded.shards[2])
    );
    drop(log);
    harness.close();
}

/// An entry whose shards were put outside its append (as every entry of a
/// log written before shards were kept by seq) reads back whole, and so
/// does one appended with its shards after it, across a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_with_shards_put_apart_and_appended_together_read_back_alike() {
    let mut harness = RocksHarness::new();
    let log = harness.open_log();
    let apart = CodingParams::default().encode(&payload(5, 4000)).unwrap();
    let together = CodingParams::default().encode(&payload(7, 4000)).unwrap();
    log.put_entry(&apart.commitment, &apart.shards).unwrap();
    log.append(descriptor_of(&apart)).await.unwrap();
    log.append_with_shards(descriptor_of(&together), together.shards.clone())
        .await
        .unwrap();
    drop(log);
    harness.close();
    let log = harness.open_log();
    let reader = EntryReader::new(log.clone(), log.clone());
    for (seq, seed) in [(0, 5), (1, 7)] {
        let (_, read) = reader.read(seq).await.unwrap();
        assert_eq!(read.payload, payload(seed, 4000), "entry {seq}");
        assert!(read.missing.is_empty() && read.rejected.is_empty());
    }
    drop((reader, log));
    harness.close();
}
