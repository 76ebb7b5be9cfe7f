//! The clusters `ordo-bench compare --cluster` measures, on loopback with
//! fresh data directories, every member stopped by PID (SIGTERM) when
//! dropped:
//!
//! - ordo's: three raft voters that also store shards, and three more
//!   storage members; the first voter, through which `ordo cluster init`
//!   forms the cluster (it starts the first election, so it normally
//!   leads; were it to lose, its gateway would forward appends to the
//!   winner, and the benchmark says so on stderr), is also the gateway
//!   with its replica that the load goes to.
//!   Shards at 4+2, write quorum 5 (the default), every member syncing its
//!   writes before it answers;
//! - etcd's: three members, the load going to the leader.
//!
//! Both loads go to the leader's process, as a deployment whose clients
//! reach every member would see half its load or more there. (A gateway
//! of its own, the seventh process `scripts/cluster.sh` runs, costs ordo a
//! network round and a process more per entry; on two cores that was
//! 3-19% of the puts at 16 clients and 12-18% at 64, docs/BENCHMARKS.md.)

use crate::Server;
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a member may take to announce itself.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Voters in each cluster.
const VOTERS: u64 = 3;
/// ordo's storage members (the voters among them).
const STORAGE: u64 = 6;
/// ordo's gateway: the first voter.
const GATEWAY: u64 = 1;

fn loopback() -> anyhow::Result<String> {
    Ok(format!("127.0.0.1:{}", crate::free_port()?))
}

/// The lines a child prints, read on a thread of their own.
fn stdout_lines(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    Ok(lines)
}

/// Waits for a line starting with `prefix`; returns the rest.
fn announced(lines: &mpsc::Receiver<String>, prefix: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + ANNOUNCE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .with_context(|| format!("no '{prefix}' line within {ANNOUNCE_TIMEOUT:?}"))?;
        if let Some(rest) = line.strip_prefix(prefix) {
            return Ok(rest.to_string());
        }
    }
}

/// A running ordo cluster: its members and where clients reach the gateway.
pub struct OrdoCluster {
    /// Every member; dropped (stopped) with the cluster.
    _members: Vec<Server>,
    /// The gateway's client address, `http://HOST:PORT`.
    pub endpoint: String,
    /// Keeps the gateway's stdout read, so its prints never fail.
    _gateway_lines: mpsc::Receiver<String>,
}

/// One member's file. The six members share the machine's cores, so
/// each runs one runtime thread, as `scripts/cluster.sh` does (see
/// `runtime_workers` in the member's file documentation).
fn member_config(dir: &Path, id: u64, peer: &str, roles: &str) -> String {
    format!(
        "id = {id}\ndata_dir = {:?}\npeer_listen = \"{peer}\"\nroles = [{roles}]\ntls_dir = {:?}\nruntime_workers = 1\n",
        dir.join(format!("n{id}")),
        dir.join("certs"),
    )
}

impl OrdoCluster {
    /// Makes the certificates, starts the members, forms the raft cluster
    /// and waits until the gateway founded the log and serves.
    pub fn start(binary: &Path, dir: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        let status = Command::new(binary)
            .args(["cluster", "certs", "--dir"])
            .arg(dir.join("certs"))
            .args((1..=STORAGE).flat_map(|id| ["--node".to_string(), id.to_string()]))
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "ordo cluster certs failed");
        let peers: Vec<String> = (1..=STORAGE)
            .map(|_| loopback())
            .collect::<Result<_, _>>()?;
        let listen = loopback()?;
        let mut members = Vec::new();
        let mut gateway_lines = None;
        for id in 1..=STORAGE {
            let config = match id {
                GATEWAY => gateway_config(dir, &peers, &listen),
                _ => member_config(dir, id, &peers[id as usize - 1], roles_of(id)),
            };
            let (server, lines) = start_member(binary, dir, id, &config, cpu)?;
            announced(&lines, &format!("ordo node {id} listening on"))?;
            members.push(server);
            if id == GATEWAY {
                gateway_lines = Some(lines);
            }
        }
        initialize(binary, dir, &peers)?;
        let gateway_lines = gateway_lines.context("the gateway was started")?;
        let address = announced(&gateway_lines, "ordo listening on ")?;
        // The layout assumes the gateway's voter leads; say so when it
        // does not (its appends then cross to the leader and back).
        match leader_of(binary, dir, &peers[GATEWAY as usize - 1])? {
            Some(GATEWAY) => {}
            other => eprintln!(
                "note: the ordo cluster's leader is voter {other:?}, not the gateway's voter {GATEWAY}"
            ),
        }
        Ok(Self {
            _members: members,
            endpoint: format!("http://{}", address.trim()),
            _gateway_lines: gateway_lines,
        })
    }
}

/// The roles of member `id` other than the gateway.
fn roles_of(id: u64) -> &'static str {
    match id <= VOTERS {
        true => "\"sequencer\", \"storage\"",
        false => "\"storage\"",
    }
}

