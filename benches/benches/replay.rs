//! Replay throughput: ordered validate + apply of small transactions on one
//! core, next to writing the same effects straight into RocksDB; and
//! signature checking, which runs before ordering and scales with cores.
//!
//! Transactions read two keys and write two, spread over 16 senders (all
//! stream writers) and a million keys, read at the version applied before
//! their entry, 1,000 to an entry. Both sides write to RocksDB without
//! fsync, as replay does (the log is the durable record).
//!
//! "The same effects" is taken literally: the replay run records every
//! batch it writes (data rows, outcome rows, the entry's change record and
//! applied position), and `raw_rocksdb_same_batches` writes those very
//! batches into a fresh RocksDB. The difference is the cost of deciding.
//! `raw_rocksdb_data_rows_only` writes just the two data rows per
//! transaction, for scale. `paired/validate_apply_then_raw` interleaves
//! the two sides entry by entry and prints their ratio, which the machine's
//! drifting pace moves far less than the ratio of separate runs.
//! `window/probe_record_evict_2r2w` times the conflict window's share of
//! deciding on its own. `payloads/*` replays from payload bytes as a node
//! does, signature checks included: attested entries on one core, and
//! signed entries with their checks on two.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench as _; // links the benchmarks' allocator (jemalloc, as in the ordo binary)
use ordo_kv::keys::encode_versioned;
use ordo_kv::mvcc::encode_value;
use ordo_kv::{Column, Engine, EngineError, RocksEngine, WriteBatch};
use ordo_txn::testkit::{XorShift, blank, create_stream, signed, signing_key, txn_id};
use ordo_txn::{AclOp, Checked, Read, Replayer, SigningKey, Transaction, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TXS_PER_ENTRY: usize = 1_000;
const SENDERS: u8 = 16;
const KEYS: u64 = 1_000_000;
const SIGNED_BATCH: usize = 256;

fn signer(i: u8) -> SigningKey {
    signing_key(i + 1)
}

fn key(rng: &mut XorShift) -> Vec<u8> {
    format!("user{:08}", rng.below(KEYS)).into_bytes()
}

/// The benchmark's stream (deriving an address is a curve multiplication:
/// done once, not per generated transaction).
fn stream() -> [u8; 32] {
    static STREAM: std::sync::LazyLock<[u8; 32]> = std::sync::LazyLock::new(|| {
        ordo_txn::stream_id(&ordo_txn::address_of(&signer(0)), b"bench")
    });
    *STREAM
}

fn small_tx(n: u64, sender: [u8; 20], read_version: u64, rng: &mut XorShift) -> Transaction {
    let stream = stream();
    Transaction {
        sender,
        reads: (0..2)
            .map(|_| Read::Key {
                stream,
                key: key(rng),
            })
            .collect(),
        writes: (0..2)
            .map(|_| Write {
                stream,
                key: key(rng),
                value: Some(vec![7; 16]),
            })
            .collect(),
        ..blank(txn_id(n), read_version)
    }
}

/// A RocksDB engine that keeps a copy of every batch written through it.
struct Recording {
    engine: RocksEngine,
    batches: Mutex<Vec<WriteBatch>>,
}

impl Engine for Recording {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.engine.get(column, key)
    }

    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.engine.scan_from(column, from, visit)
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        self.batches
            .lock()
            .expect("not poisoned")
            .push(batch.clone());
        self.engine.write(batch, sync)
    }
}

/// A replayer on `engine` whose stream exists with every sender a writer.
fn replayer<E: Engine>(engine: E) -> Replayer<E> {
    let mut replayer = Replayer::open(engine).expect("replayer");
    create_bench_stream(&mut replayer);
    replayer
}

