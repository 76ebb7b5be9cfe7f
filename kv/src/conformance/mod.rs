//! The conformance suite every [`Engine`] must pass (feature
//! `conformance`).
//!
//! Random batches of puts and deletes over every column, then every read
//! the engine offers (point, batched, ordered scan), compared with a sorted
//! map; across a reopen where the engine keeps its files. Then the MVCC
//! layer over the engine: reads at every version and paged scans against a
//! model of every version written, with collection interleaved (see
//! [`crate::retention`]), and through the heads column with its passes and
//! rebuilds interleaved (see [`crate::heads`]). Each check panics naming the rule it
//! found broken (proptest shrinks the failing input first).
//!
//! A backend runs it through an [`EngineHarness`]; `kv/tests` holds the
//! harnesses of [`crate::MemEngine`] and [`crate::RocksEngine`].

mod harness;
mod heads;
mod history;
mod plain;
mod retention;

pub use harness::{CASES, EngineHarness, MemHarness};
pub use heads::scans_through_the_heads_match_the_model;
pub use plain::{
    a_seeking_scan_moves_forward_as_its_visitor_says, batches_read_back_like_a_sorted_map,
    mvcc_reads_match_every_version_written, scan_pages_respect_the_byte_bound_but_always_progress,
};
pub use retention::{
    a_deleted_key_with_a_long_history_is_swept_whole,
    collection_keeps_every_answer_at_or_above_the_horizon,
    sweeping_removes_what_each_delete_the_horizon_passed_shadows,
};

use std::cell::RefCell;

/// Runs every check against engines from `harness`.
pub fn engine<H: EngineHarness>(harness: H) {
    let harness = RefCell::new(harness);
    batches_read_back_like_a_sorted_map(&harness);
    mvcc_reads_match_every_version_written(&harness);
    scan_pages_respect_the_byte_bound_but_always_progress(&mut *harness.borrow_mut());
    a_seeking_scan_moves_forward_as_its_visitor_says(&mut *harness.borrow_mut());
    collection_keeps_every_answer_at_or_above_the_horizon(&harness);
    sweeping_removes_what_each_delete_the_horizon_passed_shadows(&harness);
    a_deleted_key_with_a_long_history_is_swept_whole(&mut *harness.borrow_mut());
    scans_through_the_heads_match_the_model(&harness);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Engine, EngineError, MemEngine, WriteBatch};

    /// An engine whose batched get answers in key order, not in the order
    /// asked (the mistake a sorted multi-get invites).
    struct SortsBatchedGets(MemEngine);

    impl Engine for SortsBatchedGets {
        fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
            self.0.get(column, key)
        }
        fn get_many(
            &self,
            column: Column,
            keys: &[Vec<u8>],
        ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
            let mut sorted = keys.to_vec();
            sorted.sort();
            sorted.iter().map(|key| self.0.get(column, key)).collect()
        }
        fn scan_from(
            &self,
            column: Column,
            from: &[u8],
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), EngineError> {
            self.0.scan_from(column, from, visit)
        }
        fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
            self.0.write(batch, sync)
        }
    }

    struct Broken;

    impl EngineHarness for Broken {
        type Engine = SortsBatchedGets;
        fn fresh(&mut self) -> SortsBatchedGets {
            SortsBatchedGets(MemEngine::new())
        }
        fn reopen(&mut self, _engine: SortsBatchedGets) -> Option<SortsBatchedGets> {
            None
        }
    }

    #[test]
    #[should_panic(expected = "get_many must answer in request order")]
    fn an_engine_that_reorders_batched_gets_fails_the_suite() {
        engine(Broken);
    }
}
