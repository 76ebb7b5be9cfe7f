//! The real `ordo` binary, started and stopped as a user would, through
//! the launcher tests and benchmarks share (`ordo_client::dev`).
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod proxy;

use ordo_client::dev::DevProcess;
use std::path::Path;
use std::process::Stdio;

/// A running `ordo dev` on a free loopback port, killed if the test fails.
pub struct DevNode {
    process: DevProcess,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT/metrics`.
    pub metrics: String,
}

impl DevNode {
    /// Starts `ordo dev` with its files in `data` and an untouched log (no
    /// CLI identity), so tests can count versions from 0.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &["--no-cli-key"])
    }

    /// Starts `ordo dev` with its files in `data` and `extra` arguments.
    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        let binary = Path::new(env!("CARGO_BIN_EXE_ordo"));
        let process = DevProcess::start(binary, data, extra, Stdio::inherit()).unwrap();
        Self {
            endpoint: process.endpoint.clone(),
            metrics: process.metrics.clone(),
            process,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.process.terminate().unwrap()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(self) {
        self.process.kill().unwrap()
    }
}

/// Runs the `ordo` binary with `args` to completion.
pub fn ordo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(args)
        .output()
        .unwrap()
}

/// What a command that must succeed printed.
pub fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `probe` every 50 ms until it gives a value; fails after `bound`,
/// saying what was awaited.
pub fn eventually<T>(
    bound: std::time::Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {bound:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `ordo mine status --json` through `endpoint`, once the node there has
/// had a proof accepted and `key`'s beneficiary holds rewards (bounded).
pub fn mined_and_credited(
    endpoint: &str,
    key: &str,
    bound: std::time::Duration,
) -> serde_json::Value {
    eventually(bound, "an accepted proof and its reward", || {
        let status = mine_status(endpoint, key);
        let accepted = status["node_miner"]["accepted"].as_u64().unwrap_or(0);
        let credited = status["miner"]["rewards"]
            .as_str()
            .is_some_and(|r| r != "0");
        (accepted >= 1 && credited).then_some(status)
    })
}

/// `ordo mine status --json` as `key`'s account sees it.
pub fn mine_status(endpoint: &str, key: &str) -> serde_json::Value {
    let out = ordo(&[
        "mine",
        "status",
        "--endpoint",
        endpoint,
        "--key",
        key,
        "--json",
    ]);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// `ordo mine configure` through `endpoint` as `key`, with epoch entries,
/// target proofs, attempts per hit and reward in that order.
pub fn configure_mining(
    endpoint: &str,
    key: &str,
    [epoch, goal, attempts, reward]: [u64; 4],
) -> std::process::Output {
    let (epoch, goal) = (epoch.to_string(), goal.to_string());
    let (attempts, reward) = (attempts.to_string(), reward.to_string());
    ordo(&[
        "mine",
        "configure",
        "--endpoint",
        endpoint,
        "--key",
        key,
        "--epoch-entries",
        &epoch,
        "--target-proofs",
        &goal,
        "--attempts-per-hit",
        &attempts,
        "--reward",
        &reward,
    ])
}

/// Makes a key at `key` and registers its account as a miner crediting
/// `beneficiary`, `times` times through `endpoint`: one log entry each.
pub fn register_times(endpoint: &str, key: &Path, times: usize, beneficiary: &str) {
    let key = key.to_str().unwrap();
    stdout(&ordo(&["keygen", "--out", key]));
    let register = [
        "mine",
        "register",
        "--endpoint",
        endpoint,
        "--key",
        key,
        "--beneficiary",
        beneficiary,
    ];
    for _ in 0..times {
        stdout(&ordo(&register));
    }
}

/// Puts `k` = `v{n}` for n in 0..count through `client`, one commit (and
/// so one log entry) at a time; the versions.
pub async fn put_in_turn(
    client: &ordo_client::Client,
    signer: &ordo_txn::SigningKey,
    count: usize,
) -> Vec<u64> {
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(signer), b"default");
    let mut versions = Vec::new();
    for n in 0..count {
        let value = format!("v{n}");
        let ((), version) = client
            .transact(signer, async |tx| {
                tx.put(stream, b"k", value.as_bytes());
                Ok(())
            })
            .await
            .unwrap();
        versions.push(version);
    }
    versions
}

/// A connected gRPC channel to `endpoint`.
pub async fn channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Fetches the metrics page with a bare HTTP/1.1 request.
pub async fn scrape(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: ordo\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the unlabelled metric `name` on a scraped `page`.
pub fn metric(page: &str, name: &str) -> u64 {
    let line = (page.lines())
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    line.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name} is {line}: {e}"))
}

/// `size` bytes of the test kit's xorshift stream seeded with `seed`.
pub fn blob_of(size: usize, seed: u8) -> std::sync::Arc<Vec<u8>> {
    let mut stream = ordo_txn::testkit::XorShift::new(u64::from(seed));
    std::sync::Arc::new(stream.bytes(size))
}

/// Bounds a dispersal of up to 100 MiB on two busy cores (its KZG
/// commitment alone takes about 15 s there).
pub const DISPERSAL_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

/// Disperses `blob` as `key` through `client` and waits for its record;
/// returns its id.
pub async fn disperse_and_wait(
    client: &ordo_client::Client,
    key: &ordo_txn::SigningKey,
    blob: &std::sync::Arc<Vec<u8>>,
) -> [u8; 32] {
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let accepted = client.disperse(key, blob.clone(), 0, sent).await.unwrap();
    let id: [u8; 32] = accepted.blob_id.clone().try_into().unwrap();
    let owner = Some(ordo_txn::address_of(key));
    let done = client
        .wait_for_blob(id, owner, DISPERSAL_BOUND, |_| {})
        .await
        .unwrap();
    assert_eq!(
        done.state(),
        ordo_proto::v1::BlobState::Finalized,
        "{}",
        done.reason
    );
    id
}