/// Appends the entry that creates the benchmark's stream and makes every
/// sender a writer.
fn create_bench_stream<E: Engine>(replayer: &mut Replayer<E>) {
    let create = create_stream([0; 16], 0, b"bench");
    let grants = (1..SENDERS)
        .map(|i| AclOp::GrantWriter {
            stream: stream(),
            account: ordo_txn::address_of(&signer(i)),
        })
        .collect();
    let grant = Transaction {
        id: [1; 16],
        acl: grants,
        ..create.clone()
    };
    let batch = [signed(create, &signer(0)), signed(grant, &signer(0))];
    let seq = replayer.applied().next_seq;
    let outcomes = replayer
        .apply_entry(seq, ordo_txn::check_entry(&ordo_txn::encode_batch(&batch)))
        .expect("apply");
    assert!(outcomes.iter().all(|o| o.is_committed()), "{outcomes:?}");
}

/// Entries recorded for the raw baseline (each about 300 KB of rows).
const RECORDED_ENTRIES: usize = 256;

/// The next entry: TXS_PER_ENTRY small transactions reading at the applied version.
fn next_entry<E: Engine>(
    replayer: &Replayer<E>,
    senders: &[[u8; 20]],
    rng: &mut XorShift,
    n: &mut u64,
) -> Vec<Checked> {
    let version = replayer.applied().version;
    (0..TXS_PER_ENTRY)
        .map(|i| {
            *n += 1;
            Checked::valid(small_tx(*n, senders[i % senders.len()], version, rng))
        })
        .collect()
}

/// The benchmark's senders' addresses.
fn senders() -> Vec<[u8; 20]> {
    (0..SENDERS)
        .map(|i| ordo_txn::address_of(&signer(i)))
        .collect()
}

/// The batches replay writes for RECORDED_ENTRIES entries (each entry's
/// rows, change record and applied position), recorded in a store of
/// their own.
fn record_batches(senders: &[[u8; 20]]) -> Vec<WriteBatch> {
    let dir = store_dir();
    let engine = Recording {
        engine: RocksEngine::open(dir.path()).expect("open"),
        batches: Mutex::new(Vec::new()),
    };
    let mut recorder = replayer(std::sync::Arc::new(engine));
    let (mut rng, mut n) = (XorShift::new(7), 2u64);
    for _ in 0..RECORDED_ENTRIES {
        let entry = next_entry(&recorder, senders, &mut rng, &mut n);
        recorder
            .apply_entry(recorder.applied().next_seq, entry)
            .expect("apply");
    }
    let batches = std::mem::take(
        &mut *recorder
            .store()
            .engine()
            .batches
            .lock()
            .expect("not poisoned"),
    );
    batches
        .into_iter()
        .filter(|b| b.ops.len() > TXS_PER_ENTRY)
        .collect()
}

/// Replay of generated entries into one store, timed entry by entry.
struct ReplayRun<'a> {
    replayer: Replayer<RocksEngine>,
    senders: &'a [[u8; 20]],
    rng: XorShift,
    n: u64,
}

impl<'a> ReplayRun<'a> {
    fn new(dir: &std::path::Path, senders: &'a [[u8; 20]]) -> Self {
        let replayer = replayer(RocksEngine::open(dir).expect("open"));
        Self {
            replayer,
            senders,
            rng: XorShift::new(1),
            n: 2,
        }
    }

    /// Generates the next entry (untimed) and applies it: the apply's time.
    fn apply_next(&mut self) -> Duration {
        let entry = next_entry(&self.replayer, self.senders, &mut self.rng, &mut self.n);
        let seq = self.replayer.applied().next_seq;
        let start = Instant::now();
        let outcomes = self.replayer.apply_entry(seq, entry).expect("apply");
        let elapsed = start.elapsed();
        std::hint::black_box(outcomes);
        elapsed
    }
}

/// The recorded batches written round and round into one store.
struct RawRun<'a> {
    engine: RocksEngine,
    recorded: &'a [WriteBatch],
    next: usize,
}

impl<'a> RawRun<'a> {
    fn new(dir: &std::path::Path, recorded: &'a [WriteBatch]) -> Self {
        let engine = RocksEngine::open(dir).expect("open");
        Self {
            engine,
            recorded,
            next: 0,
        }
    }

    /// Writes the next recorded batch: the write's time (the copy is untimed).
    fn write_next(&mut self) -> Duration {
        let batch = self.recorded[self.next % self.recorded.len()].clone();
        self.next += 1;
        let start = Instant::now();
        self.engine.write(batch, false).expect("write");
        start.elapsed()
    }
}

