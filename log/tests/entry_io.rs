//! Writing entries and reading them back through shards, with shards lost
//! and damaged.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::{
    CodingParams, EntryError, EntryReader, EntryWriter, LocalSequencer, LocalSequencerOptions,
    LogError, MemShardStore, Sequencer, ShardStore,
};
use std::sync::Arc;

struct Log {
    store: Arc<MemShardStore>,
    sequencer: Arc<LocalSequencer>,
    writer: EntryWriter,
    reader: EntryReader,
    _dir: tempfile::TempDir,
}

fn log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemShardStore::new());
    let sequencer =
        Arc::new(LocalSequencer::open(dir.path(), LocalSequencerOptions::default()).unwrap());
    let writer =
        EntryWriter::new(store.clone(), sequencer.clone(), CodingParams::default()).unwrap();
    let reader = EntryReader::new(store.clone(), sequencer.clone());
    Log {
        store,
        sequencer,
        writer,
        reader,
        _dir: dir,
    }
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn written_entries_read_back_verified() {
    let log = log();
    for (i, len) in [0usize, 1, 5000, 300_000].into_iter().enumerate() {
        let header = log
            .writer
            .append(payload(len), vec![[1; 32]], [2; 20])
            .await
            .unwrap();
        assert_eq!(header.seq, i as u64);
        let (read_header, read) = log.reader.read(header.seq).await.unwrap();
        assert_eq!(read_header, header);
        assert_eq!(read.payload, payload(len));
        assert!(read.missing.is_empty() && read.rejected.is_empty());
    }
}

#[tokio::test]
async fn lost_and_damaged_shards_are_worked_around_up_to_m() {
    let log = log();
    let header = log
        .writer
        .append(payload(100_000), vec![], [0; 20])
        .await
        .unwrap();
    let commitment = header.entry.commitment;
    log.store.delete(&commitment, 0).unwrap();
    let mut damaged = log.store.get(&commitment, 2).unwrap().unwrap();
    damaged.bytes[17] ^= 0x40;
    log.store.put(&commitment, &damaged).unwrap();

    let (_, read) = log.reader.read(header.seq).await.unwrap();
    assert_eq!(
        read.payload,
        payload(100_000),
        "rebuilt from the parity shards"
    );
    assert_eq!(read.missing, vec![0]);
    assert_eq!(
        read.rejected,
        vec![2],
        "the damaged shard was caught and not used"
    );

    log.store.delete(&commitment, 5).unwrap();
    let error = log.reader.read(header.seq).await.unwrap_err();
    assert!(
        matches!(
            error,
            EntryError::Log(LogError::NotEnoughShards {
                have: 3,
                need: 4,
                ..
            })
        ),
        "three good shards of a 4+2 entry cannot rebuild it: {error:?}"
    );
}

#[tokio::test]
async fn uncommitted_seqs_are_a_typed_error() {
    let log = log();
    let error = log.reader.read(0).await.unwrap_err();
    assert!(
        matches!(error, EntryError::NotCommitted { seq: 0, tail: 0 }),
        "{error:?}"
    );
    assert_eq!(log.sequencer.tail(), 0);
}

#[test]
fn bad_coding_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sequencer =
        Arc::new(LocalSequencer::open(dir.path(), LocalSequencerOptions::default()).unwrap());
    let params = CodingParams {
        chunk_size: 4096,
        data_shards: 4,
        parity_shards: 0,
    };
    assert!(EntryWriter::new(Arc::new(MemShardStore::new()), sequencer, params).is_err());
}

/// A writer and a reader over `log` sharing their recent payloads.
fn remembering(log: &Log) -> (EntryWriter, EntryReader) {
    let recent = Arc::new(ordo_log::RecentPayloads::default());
    let coding = CodingParams::default();
    let writer = EntryWriter::new(log.store.clone(), log.sequencer.clone(), coding).unwrap();
    let reader = EntryReader::new(log.store.clone(), log.sequencer.clone());
    (
        writer.remembering(recent.clone()),
        reader.remembering(recent),
    )
}

