//! `ordo-retention-bench`: what history costs reads and disk, before and
//! after collection, on the store replay writes (`MvccStore` over
//! RocksDB, the node's engine and options).
//!
//! 1. **Reads**: `--keys` keys with 1, 1,000 and `--max-versions` versions
//!    each. A scan of every key at the newest version and point reads of
//!    random keys, timed three times: as loaded; after a full compaction
//!    that collects nothing (horizon 0: every version kept, the LSM tree
//!    settled, so what is left is the cost of the history itself); and
//!    after the horizon moves to the newest version and the store
//!    collects (another full compaction). Scans are timed twice: walking
//!    the data column, and through the heads column (`ordo_kv::heads`,
//!    rebuilt after the load as a node would after a restart; the rebuild
//!    is timed). Then every key is written once more and a scan is timed
//!    with all of them pending, before the pass that takes them (timed).
//! 2. **Disk**: `--hot-writes` writes spread over 10 hot keys, in batches
//!    of 1,000 (one replayed entry's worth), once keeping everything and
//!    once moving the horizon every 100,000 writes to keep the newest
//!    `--keep-versions`; the store's files are measured as written
//!    (background compactions only) and after a full collection.
//! 3. **Deletes**: a queue, `--queue-keys` keys each put and deleted at once
//!    (two versions per key), once keeping everything and once keeping the
//!    newest `--keep-versions` with the node's sweep of deletes the horizon
//!    passed; rows left in the data column as written (background
//!    compactions and sweeps only), and the files before and after a full
//!    compaction.

use clap::Parser;
use ordo_bench as _; // links the benchmarks' allocator (jemalloc)
use ordo_kv::mvcc::stage_write;
use ordo_kv::{Column, Engine, HeadsStep, MvccStore, NewestLimits, RocksEngine, WriteBatch};
use ordo_txn::testkit::XorShift;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Keys of the read part (a scan returns all of them).
    #[arg(long, default_value_t = 1_000)]
    keys: u64,
    /// Versions per key of the deepest read case.
    #[arg(long, default_value_t = 100_000)]
    max_versions: u64,
    /// Writes of the disk part.
    #[arg(long, default_value_t = 10_000_000)]
    hot_writes: u64,
    /// Keys of the delete part.
    #[arg(long, default_value_t = 1_000_000)]
    queue_keys: u64,
    /// Versions the retained disk case keeps.
    #[arg(long, default_value_t = 100_000)]
    keep_versions: u64,
    /// Where the stores go (a temporary directory inside it).
    #[arg(long, default_value = "/tmp")]
    dir: std::path::PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const STREAM: [u8; 32] = [7; 32];
/// Rows per write batch while loading.
const LOAD_BATCH: usize = 10_000;
/// Bytes of every value: small, so the keys dominate as in a counter.
const VALUE: [u8; 16] = [0xAB; 16];
/// Scans timed per case (the median is reported).
const SCANS: usize = 15;
/// Point reads timed per case (the mean is reported).
const GETS: u64 = 20_000;
/// Hot keys of the disk part.
const HOT_KEYS: u64 = 10;
/// Bytes in a MiB, for the text report.
const MIB: f64 = 1024.0 * 1024.0;
/// Writes between two raises of the horizon in the retained disk case.
const RAISE_EVERY: u64 = 100_000;

fn key(n: u64) -> Vec<u8> {
    format!("key-{n:08}").into_bytes()
}

/// The read figures of one case.
#[derive(Debug, Serialize)]
struct Reads {
    versions: u64,
    rows_stored: u64,
    scan_micros: f64,
    scan_heads_micros: f64,
    get_micros: f64,
}

/// One depth of history: as loaded, compacted with every version kept,
/// and collected.
#[derive(Debug, Serialize)]
struct ReadCase {
    loaded: Reads,
    compacted: Reads,
    collected: Reads,
    load_seconds: f64,
    collect_seconds: f64,
    rebuild_seconds: f64,
    /// A scan through the heads with every key written since the last pass.
    scan_all_pending_micros: f64,
    pass_seconds: f64,
}