/// A fresh temporary directory for one store, under the target directory.
fn store_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

/// A group timing whole entries, with the senders and, recorded untimed
/// first, the batches replay writes (for the raw baseline).
fn entry_group<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> (
    criterion::BenchmarkGroup<'c, criterion::measurement::WallTime>,
    Vec<[u8; 20]>,
    Vec<WriteBatch>,
) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(TXS_PER_ENTRY as u64));
    group.sample_size(20);
    let senders = senders();
    let recorded = record_batches(&senders);
    (group, senders, recorded)
}

fn validate_and_apply(c: &mut Criterion) {
    let (mut group, senders, recorded) = entry_group(c, "replay");

    // Each measurement gets a fresh store, and the store is closed before
    // the next one starts, so that one store's background compactions do
    // not take CPU from the next measurement on a small machine.
    let dir = store_dir();
    let mut run = ReplayRun::new(dir.path(), &senders);
    group.bench_function("validate_apply_2r2w", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run.apply_next()).sum())
    });

    drop(run);
    let raw_dir = store_dir();
    let mut raw = RawRun::new(raw_dir.path(), &recorded);
    group.bench_function("raw_rocksdb_same_batches", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw.write_next()).sum())
    });

    drop(raw);
    let raw_dir = store_dir();
    let raw = RocksEngine::open(raw_dir.path()).expect("open");
    let (mut rng, mut version) = (XorShift::new(1), 0u64);
    group.bench_function("raw_rocksdb_data_rows_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut batch = ordo_kv::WriteBatch::default();
                for _ in 0..TXS_PER_ENTRY {
                    version += 1;
                    for _ in 0..2 {
                        batch.put(
                            Column::Data,
                            encode_versioned(&stream(), &key(&mut rng), version),
                            encode_value(Some(&[7; 16])),
                        );
                    }
                }
                let start = Instant::now();
                raw.write(batch, false).expect("write");
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn signature_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("signatures");
    group.throughput(Throughput::Elements(SIGNED_BATCH as u64));
    let mut rng = XorShift::new(1);
    let signed: Vec<_> = (0..SIGNED_BATCH)
        .map(|i| {
            let who = signer((i % SENDERS as usize) as u8);
            let tx = small_tx(i as u64, [0; 20], 0, &mut rng);
            ordo_txn::sign(tx, &who).expect("sign")
        })
        .collect();
    let payload = ordo_txn::encode_batch(&signed);
    group.bench_function("decode_and_verify_one_core", |b| {
        b.iter(|| {
            let checked = ordo_txn::check_entry(std::hint::black_box(&payload));
            assert!(matches!(checked[0], Checked::Valid(..)));
            checked
        })
    });
    // Recovery alone, the two implementations side by side: libsecp256k1
    // (what ordo uses) and k256 (alloy's, the baseline).
    let hashes: Vec<[u8; 32]> = signed
        .iter()
        .map(|s| ordo_txn::sign::signing_hash(&s.tx))
        .collect();
    group.bench_function("recover_libsecp256k1", |b| {
        b.iter(|| {
            for (s, hash) in signed.iter().zip(&hashes) {
                let who = ordo_txn::sign::recover(&s.signature, *hash).expect("recovers");
                assert_eq!(who, s.tx.sender);
            }
        })
    });
    group.bench_function("recover_k256", |b| {
        b.iter(|| {
            for (s, hash) in signed.iter().zip(&hashes) {
                let who = ordo_txn::sign::recover_with_k256(&s.signature, *hash).expect("recovers");
                assert_eq!(who, s.tx.sender);
            }
        })
    });
    let key = signer(1);
    let tx = small_tx(1, [0; 20], 0, &mut rng);
    group.throughput(Throughput::Elements(1));
    // Signing alone, both implementations: libsecp256k1 (what ordo uses)
    // and k256 (alloy's, the baseline).
    let hash = ordo_txn::sign::signing_hash(&tx);
    group.bench_function("sign_libsecp256k1", |b| {
        b.iter(|| ordo_txn::sign::sign_hash(std::hint::black_box(hash), &key).expect("sign"))
    });
    group.bench_function("sign_k256", |b| {
        b.iter(|| {
            ordo_txn::sign::sign_hash_with_k256(std::hint::black_box(hash), &key).expect("sign")
        })
    });
    group.finish();
}

