//! `ordo-da-bench`: blobs through a real `ordo dev`, end to end.
//!
//! For each size (`--sizes`, MiB; default 1 and 32), `--runs` blobs of
//! fresh random bytes are dispersed one after another by one client, and
//! each is timed: the upload (until the node holds the blob and its KZG
//! commitment, the `Disperse` call), the record (until `Status` says
//! `FINALIZED`, polled every 20 ms), and the certificate (fetched). Each
//! is then retrieved (parts rebuilt from verified shards, the whole
//! checked against its commitment by the node). Reported per size: the
//! median and spread of each time, dispersal throughput (size over time
//! to record) and retrieval throughput; and the bytes stored for each
//! blob (its parts' shards at the node's coding) beside the 96 MiB the
//! reference design encodes for every blob whatever its size.

use clap::Parser;
use ordo_bench as _; // links the benchmarks' allocator (jemalloc)
use ordo_client::Client;
use ordo_client::dev::DevProcess;
use ordo_proto::v1::BlobState;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Blob sizes in MiB.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32])]
    sizes: Vec<usize>,
    /// Blobs per size.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The `ordo` binary (default: beside this one).
    #[arg(long)]
    ordo: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The reference design's encoding of any blob: 3,072 rows of 1,024
/// 32-byte elements (docs/DA.md, ../shared/reference/0g-da.md).
const REFERENCE_ENCODED_BYTES: u64 = 3072 * 1024 * 32;

/// Longest wait for one blob's record.
const RECORD_BOUND: Duration = Duration::from_secs(600);

#[derive(Debug, Serialize)]
struct SizeReport {
    mib: usize,
    runs: usize,
    upload_ms: Spread,
    to_record_ms: Spread,
    to_certificate_ms: Spread,
    retrieve_ms: Spread,
    dispersal_mib_per_s: f64,
    retrieval_mib_per_s: f64,
    stored_bytes: u64,
    reference_encoded_bytes: u64,
}

/// Median, lowest and highest of a set of timings.
#[derive(Debug, Serialize)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    Spread {
        median: values[values.len() / 2],
        min: values[0],
        max: values[values.len() - 1],
    }
}

fn random_blob(size: usize, seed: u64) -> Arc<Vec<u8>> {
    Arc::new(ordo_txn::testkit::XorShift::new(seed).bytes(size))
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// The bytes a certificate's parts store: each part's `k + m` shards,
/// as its header's geometry gives them.
fn stored_bytes(certificate: &[u8]) -> anyhow::Result<u64> {
    let parts = ordo_da::Certificate::decode(certificate)?.parts()?;
    Ok(parts
        .iter()
        .map(|p| {
            let geometry = &p.entry.geometry;
            geometry.shard_len() as u64 * u64::from(geometry.total_shards())
        })
        .sum())
}

/// One blob: times of upload, record, certificate and retrieval, and the
/// bytes its parts store.
async fn one_blob(
    client: &Client,
    key: &ordo_txn::SigningKey,
    blob: Arc<Vec<u8>>,
) -> anyhow::Result<([f64; 4], u64)> {
    let started = Instant::now();
    let accepted = client
        .disperse(key, blob.clone(), 0, Arc::new(AtomicU64::new(0)))
        .await?;
    let uploaded = started.elapsed();
    let id: [u8; 32] = accepted
        .blob_id
        .try_into()
        .map_err(|_| anyhow::anyhow!("blob id"))?;
    let owner = Some(ordo_txn::address_of(key));
    loop {
        let status = client.blob_status(id, owner).await?;
        match status.state() {
            BlobState::Finalized => break,
            BlobState::Failed => anyhow::bail!("dispersal failed: {}", status.reason),
            _ if started.elapsed() > RECORD_BOUND => {
                anyhow::bail!("no record within {RECORD_BOUND:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let recorded = started.elapsed();
    let (certificate, _) = client.certificate(id, owner).await?;
    let certified = started.elapsed();
    let fetch = Instant::now();
    let back = client.retrieve(id, owner, |_, _| {}).await?;
    let retrieved = fetch.elapsed();
    anyhow::ensure!(back == *blob, "the blob came back different");
    let times = [uploaded, recorded, certified, retrieved].map(millis);
    Ok((times, stored_bytes(&certificate)?))
}

async fn measure(client: &Client, mib: usize, runs: usize) -> anyhow::Result<SizeReport> {
    let key = ordo_txn::testkit::signing_key(mib as u8 + 1);
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut stored = 0;
    for run in 0..runs {
        let blob = random_blob(mib << 20, (mib * 1000 + run) as u64 + 1);
        let (timed, bytes) = one_blob(client, &key, blob).await?;
        stored = bytes;
        for (all, one) in times.iter_mut().zip(timed) {
            all.push(one);
        }
    }
    let [upload, record, certificate, retrieve] = times.map(spread);
    let mib_f = mib as f64;
    Ok(SizeReport {
        mib,
        runs,
        dispersal_mib_per_s: mib_f / (record.median / 1000.0),
        retrieval_mib_per_s: mib_f / (retrieve.median / 1000.0),
        upload_ms: upload,
        to_record_ms: record,
        to_certificate_ms: certificate,
        retrieve_ms: retrieve,
        stored_bytes: stored,
        reference_encoded_bytes: REFERENCE_ENCODED_BYTES,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match args.ordo.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow::anyhow!("binary directory"))?
            .join("ordo"),
    };
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("ordo.toml");
    // Room for every run's bytes within the hour.
    std::fs::write(&config, "da_account_bytes_per_hour = 1099511627776\n")?;
    let config_arg = config.to_string_lossy().into_owned();
    let extra = ["--no-cli-key", "--config", config_arg.as_str()];
    let node = DevProcess::start(
        &binary,
        &dir.path().join("data"),
        &extra,
        std::process::Stdio::null(),
    )?;
    let client = Client::connect(&node.endpoint).await?;
    let mut reports = Vec::new();
    for &mib in &args.sizes {
        reports.push(measure(&client, mib, args.runs).await?);
    }
    node.terminate()?;
    print(&reports, args.json)
}

fn print(reports: &[SizeReport], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(reports)?);
        return Ok(());
    }
    println!(
        "| blob | upload (with KZG) | to record | to certificate | retrieve | dispersal | retrieval | stored | reference encodes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let ms = |s: &Spread| format!("{:.0} ms ({:.0}-{:.0})", s.median, s.min, s.max);
    for r in reports {
        println!(
            "| {} MiB x {} | {} | {} | {} | {} | {:.1} MiB/s | {:.1} MiB/s | {:.2} MiB | {:.0} MiB |",
            r.mib,
            r.runs,
            ms(&r.upload_ms),
            ms(&r.to_record_ms),
            ms(&r.to_certificate_ms),
            ms(&r.retrieve_ms),
            r.dispersal_mib_per_s,
            r.retrieval_mib_per_s,
            r.stored_bytes as f64 / f64::from(1u32 << 20),
            r.reference_encoded_bytes as f64 / f64::from(1u32 << 20),
        );
    }
    Ok(())
}
