//! `ordo-bench chain`: the EVM sequencer on a local anvil. For each block
//! time and each count of concurrent appenders, a fresh anvil and contract,
//! appends for a fixed time, then: confirmed headers per second, headers
//! per transaction and gas per header. One appender sends one header per
//! transaction; more share transactions (the sequencer batches what queues
//! while a transaction is out).

use ordo_evm::devchain::{Anvil, npm_anvil};
use ordo_evm::{EvmSequencer, EvmStats};
use ordo_log::{Sequencer, stress};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One measured cell.
#[derive(Debug, serde::Serialize)]
pub struct ChainCell {
    /// anvil's block time in seconds; 0 mines a block per transaction.
    pub block_time: u64,
    /// Concurrent appenders.
    pub appenders: u64,
    /// Headers confirmed while measuring.
    pub headers: u64,
    /// Confirmed headers per second.
    pub headers_per_second: f64,
    /// Headers per chain transaction.
    pub headers_per_transaction: f64,
    /// Gas per header.
    pub gas_per_header: f64,
    /// Median latency of one append, milliseconds.
    pub p50_ms: f64,
}

/// Measures every (block time, appenders) pair for `seconds` each.
pub async fn measure(
    block_times: &[u64],
    appenders: &[u64],
    seconds: u64,
) -> anyhow::Result<Vec<ChainCell>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cells = Vec::new();
    for &block_time in block_times {
        for &count in appenders {
            let block = block_time.to_string();
            let args: Vec<&str> = match block_time {
                0 => Vec::new(),
                _ => vec!["--block-time", &block],
            };
            let anvil = Anvil::start(&npm_anvil(&root), &args);
            let mut settings = anvil.deploy().await;
            settings.poll_interval = Duration::from_millis(if block_time == 0 { 20 } else { 200 });
            let sequencer = Arc::new(EvmSequencer::open(settings, Some(Anvil::signer(0))).await?);
            cells.push(cell(&sequencer, block_time, count, seconds).await?);
        }
    }
    Ok(cells)
}

async fn cell(
    sequencer: &Arc<EvmSequencer>,
    block_time: u64,
    appenders: u64,
    seconds: u64,
) -> anyhow::Result<ChainCell> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..appenders)
        .map(|task| {
            let sequencer = sequencer.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    sequencer.append(stress::descriptor(1, task, i)).await?;
                    latencies.push(started.elapsed());
                    i += 1;
                }
                Ok::<_, ordo_log::SequencerError>(latencies)
            })
        })
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let stats: Arc<EvmStats> = sequencer.stats();
    let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
    let headers = sequencer.tail();
    Ok(ChainCell {
        block_time,
        appenders,
        headers,
        headers_per_second: headers as f64 / elapsed,
        headers_per_transaction: read(&stats.headers_sent) / read(&stats.transactions).max(1.0),
        gas_per_header: read(&stats.gas_used) / read(&stats.headers_sent).max(1.0),
        p50_ms: latencies
            .get(latencies.len() / 2)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    })
}

/// The cells as a Markdown table.
pub fn table(cells: &[ChainCell]) -> String {
    let mut out = String::from(
        "| block time | appenders | headers | headers/s | headers/tx | gas/header | p50 ms |\n|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let block = match c.block_time {
            0 => "instant".to_string(),
            s => format!("{s} s"),
        };
        out.push_str(&format!(
            "| {block} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} |\n",
            c.appenders,
            c.headers,
            c.headers_per_second,
            c.headers_per_transaction,
            c.gas_per_header,
            c.p50_ms
        ));
    }
    out
}