/// Validate + apply and the raw write of the same batches, interleaved:
/// each iteration applies one entry to the replay store, then writes one
/// recorded batch to the raw store, each timed on its own.
///
/// The separate measurements above are some seconds apart, and on a shared
/// machine whose pace drifts that moves their ratio by a tenth either way
/// from run to run. Interleaved, both sides see the same machine at the
/// same moment (and each other's background compactions, which is why the
/// separate measurements stay the reference for absolute figures); the
/// ratio over all iterations is printed after criterion's report, which
/// times the apply side.
fn paired(c: &mut Criterion) {
    let (mut group, senders, recorded) = entry_group(c, "paired");
    let dir = store_dir();
    let mut run = ReplayRun::new(dir.path(), &senders);
    let raw_dir = store_dir();
    let mut raw = RawRun::new(raw_dir.path(), &recorded);
    let (mut apply_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    group.bench_function("validate_apply_then_raw", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += run.apply_next();
                raw_time += raw.write_next();
            }
            apply_time += total;
            total
        })
    });
    group.finish();
    let entries = raw.next;
    if entries == 0 {
        return; // filtered out on the command line
    }
    let per_second = |time: Duration| entries as f64 * TXS_PER_ENTRY as f64 / time.as_secs_f64();
    println!(
        "paired over {entries} entries: validate + apply {:.1} K tx/s, raw RocksDB {:.1} K tx/s, ratio {:.3}",
        per_second(apply_time) / 1e3,
        per_second(raw_time) / 1e3,
        raw_time.as_secs_f64() / apply_time.as_secs_f64(),
    );
}

/// The conflict window alone, as replay drives it per transaction: two
/// point probes at a fresh read version, two written keys recorded, and the
/// version leaving the window evicted. Keys as in the replay benchmark, with
/// the window full (CONFLICT_WINDOW versions) before timing starts.
fn conflict_window(c: &mut Criterion) {
    let mut group = c.benchmark_group("window");
    group.throughput(Throughput::Elements(TXS_PER_ENTRY as u64));
    let stream = stream();
    let window_versions = ordo_txn::limits::CONFLICT_WINDOW;
    let mut window = ordo_txn::window::ConflictWindow::new();
    // Keys are drawn up front so that timing covers the window alone; the
    // pool outlasts the window many times over.
    let mut rng = XorShift::new(3);
    let pool: Vec<Read> = (0..1 << 21)
        .map(|_| Read::Key {
            stream,
            key: key(&mut rng),
        })
        .collect();
    let (mut next, mut version) = (0usize, 0u64);
    let mut step = |window: &mut ordo_txn::window::ConflictWindow| {
        let mut take = || {
            next = (next + 1) % pool.len();
            &pool[next]
        };
        let conflicts = (0..2)
            .filter_map(|_| window.conflict(take(), version))
            .count();
        version += 1;
        let writes = [take(), take()];
        window.record(
            version,
            writes.iter().filter_map(|read| match read {
                Read::Key { stream, key } => Some((stream, key.as_slice())),
                Read::Range { .. } => None,
            }),
        );
        window.evict_through(version.saturating_sub(window_versions));
        conflicts
    };
    for _ in 0..window_versions {
        step(&mut window);
    }
    group.bench_function("probe_record_evict_2r2w", |b| {
        b.iter(|| (0..TXS_PER_ENTRY).map(|_| step(&mut window)).sum::<usize>())
    });
    group.finish();
}

/// The gateway of the attested benchmarks.
fn gateway() -> SigningKey {
    signing_key(200)
}