/// The disk figures of one hot-key run.
#[derive(Debug, Serialize)]
struct Disk {
    retained: bool,
    writes: u64,
    bytes_as_written: u64,
    bytes_after_collection: u64,
    rows_collected: u64,
    seconds: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reads = Vec::new();
    for versions in [1, 1_000, args.max_versions] {
        let dir = tempfile::tempdir_in(&args.dir)?;
        reads.push(read_case(dir.path(), args.keys, versions)?);
        if !args.json {
            print_reads(reads.last().expect("just pushed"));
        }
    }
    let mut disks = Vec::new();
    for retained in [false, true] {
        let dir = tempfile::tempdir_in(&args.dir)?;
        disks.push(disk_case(dir.path(), &args, retained)?);
        if !args.json {
            print_disk(disks.last().expect("just pushed"));
        }
    }
    let mut queues = Vec::new();
    for retained in [false, true] {
        let dir = tempfile::tempdir_in(&args.dir)?;
        queues.push(queue_case(dir.path(), &args, retained)?);
        if !args.json {
            let q = queues.last().expect("just pushed");
            println!(
                "queue of {} keys, {}: {} data rows left, {:.1} MiB as written, {:.1} MiB after a full compaction, {} deletes swept",
                q.keys,
                if q.retained {
                    "retained"
                } else {
                    "everything kept"
                },
                q.rows_left,
                q.bytes as f64 / MIB,
                q.bytes_after_compaction as f64 / MIB,
                q.deletes_swept
            );
        }
    }
    if args.json {
        let report = serde_json::json!({ "reads": reads, "disk": disks, "queue": queues });
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// Writes `versions` versions of each of `keys` keys, version after
/// version, numbered from `after + 1`; returns the newest version.
fn load_from(
    store: &MvccStore<Arc<RocksEngine>>,
    keys: u64,
    versions: u64,
    after: u64,
) -> anyhow::Result<u64> {
    let mut version = after;
    let mut batch = WriteBatch::with_capacity(LOAD_BATCH);
    for _ in 0..versions {
        for n in 0..keys {
            version += 1;
            stage_write(
                &mut batch,
                Column::Data,
                &STREAM,
                &key(n),
                version,
                Some(&VALUE),
            );
            if batch.ops.len() == LOAD_BATCH {
                store.write(std::mem::take(&mut batch), false)?;
            }
        }
    }
    store.write(batch, false)?;
    Ok(version)
}

fn read_case(dir: &Path, keys: u64, versions: u64) -> anyhow::Result<ReadCase> {
    let engine = Arc::new(RocksEngine::open(dir)?);
    // Two views of one engine: the plain store walks the data column; the
    // other scans through the heads, which it rebuilds first (the load
    // went past it, as replay's writes before a restart would).
    let store = MvccStore::new(engine.clone());
    let started = Instant::now();
    let newest = load_from(&store, keys, versions, 0)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let heads = MvccStore::cached(engine, NewestLimits::default(), newest);
    let started = Instant::now();
    anyhow::ensure!(matches!(heads.maintain_heads()?, HeadsStep::Rebuilt { .. }));
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let loaded = time_reads(&store, &heads, keys, versions, newest)?;
    store.engine().collect()?; // horizon 0: compacts, keeps every version
    let compacted = time_reads(&store, &heads, keys, versions, newest)?;
    let started = Instant::now();
    store.advance_horizon(newest);
    heads.advance_horizon(newest);
    store.engine().collect()?;
    let collect_seconds = started.elapsed().as_secs_f64();
    let collected = time_reads(&store, &heads, keys, versions, newest)?;
    let newest = load_from(&heads, keys, 1, newest)?;
    let scan_all_pending_micros = time_scans(&heads, keys, newest)?;
    let started = Instant::now();
    anyhow::ensure!(matches!(
        heads.maintain_heads()?,
        HeadsStep::Advanced { .. }
    ));
    let pass_seconds = started.elapsed().as_secs_f64();
    Ok(ReadCase {
        loaded,
        compacted,
        collected,
        load_seconds,
        collect_seconds,
        rebuild_seconds,
        scan_all_pending_micros,
        pass_seconds,
    })
}

/// The median of [`SCANS`] scans of every key at `at`, microseconds.
fn time_scans(store: &MvccStore<Arc<RocksEngine>>, keys: u64, at: u64) -> anyhow::Result<f64> {
    let rows = usize::try_from(keys)?;
    let mut scans = Vec::with_capacity(SCANS);
    for _ in 0..SCANS {
        let started = Instant::now();
        let page = store.scan(&STREAM, b"", None, at, rows, 64 << 20)?;
        scans.push(started.elapsed());
        anyhow::ensure!(
            page.rows.len() == rows,
            "a scan returned {}",
            page.rows.len()
        );
    }
    scans.sort();
    Ok(micros(scans[SCANS / 2]))
}

fn time_reads(
    store: &MvccStore<Arc<RocksEngine>>,
    heads: &MvccStore<Arc<RocksEngine>>,
    keys: u64,
    versions: u64,
    at: u64,
) -> anyhow::Result<Reads> {
    let scan_micros = time_scans(store, keys, at)?;
    let scan_heads_micros = time_scans(heads, keys, at)?;
    let mut rng = XorShift::new(5);
    let started = Instant::now();
    for _ in 0..GETS {
        let found = store.get(Column::Data, &STREAM, &key(rng.below(keys)), at)?;
        anyhow::ensure!(found.is_some(), "a key is missing");
    }
    Ok(Reads {
        versions,
        rows_stored: store.engine().estimated_rows(Column::Data),
        scan_micros,
        scan_heads_micros,
        get_micros: micros(started.elapsed()) / GETS as f64,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn disk_case(dir: &Path, args: &Args, retained: bool) -> anyhow::Result<Disk> {
    let store = MvccStore::new(RocksEngine::open(dir)?);
    let started = Instant::now();
    let mut batch = WriteBatch::with_capacity(1_000);
    for version in 1..=args.hot_writes {
        let value = version.to_le_bytes();
        stage_write(
            &mut batch,
            Column::Data,
            &STREAM,
            &key(version % HOT_KEYS),
            version,
            Some(&value),
        );
        if batch.ops.len() == 1_000 {
            store.write(std::mem::take(&mut batch), false)?;
        }
        if retained && version % RAISE_EVERY == 0 {
            store.advance_horizon(version.saturating_sub(args.keep_versions));
        }
    }
    store.write(batch, false)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes_as_written = dir_bytes(dir)?;
    store.engine().collect()?;
    Ok(Disk {
        retained,
        writes: args.hot_writes,
        bytes_as_written,
        bytes_after_collection: dir_bytes(dir)?,
        rows_collected: store.engine().collected_rows(),
        seconds,
    })
}

/// The figures of one queue run.
#[derive(Debug, Serialize)]
struct Queue {
    retained: bool,
    keys: u64,
    rows_left: u64,
    bytes: u64,
    deletes_swept: u64,
    bytes_after_compaction: u64,
}

/// Puts and deletes `keys` keys one after the other; with `retained`,
/// raises the horizon every [`RAISE_EVERY`] versions and sweeps.
fn queue_case(dir: &Path, args: &Args, retained: bool) -> anyhow::Result<Queue> {
    let store = MvccStore::new(RocksEngine::open(dir)?);
    let mut batch = WriteBatch::with_capacity(1_000);
    for n in 1..=args.queue_keys {
        let (put, delete) = (2 * n - 1, 2 * n);
        stage_write(
            &mut batch,
            Column::Data,
            &STREAM,
            &key(n),
            put,
            Some(&VALUE),
        );
        stage_write(&mut batch, Column::Data, &STREAM, &key(n), delete, None);
        if batch.ops.len() >= 1_000 {
            store.write(std::mem::take(&mut batch), false)?;
        }
        if retained && delete % RAISE_EVERY == 0 {
            store.advance_horizon(delete.saturating_sub(args.keep_versions));
            while store.sweep_deletes(ordo_kv::mvcc::MAX_SWEEP_BATCH)? > 0 {}
        }
    }
    store.write(batch, false)?;
    let rows_left = count_rows(store.engine(), Column::Data)?;
    let bytes = dir_bytes(dir)?;
    store.engine().collect()?;
    Ok(Queue {
        retained,
        keys: args.queue_keys,
        rows_left,
        bytes,
        deletes_swept: store.swept_deletes(),
        bytes_after_compaction: dir_bytes(dir)?,
    })
}

/// Rows a scan of `column` sees.
fn count_rows(engine: &RocksEngine, column: Column) -> anyhow::Result<u64> {
    let mut rows = 0;
    engine.scan_from(column, &[], &mut |_, _| {
        rows += 1;
        true
    })?;
    Ok(rows)
}

/// Bytes of the store's table files (`*.sst`) under `dir`: the data.
/// The write-ahead log and RocksDB's own info log come and go with
/// flushes and restarts, and are bounded apart from what is stored.
fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += match meta.is_dir() {
            true => dir_bytes(&entry.path())?,
            false if entry.path().extension().is_some_and(|e| e == "sst") => meta.len(),
            false => 0,
        };
    }
    Ok(total)
}

fn print_reads(case: &ReadCase) {
    let (l, k, c) = (&case.loaded, &case.compacted, &case.collected);
    println!(
        "{:>7} versions/key (loaded / compacted / collected): scan {:.1} / {:.1} / {:.1} us, through the heads {:.1} / {:.1} / {:.1} us; get {:.2} / {:.2} / {:.2} us; rows {} / {} / {} (load {:.1} s, collect {:.1} s, heads rebuilt in {:.3} s; every key pending: scan {:.1} us, pass {:.4} s)",
        l.versions,
        l.scan_micros,
        k.scan_micros,
        c.scan_micros,
        l.scan_heads_micros,
        k.scan_heads_micros,
        c.scan_heads_micros,
        l.get_micros,
        k.get_micros,
        c.get_micros,
        l.rows_stored,
        k.rows_stored,
        c.rows_stored,
        case.load_seconds,
        case.collect_seconds,
        case.rebuild_seconds,
        case.scan_all_pending_micros,
        case.pass_seconds
    );
}

fn print_disk(disk: &Disk) {
    println!(
        "{} writes to {HOT_KEYS} keys, {}: {:.1} MiB as written, {:.1} MiB after collection, {} rows collected ({:.1} s)",
        disk.writes,
        if disk.retained {
            "retained"
        } else {
            "everything kept"
        },
        disk.bytes_as_written as f64 / MIB,
        disk.bytes_after_collection as f64 / MIB,
        disk.rows_collected,
        disk.seconds
    );
}
