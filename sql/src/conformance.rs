//! The conformance suite every [`Store`] must pass (feature
//! `conformance`): what SQL relies on from the store under it.
//!
//! Snapshot reads (a version sees exactly the commits up to it), commits
//! that report their version and are visible at once to their committer,
//! scans in key order that page through a range once, and optimistic
//! conflicts on keys and on ranges (no phantoms). Each check panics naming
//! the rule it found broken.
//!
//! The checks write under keys of their own (`conformance/<check>/...`),
//! so a harness may hand the same store to every check. Implementations:
//! [`crate::LocalStore`] runs it in this module's tests, the node's store
//! in the server's tests.

use crate::store::{Commit, ReadSpan, Space, Store};
use ordo_txn::Outcome;

/// Runs every check, each on a store from `make`.
pub fn store<S: Store>(mut make: impl FnMut() -> S) {
    commits_report_their_version_and_are_visible_at_once(&make());
    reads_at_a_version_see_exactly_the_commits_up_to_it(&make());
    scans_follow_key_order_and_page_through_a_range_once(&make());
    a_key_written_after_it_was_read_is_a_conflict(&make());
    a_row_added_to_a_range_after_it_was_read_is_a_conflict(&make());
}

fn key(check: &str, name: &str) -> Vec<u8> {
    format!("conformance/{check}/{name}").into_bytes()
}

fn write(
    store: &impl Store,
    read_version: u64,
    reads: Vec<ReadSpan>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Outcome {
    let commit = Commit {
        read_version,
        reads,
        writes,
    };
    store
        .commit(commit)
        .expect("the store must decide a commit")
}

fn committed(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Committed { version } => version,
        other => panic!("a commit without rivals must commit, got {other:?}"),
    }
}

fn latest(store: &impl Store) -> u64 {
    store.latest_version().expect("latest version")
}

/// A commit reports a version above every earlier one, and its committer
/// reads its writes at once (no waiting for replication).
pub fn commits_report_their_version_and_are_visible_at_once(store: &impl Store) {
    let k = key("visible", "k");
    let before = latest(store);
    let v1 = committed(write(
        store,
        before,
        vec![],
        vec![(k.clone(), Some(b"1".to_vec()))],
    ));
    assert!(
        v1 > before,
        "a commit must get a version above the latest: {v1} <= {before}"
    );
    assert!(
        latest(store) >= v1,
        "the committer must see its commit as applied"
    );
    assert_eq!(
        store.get(&k, v1).expect("get"),
        Some(b"1".to_vec()),
        "a commit must be readable at its version"
    );
    let v2 = committed(write(store, v1, vec![], vec![(k.clone(), None)]));
    assert!(v2 > v1, "versions must increase with each commit");
    assert_eq!(
        store.get(&k, latest(store)).expect("get"),
        None,
        "a delete must hide the key"
    );
}

/// A read at version `v` sees each key as its last commit up to `v` left
/// it, whatever was committed later.
pub fn reads_at_a_version_see_exactly_the_commits_up_to_it(store: &impl Store) {
    let k = key("snapshot", "k");
    let start = latest(store);
    let v1 = committed(write(
        store,
        start,
        vec![],
        vec![(k.clone(), Some(b"old".to_vec()))],
    ));
    let v2 = committed(write(
        store,
        v1,
        vec![],
        vec![(k.clone(), Some(b"new".to_vec()))],
    ));
    let v3 = committed(write(store, v2, vec![], vec![(k.clone(), None)]));
    assert_eq!(
        store.get(&k, start).expect("get"),
        None,
        "a read before the first commit must not see it"
    );
    assert_eq!(
        store.get(&k, v1).expect("get"),
        Some(b"old".to_vec()),
        "a read at a version must ignore later commits"
    );
    assert_eq!(
        store.get(&k, v2).expect("get"),
        Some(b"new".to_vec()),
        "a read must see the last commit up to its version"
    );
    assert_eq!(
        store.get(&k, v3).expect("get"),
        None,
        "a read after a delete must not see the key"
    );
    let range = store.scan(Space::Own, (&k, None), v1, 10).expect("scan");
    assert_eq!(
        range.rows.first().map(|(_, v)| v.clone()),
        Some(b"old".to_vec()),
        "scans must read at their version too"
    );
}