/// A replayer whose log starts with a genesis record (the benchmark's
/// gateway a gateway), then the stream with every sender a writer. Like a
/// node's, it writes through a cache of each key's newest version.
fn gateway_replayer(engine: RocksEngine) -> Replayer<RocksEngine> {
    let limits = ordo_kv::NewestLimits::default();
    let mut replayer = Replayer::open_cached(engine, limits).expect("replayer");
    let genesis = ordo_txn::attest::Genesis {
        admin: ordo_txn::address_of(&signer(0)),
        gateways: vec![ordo_txn::address_of(&gateway())],
        ordering: ordo_txn::attest::Ordering::Members,
    };
    let checked = ordo_txn::check_entry(&genesis.encode());
    replayer.apply_entry(0, checked).expect("genesis");
    create_bench_stream(&mut replayer);
    replayer
}

/// The next entry's transactions, reading at the applied version.
fn next_transactions(
    replayer: &Replayer<RocksEngine>,
    senders: &[[u8; 20]],
    rng: &mut XorShift,
    n: &mut u64,
) -> Vec<Transaction> {
    let version = replayer.applied().version;
    (0..TXS_PER_ENTRY)
        .map(|i| {
            *n += 1;
            small_tx(*n, senders[i % senders.len()], version, rng)
        })
        .collect()
}

/// Replay as a node does it, from payload bytes: the stateless check
/// (signatures included) and the ordered apply.
///
/// - `attested_one_core`: entries of unsigned transactions attested by a
///   gateway, one signature per entry, checked and applied on one core.
/// - `signed_checks_on_two_cores`: entries of signed transactions, whose
///   recoveries are split over two threads (the node's replica checks
///   ahead on every core), then applied.
///
/// Payloads are built and signed outside the timing.
fn replay_from_payloads(c: &mut Criterion) {
    let mut group = c.benchmark_group("payloads");
    group.throughput(Throughput::Elements(TXS_PER_ENTRY as u64));
    group.sample_size(20);
    let senders = senders();
    let keys: Vec<SigningKey> = (0..SENDERS).map(signer).collect();
    let dir = store_dir();
    let mut replayer = gateway_replayer(RocksEngine::open(dir.path()).expect("open"));
    let (mut rng, mut n) = (XorShift::new(3), 2u64);
    let gateway = gateway();
    group.bench_function("attested_one_core", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let txs = next_transactions(&replayer, &senders, &mut rng, &mut n);
                let items: Vec<_> = txs
                    .into_iter()
                    .map(ordo_txn::attest::Item::Attested)
                    .collect();
                let payload = ordo_txn::attest::encode_attested(&items, &gateway).expect("sign");
                let seq = replayer.applied().next_seq;
                let start = Instant::now();
                let checked = ordo_txn::check_entry(&payload);
                let outcomes = replayer.apply_entry(seq, checked).expect("apply");
                total += start.elapsed();
                assert!(outcomes[0].is_committed(), "{:?}", outcomes[0]);
            }
            total
        })
    });
    group.bench_function("signed_checks_on_two_cores", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let txs = next_transactions(&replayer, &senders, &mut rng, &mut n);
                let signed: Vec<_> = txs
                    .into_iter()
                    .enumerate()
                    .map(|(i, tx)| ordo_txn::sign(tx, &keys[i % keys.len()]).expect("sign"))
                    .collect();
                let (first, second) = signed.split_at(signed.len() / 2);
                let halves = [
                    ordo_txn::encode_batch(first),
                    ordo_txn::encode_batch(second),
                ];
                let seq = replayer.applied().next_seq;
                let start = Instant::now();
                let checked = std::thread::scope(|scope| {
                    let other = scope.spawn(|| ordo_txn::check_entry(&halves[1]));
                    let mut checked = ordo_txn::check_entry(&halves[0]);
                    checked.extend(other.join().expect("checking thread"));
                    checked
                });
                let outcomes = replayer.apply_entry(seq, checked).expect("apply");
                total += start.elapsed();
                assert!(outcomes[0].is_committed(), "{:?}", outcomes[0]);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    validate_and_apply,
    paired,
    signature_checks,
    conflict_window,
    replay_from_payloads
);
criterion_main!(benches);