/// Deletes every shard of the entry.
fn forget_shards(log: &Log, header: &ordo_log::EntryHeader) {
    for index in log.store.list(&header.entry.commitment).unwrap() {
        log.store.delete(&header.entry.commitment, index).unwrap();
    }
}

#[tokio::test]
async fn a_reader_takes_what_its_writer_just_appended_from_memory_once() {
    let log = log();
    let (writer, reader) = remembering(&log);
    let header = writer.append(payload(5000), vec![], [0; 20]).await.unwrap();
    forget_shards(&log, &header);
    let (_, read) = reader.read(header.seq).await.unwrap();
    assert_eq!(read.payload, payload(5000), "handed over in memory");
    assert!(
        reader.read(header.seq).await.is_err(),
        "taken once: the second read goes to the (deleted) shards"
    );
}

#[tokio::test]
async fn recent_payloads_keep_only_the_newest() {
    let log = log();
    let (writer, reader) = remembering(&log);
    let count = ordo_log::limits::MAX_RECENT_PAYLOADS as u64 + 1;
    for i in 0..count {
        writer
            .append(vec![i as u8; 100], vec![], [0; 20])
            .await
            .unwrap();
    }
    let first = log.sequencer.read(0, 1).await.unwrap().remove(0);
    let last = log.sequencer.read(count - 1, 1).await.unwrap().remove(0);
    forget_shards(&log, &first);
    forget_shards(&log, &last);
    assert!(
        reader.read(first.seq).await.is_err(),
        "the oldest was let go"
    );
    assert!(reader.read(last.seq).await.is_ok(), "the newest is held");
}

/// A sequencer that, the moment it has ordered an entry and before the
/// writer hears back, reads the entry as a follower woken by the new tail
/// would: through a reader whose shard store is empty, so only a payload
/// already handed over in memory can be read.
struct ReadsOnOrder {
    inner: Arc<LocalSequencer>,
    follower: EntryReader,
    read: std::sync::Mutex<Vec<Result<Vec<u8>, String>>>,
}

#[async_trait::async_trait]
impl Sequencer for ReadsOnOrder {
    async fn append(
        &self,
        entry: ordo_log::EntryDescriptor,
    ) -> Result<ordo_log::EntryHeader, ordo_log::SequencerError> {
        let header = self.inner.append(entry).await?;
        let read = self.follower.read(header.seq).await;
        let read = read.map(|(_, p)| p.payload).map_err(|e| e.to_string());
        self.read.lock().unwrap().push(read);
        Ok(header)
    }

