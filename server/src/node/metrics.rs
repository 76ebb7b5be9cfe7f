//! Prometheus metrics over plain HTTP (`GET /metrics`).
//!
//! Counters and histograms are atomics updated on the commit path; the
//! page is rendered on request in Prometheus' text format. Rates such as
//! commits per second are the scraper's job: `rate(ordo_commits_total[1m])`.

use ordo_log::stats::{Histogram, HistogramSnapshot, LATENCY_BOUNDS_MICROS};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bucket bounds for transactions per log entry.
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

/// Largest HTTP request head the metrics endpoint reads.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a metrics client may take to send its request.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the commit path counts.
#[derive(Debug)]
pub struct Metrics {
    commits: AtomicU64,
    /// Signatures the replica recovered (not vouched for by this node).
    recoveries: AtomicU64,
    /// Entries the replica passed over unread: submitted by an account
    /// that may not write the log (a log a chain orders).
    skipped_entries: AtomicU64,
    /// Blobs recorded through this node, and their bytes.
    da_blobs: AtomicU64,
    da_bytes: AtomicU64,
    /// Dispersals that failed after they were accepted.
    da_failed: AtomicU64,
    /// Bytes of blobs retrieved through this node.
    da_retrieved_bytes: AtomicU64,
    aborts: Mutex<BTreeMap<&'static str, u64>>,
    duplicates: Mutex<BTreeMap<&'static str, u64>>,
    commit_micros: Histogram,
    batch_txns: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            skipped_entries: AtomicU64::new(0),
            da_blobs: AtomicU64::new(0),
            da_bytes: AtomicU64::new(0),
            da_failed: AtomicU64::new(0),
            da_retrieved_bytes: AtomicU64::new(0),
            aborts: Mutex::new(BTreeMap::new()),
            duplicates: Mutex::new(BTreeMap::new()),
            commit_micros: Histogram::new(LATENCY_BOUNDS_MICROS),
            batch_txns: Histogram::new(BATCH_BOUNDS),
        }
    }
}

/// Gauges read from the node when the page is rendered.
#[derive(Debug, Clone)]
pub struct NodeGauges {
    /// Committed log entries.
    pub log_tail: u64,
    /// Entries applied to the state.
    pub applied_seq: u64,
    /// Newest applied commit version.
    pub applied_version: u64,
    /// The fsync latency of the node's own log, microseconds (`None` when
    /// the log lives on other machines).
    pub fsync_micros: Option<HistogramSnapshot>,
    /// A cluster gateway's two round trips per entry, microseconds: shards
    /// to their write quorum, then the header to the sequencer.
    pub spread_micros: Option<(HistogramSnapshot, HistogramSnapshot)>,
    /// The state's cache of newest versions.
    pub newest: ordo_kv::NewestStats,
    /// The state's heads column (`None`: the store keeps none).
    pub heads: Option<ordo_kv::HeadsStats>,
}