/// Scans return live rows with `start <= key < end` in key order, at most
/// `limit` a page, and resuming pages through every row exactly once.
pub fn scans_follow_key_order_and_page_through_a_range_once(store: &impl Store) {
    let names = ["e", "a", "d", "b", "c"];
    let writes = names
        .iter()
        .map(|n| (key("scan", n), Some(n.as_bytes().to_vec())))
        .collect();
    let at = committed(write(store, latest(store), vec![], writes));
    let gone = committed(write(store, at, vec![], vec![(key("scan", "d"), None)]));
    let (start, end) = (key("scan", "b"), key("scan", "e"));
    let mut rows = Vec::new();
    let mut from = start.clone();
    for _ in 0..10 {
        let page = store
            .scan(Space::Own, (&from, Some(&end)), gone, 1)
            .expect("scan");
        assert!(
            page.rows.len() <= 1,
            "a page must hold at most `limit` rows"
        );
        rows.extend(page.rows);
        match page.resume {
            Some(next) => from = next,
            None => break,
        }
    }
    let want: Vec<_> = ["b", "c"]
        .iter()
        .map(|n| (key("scan", n), n.as_bytes().to_vec()))
        .collect();
    assert_eq!(
        rows, want,
        "a paged scan must return each live row in range once, in key order"
    );
}

/// Two transactions read a key at one snapshot and both write it: the
/// first commits, the second is a conflict and changes nothing.
pub fn a_key_written_after_it_was_read_is_a_conflict(store: &impl Store) {
    let k = key("conflict", "k");
    let snapshot = committed(write(
        store,
        latest(store),
        vec![],
        vec![(k.clone(), Some(b"0".to_vec()))],
    ));
    let read = vec![ReadSpan::Key(k.clone())];
    let first = write(
        store,
        snapshot,
        read.clone(),
        vec![(k.clone(), Some(b"first".to_vec()))],
    );
    committed(first);
    let second = write(
        store,
        snapshot,
        read,
        vec![(k.clone(), Some(b"second".to_vec()))],
    );
    assert!(
        matches!(second, Outcome::Conflict { .. }),
        "a write-write race on a read key must be a conflict: {second:?}"
    );
    assert_eq!(
        store.get(&k, latest(store)).expect("get"),
        Some(b"first".to_vec()),
        "a conflicting commit must change nothing"
    );
}

/// A transaction that read a range conflicts with a later commit that adds
/// a row inside it (no phantoms), and not with one outside it.
pub fn a_row_added_to_a_range_after_it_was_read_is_a_conflict(store: &impl Store) {
    let (start, end) = (key("phantom", "b"), key("phantom", "d"));
    let snapshot = latest(store);
    let outside = write(
        store,
        snapshot,
        vec![],
        vec![(key("phantom", "x"), Some(b"1".to_vec()))],
    );
    committed(outside);
    let range = vec![ReadSpan::Range {
        start: start.clone(),
        end: Some(end.clone()),
    }];
    let summary = vec![(key("phantom", "summary"), Some(b"0 rows".to_vec()))];
    let unaffected = write(store, snapshot, range.clone(), summary.clone());
    committed(unaffected);
    let reread = latest(store);
    let inside = write(
        store,
        reread,
        vec![],
        vec![(key("phantom", "c"), Some(b"1".to_vec()))],
    );
    committed(inside);
    let stale = write(store, reread, range, summary);
    assert!(
        matches!(stale, Outcome::Conflict { .. }),
        "a row added inside a read range must be a conflict: {stale:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;
    use crate::error::SqlError;
    use crate::store::ScanPage;
    use ordo_kv::MemEngine;

    #[test]
    fn the_local_store_passes() {
        store(|| LocalStore::open(MemEngine::new()).expect("opens"));
    }

    /// A store that reads the newest state whatever version it is asked for.
    struct IgnoresVersions(LocalStore<MemEngine>);

    impl Store for IgnoresVersions {
        fn latest_version(&self) -> Result<u64, SqlError> {
            self.0.latest_version()
        }
        fn get(&self, key: &[u8], _at: u64) -> Result<Option<Vec<u8>>, SqlError> {
            self.0.get(key, self.0.latest_version()?)
        }
        fn scan(
            &self,
            space: Space,
            range: (&[u8], Option<&[u8]>),
            _at: u64,
            limit: usize,
        ) -> Result<ScanPage, SqlError> {
            self.0.scan(space, range, self.0.latest_version()?, limit)
        }
        fn commit(&self, commit: Commit) -> Result<Outcome, SqlError> {
            self.0.commit(commit)
        }
    }

    #[test]
    #[should_panic(expected = "a read at a version must ignore later commits")]
    fn a_store_that_ignores_the_read_version_fails_the_suite() {
        store(|| IgnoresVersions(LocalStore::open(MemEngine::new()).expect("opens")));
    }
}