    async fn read(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<ordo_log::EntryHeader>, ordo_log::SequencerError> {
        self.inner.read(from, max).await
    }

    fn tail(&self) -> u64 {
        self.inner.tail()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, ordo_log::SequencerError> {
        self.inner.wait_beyond(seq).await
    }
}

#[tokio::test]
async fn a_follower_woken_by_the_new_tail_finds_the_payload_in_memory() {
    let log = log();
    let recent = Arc::new(ordo_log::RecentPayloads::default());
    let empty = Arc::new(MemShardStore::new());
    let sequencer = Arc::new(ReadsOnOrder {
        inner: log.sequencer.clone(),
        follower: EntryReader::new(empty, log.sequencer.clone()).remembering(recent.clone()),
        read: Default::default(),
    });
    let writer = EntryWriter::new(
        log.store.clone(),
        sequencer.clone(),
        CodingParams::default(),
    )
    .unwrap()
    .remembering(recent);
    writer.append(payload(300), vec![], [0; 20]).await.unwrap();
    let read = sequencer.read.lock().unwrap().clone();
    assert_eq!(
        read,
        vec![Ok(payload(300))],
        "the payload was handed over before the entry was ordered"
    );
}

#[tokio::test]
async fn an_entry_appended_blocking_from_a_thread_of_its_own_reads_back_verified() {
    let log = log();
    let writer = &log.writer;
    let headers = std::thread::scope(|scope| {
        let append = |len| {
            writer
                .append_blocking(payload(len), vec![], [2; 20])
                .unwrap()
        };
        scope
            .spawn(move || [1usize, 300_000].map(append))
            .join()
            .unwrap()
    });
    for (header, len) in headers.iter().zip([1usize, 300_000]) {
        let (read_header, read) = log.reader.read(header.seq).await.unwrap();
        assert_eq!(&read_header, header);
        assert_eq!(read.payload, payload(len));
    }
    assert_eq!(log.sequencer.tail(), 2);
}

/// Storage members in memory, for a spread writer: records the thread
/// each store ran on, and may hang there until dropped (telling `dropped`).
#[derive(Default)]
struct MemSpread {
    store: MemShardStore,
    stored_on: std::sync::Mutex<Vec<String>>,
    hang: Option<HangingStore>,
}

/// What a hanging store tells the test: that it began, and that it was
/// dropped before it finished.
struct HangingStore {
    began: Arc<tokio::sync::Notify>,
    dropped: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// Sends on drop.
struct TellOnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for TellOnDrop {
    fn drop(&mut self) {
        if let Some(tell) = self.0.take() {
            let _ = tell.send(());
        }
    }
}

#[async_trait::async_trait]
impl ordo_log::SpreadShards for MemSpread {
    async fn store_entry(
        &self,
        entry: &ordo_log::EncodedEntry,
    ) -> Result<(), ordo_log::SpreadError> {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        self.stored_on.lock().unwrap().push(thread);
        if let Some(hang) = &self.hang {
            let _tell = TellOnDrop(hang.dropped.lock().unwrap().take());
            hang.began.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(self.store.put_entry(&entry.commitment, &entry.shards)?)
    }

    async fn load_entry(
        &self,
        header: &ordo_log::EntryHeader,
    ) -> Result<ordo_log::VerifiedPayload, ordo_log::SpreadError> {
        let mut coder = ordo_log::Coder::new();
        Ok(ordo_log::load_payload(&self.store, header, &mut coder)?)
    }
}

/// Runs `work` on a thread named `name` with a runtime of its own, as the
/// node's batcher runs, and returns what it returned.
fn on_own_thread<T: Send>(name: &str, work: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().name(name.into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let running = thread.spawn_scoped(scope, move || runtime.block_on(work));
        running.unwrap().join().unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_spread_entry_appended_from_a_thread_of_its_own_is_sent_from_the_writers_runtime() {
    let log = log();
    let spread = Arc::new(MemSpread::default());
    let writer = EntryWriter::spread(
        spread.clone(),
        log.sequencer.clone(),
        CodingParams::default(),
    )
    .unwrap();
    let header = on_own_thread("own-thread", async {
        (writer
            .append_on_own_thread(payload(5_000), vec![], [3; 20])
            .await)
            .unwrap()
    });
    let stored_on = spread.stored_on.lock().unwrap().clone();
    assert_eq!(stored_on.len(), 1, "one store for one entry");
    assert_ne!(
        stored_on[0], "own-thread",
        "the shards went out from the runtime"
    );
    let reader = EntryReader::spread(spread.clone(), log.sequencer.clone());
    let (read_header, read) = reader.read(header.seq).await.unwrap();
    assert_eq!(read_header, header);
    assert_eq!(read.payload, payload(5_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn dropping_a_spread_append_on_its_own_thread_stops_its_network_part_too() {
    let log = log();
    let (tell, dropped) = tokio::sync::oneshot::channel();
    let began = Arc::new(tokio::sync::Notify::new());
    let spread = Arc::new(MemSpread {
        hang: Some(HangingStore {
            began: began.clone(),
            dropped: std::sync::Mutex::new(Some(tell)),
        }),
        ..MemSpread::default()
    });
    let writer = EntryWriter::spread(
        spread.clone(),
        log.sequencer.clone(),
        CodingParams::default(),
    )
    .unwrap();
    on_own_thread("own-thread", async {
        let append = writer.append_on_own_thread(payload(100), vec![], [3; 20]);
        tokio::select! {
            _ = append => panic!("a hanging store cannot finish"),
            () = began.notified() => {}
        }
    });
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), dropped).await;
    assert!(
        matches!(waited, Ok(Ok(()))),
        "the store in flight was dropped with the append"
    );
    assert_eq!(log.sequencer.tail(), 0, "nothing was ordered");
}