impl Metrics {
    /// Records a decided commit: its outcome and how long the caller waited.
    /// A resend is counted apart, by its original's outcome: it is neither
    /// a new commit nor an abort.
    pub fn record_decision(&self, outcome: &ordo_txn::Outcome, waited: std::time::Duration) {
        let count = |map: &Mutex<BTreeMap<&'static str, u64>>, kind| {
            *map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(kind)
                .or_default() += 1;
        };
        match outcome {
            ordo_txn::Outcome::Committed { .. } => {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            ordo_txn::Outcome::Duplicate { original } => count(&self.duplicates, original.kind()),
            other => count(&self.aborts, other.kind()),
        }
        self.commit_micros
            .observe(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records `count` signature recoveries the replica is about to make.
    pub fn record_recoveries(&self, count: usize) {
        self.recoveries.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Records an entry the replica passed over unread.
    pub fn record_skipped_entry(&self) {
        self.skipped_entries.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a blob of `bytes` recorded through this node.
    pub fn count_da_dispersed(&self, bytes: u64) {
        self.da_blobs.fetch_add(1, Ordering::Relaxed);
        self.da_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records a dispersal that failed after it was accepted.
    pub fn count_da_failed(&self) {
        self.da_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `bytes` of a blob sent to a retriever.
    pub fn count_da_retrieved(&self, bytes: u64) {
        self.da_retrieved_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records the size of a batch appended to the log.
    pub fn record_batch(&self, transactions: usize) {
        self.batch_txns.observe(transactions as u64);
    }

    /// The metrics page.
    pub fn render(&self, node: &NodeGauges) -> String {
        let mut out = String::new();
        self.render_totals(&mut out);
        self.render_da(&mut out);
        self.render_decisions(&mut out);
        self.render_latencies(node, &mut out);
        positions(&mut out, node);
        newest_cache(&mut out, &node.newest);
        if let Some(heads) = &node.heads {
            heads_column(&mut out, heads);
        }
        out
    }

    /// Transactions committed, and the replica's own work beside them.
    fn render_totals(&self, out: &mut String) {
        counter(
            out,
            "ordo_commits_total",
            "Transactions committed through this node.",
            self.commits.load(Ordering::Relaxed),
        );
        counter(
            out,
            "ordo_replica_signature_recoveries_total",
            "Signatures the replica recovered: those this node neither verified at ingress nor made itself.",
            self.recoveries.load(Ordering::Relaxed),
        );
        counter(
            out,
            "ordo_replica_entries_skipped_total",
            "Entries passed over unread because their chain-authenticated submitter may not write the log.",
            self.skipped_entries.load(Ordering::Relaxed),
        );
    }

    /// Aborts by reason and duplicates by their first decision.
    fn render_decisions(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP ordo_aborts_total Transactions decided against, by reason.\n# TYPE ordo_aborts_total counter"
        );
        for (reason, count) in self.aborts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "ordo_aborts_total{{reason=\"{reason}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP ordo_duplicates_total Resent transactions answered with their first decision, by that decision.\n# TYPE ordo_duplicates_total counter"
        );
        for (original, count) in self
            .duplicates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "ordo_duplicates_total{{original=\"{original}\"}} {count}"
            );
        }
    }

    /// Commit latency, the write path's own steps, and batch sizes.
    fn render_latencies(&self, node: &NodeGauges, out: &mut String) {
        seconds_histogram(
            out,
            "ordo_commit_latency_seconds",
            "Time from commit request to decision.",
            &self.commit_micros.snapshot(),
        );
        if let Some((store, order)) = &node.spread_micros {
            seconds_histogram(
                out,
                "ordo_gateway_shard_store_seconds",
                "Time to make an entry's shards durable on the write quorum.",
                store,
            );
            seconds_histogram(
                out,
                "ordo_gateway_header_order_seconds",
                "Time for the sequencer to order an entry's header.",
                order,
            );
        }
        if let Some(fsync) = &node.fsync_micros {
            seconds_histogram(
                out,
                "ordo_fsync_latency_seconds",
                "Time of each group fsync of the node's own log.",
                fsync,
            );
        }
        histogram(
            out,
            "ordo_batch_transactions",
            "Transactions per appended log entry.",
            &self.batch_txns.snapshot(),
            |b| b.to_string(),
            |s| s.to_string(),
        );
    }
}

/// Where the replica stands against the log.
fn positions(out: &mut String, node: &NodeGauges) {
    gauge(
        out,
        "ordo_log_tail_entries",
        "Committed log entries.",
        node.log_tail,
    );
    gauge(
        out,
        "ordo_applied_entries",
        "Log entries applied to the state.",
        node.applied_seq,
    );
    gauge(
        out,
        "ordo_applied_version",
        "Newest applied commit version.",
        node.applied_version,
    );
    gauge(
        out,
        "ordo_replay_lag_entries",
        "Committed entries not applied yet.",
        node.log_tail.saturating_sub(node.applied_seq),
    );
}

impl Metrics {
    fn render_da(&self, out: &mut String) {
        let counters = [
            (
                "ordo_da_blobs_total",
                "Blobs recorded through this node.",
                &self.da_blobs,
            ),
            (
                "ordo_da_dispersed_bytes_total",
                "Bytes of the blobs recorded through this node.",
                &self.da_bytes,
            ),
            (
                "ordo_da_failed_total",
                "Dispersals that failed after this node accepted them.",
                &self.da_failed,
            ),
            (
                "ordo_da_retrieved_bytes_total",
                "Bytes of blobs retrieved through this node.",
                &self.da_retrieved_bytes,
            ),
        ];
        for (name, help, value) in counters {
            counter(out, name, help, value.load(Ordering::Relaxed));
        }
    }
}

fn newest_cache(out: &mut String, stats: &ordo_kv::NewestStats) {
    counter(
        out,
        "ordo_newest_cache_hits_total",
        "Point reads answered from the cache of newest versions.",
        stats.hits,
    );
    counter(
        out,
        "ordo_newest_cache_misses_total",
        "Point reads that went to the state store.",
        stats.misses,
    );
    gauge(
        out,
        "ordo_newest_cache_entries",
        "Keys held in the cache of newest versions.",
        stats.entries,
    );
    gauge(
        out,
        "ordo_newest_cache_bytes",
        "Bytes charged to the cache of newest versions.",
        stats.bytes,
    );
}

fn heads_column(out: &mut String, stats: &ordo_kv::HeadsStats) {
    let covered = match stats.phase {
        ordo_kv::HeadsPhase::Ready { covered } => covered,
        ordo_kv::HeadsPhase::Stale | ordo_kv::HeadsPhase::Rebuilding => 0,
    };
    gauge(
        out,
        "ordo_heads_covered_version",
        "The version the heads column covers (0 while stale or rebuilding): scans at or above it skip history.",
        covered,
    );
    gauge(
        out,
        "ordo_heads_pending_keys",
        "Keys written since the heads column's last pass.",
        stats.pending_keys,
    );
    counter(
        out,
        "ordo_heads_rebuilds_total",
        "Rebuilds of the heads column since the node started.",
        stats.rebuilds,
    );
}

/// Appends the log's retention and the store's collection.
pub fn render_retention(retention: &ordo_proto::v1::RetentionStatus, out: &mut String) {
    gauge(
        out,
        "ordo_retention_horizon",
        "The oldest version reads, snapshots and watch resumes are answered at.",
        retention.horizon,
    );
    counter(
        out,
        "ordo_collected_rows_total",
        "Rows the store removed since the node started: versions the horizon shadowed, change records below it.",
        retention.collected_rows,
    );
    counter(
        out,
        "ordo_swept_deletes_total",
        "Deletes below the horizon whose key's older versions, and the delete itself, were swept away.",
        retention.swept_deletes,
    );
    gauge(
        out,
        "ordo_stored_versions",
        "About how many versioned rows (every version of every key) the store holds.",
        retention.stored_versions,
    );
}

/// The counters of a log ordered on a chain (`sequencer = "evm"`).
pub fn render_chain(stats: &ordo_evm::EvmStats, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    let gauges = [
        (
            "ordo_chain_head_block",
            "The chain's head at the last poll.",
            &stats.chain_head,
        ),
        (
            "ordo_chain_confirmed_block",
            "The newest block whose headers were taken.",
            &stats.confirmed_block,
        ),
        (
            "ordo_chain_pending_appends",
            "Appends waiting to be sent or confirmed.",
            &stats.pending_appends,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(out, name, help, value.load(Relaxed));
    }
    let counters = [
        (
            "ordo_chain_transactions_total",
            "Append transactions that landed.",
            &stats.transactions,
        ),
        (
            "ordo_chain_headers_sent_total",
            "Headers those transactions carried.",
            &stats.headers_sent,
        ),
        (
            "ordo_chain_gas_used_total",
            "Gas those transactions used.",
            &stats.gas_used,
        ),
        (
            "ordo_chain_gwei_spent_total",
            "What they cost, in gwei.",
            &stats.gwei_spent,
        ),
        (
            "ordo_chain_fee_bumps_total",
            "Pending append transactions signed again with higher fees (stuck or underpriced).",
            &stats.fee_bumps,
        ),
        (
            "ordo_chain_log_queries_total",
            "eth_getLogs calls made to follow the contract.",
            &stats.log_queries,
        ),
    ];
    for (name, help, value) in counters {
        counter(out, name, help, value.load(Relaxed));
    }
}

pub(crate) fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

pub(crate) fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn micros_as_seconds(micros: u64) -> String {
    format!("{}", micros as f64 / 1e6)
}

fn seconds_histogram(out: &mut String, name: &str, help: &str, snapshot: &HistogramSnapshot) {
    histogram(
        out,
        name,
        help,
        snapshot,
        micros_as_seconds,
        micros_as_seconds,
    );
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    snapshot: &HistogramSnapshot,
    bound: impl Fn(u64) -> String,
    sum: impl Fn(u64) -> String,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, count) in snapshot.counts.iter().enumerate() {
        cumulative += count;
        let le = snapshot
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |&b| bound(b));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{name}_sum {}\n{name}_count {cumulative}",
        sum(snapshot.sum)
    );
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    page: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let page = page.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(socket, page.as_ref()).await {
                tracing::debug!(%error, "metrics request failed");
            }
        });
    }
}

