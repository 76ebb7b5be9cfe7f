//! SQL point reads and single-row inserts over a RocksDB-backed store.
//!
//! `sql/point_select/N`: `SELECT ... WHERE id = ?` on a table of N rows
//! (10 K, 100 K, 1 M), through the whole SQL path: parse, plan (the
//! catalog read), one primary-key get, projection. The primary key makes it
//! one store read at any table size, so the latency should stay flat as N
//! grows; a full scan would grow a hundredfold.
//!
//! `sql/insert_one`: an autocommitted single-row INSERT: parse, plan, the
//! duplicate-key read, and the commit through replay into RocksDB (the
//! in-process store applies each commit as its own log entry).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ordo_bench as _; // links the benchmarks' allocator (jemalloc, as in the ordo binary)
use ordo_kv::RocksEngine;
use ordo_sql::{LocalStore, Session};
use std::fmt::Write as _;

/// Rows per INSERT statement while loading (under the per-transaction write limit).
const LOAD_BATCH: u64 = 1000;

fn session(dir: &std::path::Path) -> Session<LocalStore<RocksEngine>> {
    let engine = RocksEngine::open(dir).expect("open RocksDB");
    let mut session = Session::new(LocalStore::open(engine).expect("store"));
    session
        .execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INT)")
        .expect("create");
    session
}

fn load(session: &mut Session<LocalStore<RocksEngine>>, from: u64, to: u64) {
    let mut start = from;
    while start < to {
        let end = (start + LOAD_BATCH).min(to);
        let mut sql = String::from("INSERT INTO users VALUES ");
        for id in start..end {
            let sep = if id == start { "" } else { ", " };
            let _ = write!(sql, "{sep}({id}, 'user-{id}', {})", id % 1000);
        }
        session.execute(&sql).expect("load");
        start = end;
    }
}

fn point_select(c: &mut Criterion) {
    let mut group = c.benchmark_group("sql");
    group.sample_size(30);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let mut session = session(dir.path());
    let mut loaded = 0;
    for rows in [10_000u64, 100_000, 1_000_000] {
        load(&mut session, loaded, rows);
        loaded = rows;
        let mut rng = ordo_txn::testkit::XorShift::new(0x9e37_79b9_7f4a_7c15);
        group.bench_with_input(BenchmarkId::new("point_select", rows), &rows, |b, &rows| {
            b.iter(|| {
                let id = rng.below(rows);
                let results = session
                    .execute(&format!("SELECT name, score FROM users WHERE id = {id}"))
                    .expect("select");
                assert_eq!(results[0].rows.len(), 1);
            })
        });
    }
    let mut id = loaded;
    group.bench_function("insert_one", |b| {
        b.iter(|| {
            id += 1;
            session
                .execute(&format!("INSERT INTO users VALUES ({id}, 'new-{id}', 1)"))
                .expect("insert");
        })
    });
    group.finish();
}

criterion_group!(benches, point_select);
criterion_main!(benches);
