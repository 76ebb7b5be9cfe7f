//! The repair role: walks the committed header log and restores every
//! shard missing from, or damaged at, its placement home.
//!
//! Each pass reads the headers from the sequencer (through
//! [`RemoteSequencer`]) and repairs each entry with
//! [`StorageSet::repair_entry`]. A pass scans the whole log: simple and
//! bounded by the log's size; a cursor of entries known healthy is the next
//! step once logs grow long. Passes are [`REPAIR_PAUSE`] apart.

use crate::node::storage_set::StorageSet;
use ordo_log::Sequencer;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_raft::RemoteSequencer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Pause between repair passes.
pub const REPAIR_PAUSE: Duration = Duration::from_secs(2);

/// What repair counts, for the metrics page.
#[derive(Debug, Default)]
pub struct RepairCounters {
    /// Passes over the whole log completed.
    pub passes: AtomicU64,
    /// Shards rebuilt and stored at their homes.
    pub restored: AtomicU64,
    /// Entries found with a missing or damaged shard in the last pass.
    pub under_replicated: AtomicU64,
    /// Entries whose repair failed in the last pass (too few shards left).
    pub failed: AtomicU64,
}

impl RepairCounters {
    /// The counters in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        use crate::node::metrics::{counter, gauge};
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            out,
            "ordo_repair_passes_total",
            "Repair passes over the whole log.",
            read(&self.passes),
        );
        counter(
            out,
            "ordo_repair_shards_restored_total",
            "Shards rebuilt and stored at their homes.",
            read(&self.restored),
        );
        gauge(
            out,
            "ordo_repair_under_replicated_entries",
            "Entries missing a shard at its home in the last pass.",
            read(&self.under_replicated),
        );
        gauge(
            out,
            "ordo_repair_failed_entries",
            "Entries the last pass could not repair.",
            read(&self.failed),
        );
    }
}

/// Runs repair passes until the task is dropped.
pub async fn run(
    sequencer: Arc<RemoteSequencer>,
    storage: StorageSet,
    counters: Arc<RepairCounters>,
) {
    loop {
        let (broken, failed) = pass(&sequencer, &storage, &counters).await;
        counters.under_replicated.store(broken, Ordering::Relaxed);
        counters.failed.store(failed, Ordering::Relaxed);
        counters.passes.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(REPAIR_PAUSE).await;
    }
}

/// One pass: (entries found broken, entries that could not be repaired).
async fn pass(
    sequencer: &RemoteSequencer,
    storage: &StorageSet,
    counters: &RepairCounters,
) -> (u64, u64) {
    let (mut broken, mut failed, mut from) = (0, 0, 0);
    let tail = sequencer.tail();
    while from < tail {
        let headers = match sequencer.read(from, MAX_READ_BATCH).await {
            Ok(headers) if !headers.is_empty() => headers,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, from, "repair could not read headers");
                return (broken, failed + 1);
            }
        };
        from += headers.len() as u64;
        for header in headers {
            let entry = &header.entry;
            match storage
                .repair_entry(&entry.commitment, &entry.geometry)
                .await
            {
                Ok(repaired) if repaired.restored.is_empty() => {}
                Ok(repaired) => {
                    broken += 1;
                    counters
                        .restored
                        .fetch_add(repaired.restored.len() as u64, Ordering::Relaxed);
                    tracing::info!(seq = header.seq, shards = ?repaired.restored, "repaired");
                }
                Err(e) => {
                    broken += 1;
                    failed += 1;
                    tracing::warn!(seq = header.seq, error = %e, "entry not repaired");
                }
            }
        }
    }
    (broken, failed)
}