async fn answer(
    mut socket: tokio::net::TcpStream,
    page: &(dyn Fn() -> String + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read_head)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let (status, body) =
        if first_line.starts_with(b"GET /metrics ") || first_line.starts_with(b"GET /metrics?") {
            ("200 OK", page())
        } else {
            (
                "404 Not Found",
                "only GET /metrics is served here\n".to_string(),
            )
        };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        use ordo_txn::Outcome;
        let committed = Outcome::Committed { version: 3 };
        let conflict = Outcome::Conflict {
            stream: [1; 32],
            key: b"k".to_vec(),
        };
        let resent = Outcome::Duplicate {
            original: Box::new(committed.clone()),
        };
        let micros = std::time::Duration::from_micros;
        metrics.record_decision(&committed, micros(700));
        metrics.record_decision(&conflict, micros(90));
        metrics.record_decision(&resent, micros(80));
        metrics.record_batch(3);
        let gauges = NodeGauges {
            log_tail: 5,
            applied_seq: 4,
            applied_version: 9,
            fsync_micros: Some(Histogram::new(LATENCY_BOUNDS_MICROS).snapshot()),
            spread_micros: None,
            newest: ordo_kv::NewestStats {
                entries: 2,
                bytes: 300,
                hits: 7,
                misses: 1,
            },
            heads: Some(ordo_kv::HeadsStats {
                phase: ordo_kv::HeadsPhase::Ready { covered: 8 },
                pending_keys: 1,
                passes: 3,
                rebuilds: 0,
            }),
        };
        let page = metrics.render(&gauges);
        assert!(page.contains("ordo_commits_total 1\n"), "{page}");
        assert!(
            page.contains("ordo_aborts_total{reason=\"conflict\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("ordo_duplicates_total{original=\"committed\"} 1\n"),
            "a resend of a committed transaction is neither a commit nor an abort: {page}"
        );
        assert!(!page.contains("reason=\"duplicate\""), "{page}");
        assert!(
            page.contains("ordo_commit_latency_seconds_bucket{le=\"0.001\"} 3\n"),
            "{page}"
        );
        assert!(
            page.contains("ordo_commit_latency_seconds_count 3\n"),
            "{page}"
        );
        assert!(
            page.contains("ordo_batch_transactions_bucket{le=\"4\"} 1\n"),
            "{page}"
        );
        assert!(page.contains("ordo_replay_lag_entries 1\n"), "{page}");
        assert!(page.contains("ordo_newest_cache_hits_total 7\n"), "{page}");
        assert!(page.contains("ordo_newest_cache_entries 2\n"), "{page}");
        assert!(page.contains("ordo_heads_covered_version 8\n"), "{page}");
        assert!(page.contains("ordo_heads_pending_keys 1\n"), "{page}");
    }
}
