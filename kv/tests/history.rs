//! Scans pass a key's long history with a seek instead of stepping over
//! every version: the entries a scan visits follow the rows it returns and
//! the keys it passes, and what it returns is what an exhaustive walk of
//! the versions would return.

use ordo_kv::mvcc::SKIPS_BEFORE_SEEK;
use ordo_kv::{Column, Engine, EngineError, MemEngine, MvccStore, WriteBatch};
use std::sync::atomic::{AtomicUsize, Ordering};

const STREAM: [u8; 32] = [7; 32];

/// An engine that counts the entries scans hand to their visitors.
#[derive(Default)]
struct Counting {
    inner: MemEngine,
    visited: AtomicUsize,
}

impl Engine for Counting {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(column, key)
    }

    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.inner.scan_from(column, from, &mut |k, v| {
            self.visited.fetch_add(1, Ordering::Relaxed);
            visit(k, v)
        })
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        self.inner.write(batch, sync)
    }
}

/// Keys `a`, `hot`, `z`; `hot` written at every version 1..=`versions`
/// (deleted at every tenth), the others once at version 1.
fn store(versions: u64) -> MvccStore<Counting> {
    let store = MvccStore::new(Counting::default());
    let mut batch = WriteBatch::default();
    for (key, version) in [(&b"a"[..], 1), (b"z", 1)] {
        ordo_kv::mvcc::stage_write(&mut batch, Column::Data, &STREAM, key, version, Some(b"v"));
    }
    for version in 1..=versions {
        let value = version.to_string();
        let value = (!version.is_multiple_of(10)).then_some(value.as_bytes());
        ordo_kv::mvcc::stage_write(&mut batch, Column::Data, &STREAM, b"hot", version, value);
    }
    store.write(batch, false).expect("writes");
    store
}

/// What the scan at `at` must return, from the writes themselves.
fn expected(versions: u64, at: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = vec![(b"a".to_vec(), b"v".to_vec())];
    let newest = at.min(versions);
    if newest >= 1 && !newest.is_multiple_of(10) {
        rows.push((b"hot".to_vec(), newest.to_string().into_bytes()));
    }
    rows.push((b"z".to_vec(), b"v".to_vec()));
    rows
}

#[test]
fn a_scan_at_any_version_returns_what_the_history_says() {
    let versions = 1_000;
    let store = store(versions);
    for at in [1, 2, 9, 10, 11, 500, 990, 999, 1_000, 5_000] {
        let page = store
            .scan(&STREAM, b"", None, at, 100, 1 << 20)
            .expect("scans");
        let rows: Vec<_> = page.rows.into_iter().map(|r| (r.key, r.value)).collect();
        assert_eq!(rows, expected(versions, at), "at {at}");
    }
}

#[test]
fn a_key_with_a_long_history_costs_a_scan_a_few_entries_not_all_its_versions() {
    let versions = 100_000;
    let store = store(versions);
    for at in [1, 49_999, 50_000, versions] {
        store.engine().visited.store(0, Ordering::Relaxed);
        let page = store
            .scan(&STREAM, b"", None, at, 100, 1 << 20)
            .expect("scans");
        assert_eq!(page.rows.len(), expected(versions, at).len(), "at {at}");
        let visited = store.engine().visited.load(Ordering::Relaxed);
        // Each key: its skipped versions up to the seek threshold, twice
        // at most (newer ones, then older ones), and the version returned.
        let bound = 3 * (2 * (SKIPS_BEFORE_SEEK + 1) + 1);
        assert!(
            visited <= bound,
            "{visited} entries visited at {at} (bound {bound})"
        );
    }
}