/// The gateway's file: a voter and storage member that also serves clients
/// on `listen`, its shards going to every storage member.
fn gateway_config(dir: &Path, peers: &[String], listen: &str) -> String {
    let roles = format!("{}, \"gateway\", \"replica\"", roles_of(GATEWAY));
    let mut config = member_config(dir, GATEWAY, &peers[GATEWAY as usize - 1], &roles);
    let voters: Vec<String> = peers[..VOTERS as usize]
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect();
    let storage: Vec<String> = (1..=STORAGE)
        .map(|id| format!("{{ id = {id}, addr = \"{}\" }}", peers[id as usize - 1]))
        .collect();
    config.push_str(&format!(
        "listen = \"{listen}\"\nsequencers = [{}]\nstorage = [{}]\n",
        voters.join(", "),
        storage.join(", ")
    ));
    config
}

/// Writes member `id`'s file and starts it, its log in `DIR/nID.log`.
fn start_member(
    binary: &Path,
    dir: &Path,
    id: u64,
    config: &str,
    cpu: Option<usize>,
) -> anyhow::Result<(Server, mpsc::Receiver<String>)> {
    let path = dir.join(format!("n{id}.toml"));
    std::fs::write(&path, config)?;
    let log = std::fs::File::create(dir.join(format!("n{id}.log")))?;
    let mut child = ordo_bench::pin::on_cpu(binary, cpu)
        .args(["--log-level", "warn", "node", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting ordo node {id}"))?;
    let lines = stdout_lines(&mut child)?;
    let server = Server {
        name: "ordo node",
        child,
    };
    Ok((server, lines))
}

/// The voter `peer` names as leader (`ordo cluster status --json`).
fn leader_of(binary: &Path, dir: &Path, peer: &str) -> anyhow::Result<Option<u64>> {
    let output = Command::new(binary)
        .args(["cluster", "status", "--json", "--peer", peer, "--tls-dir"])
        .arg(dir.join("certs"))
        .stderr(Stdio::null())
        .output()?;
    anyhow::ensure!(output.status.success(), "ordo cluster status failed");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let members = status["members"].as_array().context("no members")?;
    Ok(members.iter().find_map(|m| m["view"]["leader"].as_u64()))
}

/// `ordo cluster init` with the first `VOTERS` members, through the first,
/// which starts the first election.
fn initialize(binary: &Path, dir: &Path, peers: &[String]) -> anyhow::Result<()> {
    let voters = (1..=VOTERS).flat_map(|id| {
        [
            "--voter".to_string(),
            format!("{id}={}", peers[id as usize - 1]),
        ]
    });
    let status = Command::new(binary)
        .args(["cluster", "init", "--peer", &peers[0], "--tls-dir"])
        .arg(dir.join("certs"))
        .args(voters)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "ordo cluster init failed");
    Ok(())
}

/// A running etcd cluster of three members.
pub struct EtcdCluster {
    /// Every member; dropped (stopped) with the cluster.
    _members: Vec<Server>,
    /// The leader's client URL.
    pub endpoint: String,
}

impl EtcdCluster {
    /// Starts three members and waits until the cluster takes a write.
    pub async fn start(dir: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        let clients: Vec<String> = (0..VOTERS).map(|_| loopback()).collect::<Result<_, _>>()?;
        let peers: Vec<String> = (0..VOTERS).map(|_| loopback()).collect::<Result<_, _>>()?;
        let initial: Vec<String> = (0..VOTERS as usize)
            .map(|i| format!("e{i}=http://{}", peers[i]))
            .collect();
        let mut members = Vec::new();
        for i in 0..VOTERS as usize {
            let (client, peer) = (
                format!("http://{}", clients[i]),
                format!("http://{}", peers[i]),
            );
            let log = std::fs::File::create(dir.join(format!("etcd{i}.log")))?;
            let child = ordo_bench::pin::on_cpu(Path::new("etcd"), cpu)
                .args(["--name", &format!("e{i}"), "--data-dir"])
                .arg(dir.join(format!("etcd{i}")))
                .args([
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .context("starting etcd")?;
            members.push(Server {
                name: "etcd",
                child,
            });
        }
        let endpoints: Vec<String> = clients.iter().map(|c| format!("http://{c}")).collect();
        crate::wait_for_etcd(&endpoints[0], dir).await?;
        let endpoint = etcd_leader(&endpoints).await?;
        Ok(Self {
            _members: members,
            endpoint,
        })
    }
}

/// The client URL of the member that reports itself leader (asked for at
/// most `ANNOUNCE_TIMEOUT`: an election may still be settling).
async fn etcd_leader(endpoints: &[String]) -> anyhow::Result<String> {
    use ordo_bench::load::etcd::{StatusRequest, maintenance_client::MaintenanceClient};
    let deadline = Instant::now() + ANNOUNCE_TIMEOUT;
    loop {
        for endpoint in endpoints {
            let Ok(mut client) = MaintenanceClient::connect(endpoint.clone()).await else {
                continue;
            };
            let Ok(status) = client.status(StatusRequest {}).await else {
                continue;
            };
            let status = status.into_inner();
            let member = status.header.map(|h| h.member_id);
            if status.leader != 0 && member == Some(status.leader) {
                return Ok(endpoint.clone());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no etcd member reports itself leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
