//! `ordo-bench`: a load generator for ordo and etcd, and a one-command
//! comparison of the two on this machine.
//!
//! - `ordo-bench run`: one workload against one running target.
//! - `ordo-bench compare`: installs etcd-server if missing, starts etcd and
//!   `ordo dev` on loopback with fresh data directories, runs every workload
//!   at each client count on both, stops both, and writes
//!   `target/bench-report/report.md` and `chart.svg`. With `--cluster`,
//!   the two are clusters: ordo's of six `ordo node` processes (three
//!   voters that store, the first also the gateway, and three storage
//!   members) and etcd's of three members, each load going to its
//!   cluster's leader (see [`cluster`]).
//! - `ordo-bench chain`: the EVM sequencer on a local anvil: confirmed
//!   headers per second and gas per header (see [`chain`]).

#[path = "ordo_bench/chain.rs"]
mod chain;
#[path = "ordo_bench/cluster.rs"]
mod cluster;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ordo_bench::load::{
    self, Contender, Distribution, EtcdTarget, KvTarget, Measured, OrdoTarget, Spec, Workload,
};
use ordo_bench::report::{self, Row};
use ordo_client::dev::DevProcess;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "ordo-bench", about = "Load generator for ordo and etcd")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one workload against a running ordo or etcd.
    Run(RunArgs),
    /// Start etcd and ordo, run the whole matrix on both, write the report.
    Compare(CompareArgs),
    /// The EVM sequencer on a local anvil: headers per second, gas per header.
    Chain(ChainArgs),
}

/// Options of `ordo-bench chain`.
#[derive(Debug, Args)]
struct ChainArgs {
    /// anvil block times in seconds (0: a block per transaction).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    block_times: Vec<u64>,
    /// Concurrent appenders (1: one header per transaction).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    appenders: Vec<u64>,
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetKind {
    Ordo,
    Etcd,
}

/// Load shape shared by `run` and `compare`.
#[derive(Debug, Clone, Args)]
struct LoadArgs {
    /// Keys in play (preloaded before measuring).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Connections the clients share (round-robin).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Stop each run after this many operations instead of after --seconds.
    #[arg(long)]
    ops: Option<u64>,
    /// Key distribution [default: zipfian for txn-rmw and the YCSB mixes, uniform otherwise].
    #[arg(long, value_enum)]
    distribution: Option<Distribution>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Which store.
    #[arg(long, value_enum)]
    target: TargetKind,
    /// Its endpoint (`host:port` or `http://host:port`).
    #[arg(long)]
    endpoint: String,
    /// ordo: the key file to sign with (the stream must let it write).
    #[arg(long, default_value = "./ordo-data/cli.key")]
    key: PathBuf,
    /// ordo: the stream name, under the key's account.
    #[arg(long, default_value = "default")]
    stream: String,
    /// The workload.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Preload the keys first.
    #[arg(long)]
    preload: bool,
    /// Print JSON instead of a text table.
    #[arg(long)]
    json: bool,
    /// ordo: sign every commit instead of committing on sessions.
    #[arg(long)]
    signed: bool,
    /// etcd: serializable point reads.
    #[arg(long)]
    serializable: bool,
    #[command(flatten)]
    load: LoadArgs,
}

impl RunArgs {
    fn mode(&self) -> ordo_client::CommitMode {
        match self.signed {
            true => ordo_client::CommitMode::Signed,
            false => ordo_client::CommitMode::Session,
        }
    }
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Client counts.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Workloads [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Where the report goes.
    #[arg(long, default_value = "target/bench-report")]
    out: PathBuf,
    /// The `ordo` binary [default: next to this one].
    #[arg(long)]
    ordo: Option<PathBuf>,
    /// Contenders [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    contenders: Vec<Contender>,
    /// Hold every server (etcd, ordo, the null target) to core 0 and the
    /// load generator to core 1, so they never take turns on one core.
    #[arg(long)]
    pin: bool,
    /// Compare clusters: ordo's local cluster (three voters that also store
    /// shards, the first also the gateway, and three storage members)
    /// against three etcd members, each load going to its leader; the
    /// contenders default to ordo and etcd.
    #[arg(long)]
    cluster: bool,
    /// Measure each cell this many times, the contenders alternating
    /// within each round; ratios are the median of the rounds' own
    /// ratios, shown with their range (at most `MAX_ROUNDS`, 9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_ROUNDS as i64))]
    rounds: u32,
    #[command(flatten)]
    load: LoadArgs,
}

/// Most rounds per cell: each round of the full matrix adds about five
/// minutes on this machine.
const MAX_ROUNDS: u32 = 9;

fn spec(load: &LoadArgs, workload: Workload) -> Spec {
    let distribution = load.distribution.unwrap_or(match workload {
        Workload::Put | Workload::Get => Distribution::Uniform,
        _ => Distribution::Zipfian,
    });
    Spec {
        workload,
        distribution,
        keys: load.keys,
        key_size: load.key_size,
        value_size: load.value_size,
        warmup: Duration::from_secs(load.warmup),
        duration: Duration::from_secs(load.seconds),
        total_ops: load.ops,
    }
}

/// Where ordo's load writes: an endpoint, a key and a stream.
#[derive(Clone)]
struct OrdoAt {
    endpoint: String,
    key: ordo_txn::SigningKey,
    stream: ordo_txn::StreamId,
}

async fn ordo_targets(
    at: &OrdoAt,
    clients: usize,
    connections: usize,
    mode: ordo_client::CommitMode,
) -> anyhow::Result<Vec<OrdoTarget>> {
    let mut shared = Vec::new();
    for _ in 0..connections.clamp(1, clients.max(1)) {
        let client = ordo_client::Client::connect(&at.endpoint).await?;
        shared.push(client.with_commit_mode(mode));
    }
    let mut targets = Vec::with_capacity(clients);
    for i in 0..clients {
        let client = shared[i % shared.len()].clone();
        targets.push(OrdoTarget::new(client, at.key.clone(), at.stream).await?);
    }
    Ok(targets)
}

async fn etcd_targets(
    endpoint: &str,
    clients: usize,
    connections: usize,
    serializable: bool,
) -> anyhow::Result<Vec<EtcdTarget>> {
    let mut shared = Vec::new();
    for _ in 0..connections.clamp(1, clients.max(1)) {
        shared.push(EtcdTarget::channel(endpoint).await?);
    }
    Ok((0..clients)
        .map(|i| EtcdTarget::new(shared[i % shared.len()].clone()))
        .map(|t| if serializable { t.serializable() } else { t })
        .collect())
}

fn pairs(load: &LoadArgs) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..load.keys)
        .map(|i| {
            (
                load::key_of(i, load.key_size),
                vec![0u8; load.value_size.max(8)],
            )
        })
        .collect()
}

async fn preload_ordo(at: &OrdoAt, load: &LoadArgs) -> anyhow::Result<()> {
    let client = ordo_client::Client::connect(&at.endpoint).await?;
    for chunk in pairs(load).chunks(1000) {
        client
            .transact(&at.key, async |tx| {
                for (k, v) in chunk {
                    tx.put(at.stream, k, v);
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

async fn preload_etcd(endpoint: &str, load: &LoadArgs) -> anyhow::Result<()> {
    let mut target = EtcdTarget::new(EtcdTarget::channel(endpoint).await?);
    target.put_all(&pairs(load)).await?;
    Ok(())
}

fn http(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

async fn run_one(args: RunArgs) -> anyhow::Result<()> {
    let spec = spec(&args.load, args.workload);
    let measured = match args.target {
        TargetKind::Ordo => {
            let key = ordo_client::keyfile::load(&args.key)?;
            let stream = ordo_txn::stream_id(&ordo_txn::address_of(&key), args.stream.as_bytes());
            let at = OrdoAt {
                endpoint: args.endpoint.clone(),
                key,
                stream,
            };
            if args.preload {
                preload_ordo(&at, &args.load).await?;
            }
            load::run(
                ordo_targets(&at, args.clients, args.load.connections, args.mode()).await?,
                &spec,
            )
            .await?
        }
        TargetKind::Etcd => {
            let endpoint = http(&args.endpoint);
            if args.preload {
                preload_etcd(&endpoint, &args.load).await?;
            }
            load::run(
                etcd_targets(
                    &endpoint,
                    args.clients,
                    args.load.connections,
                    args.serializable,
                )
                .await?,
                &spec,
            )
            .await?
        }
    };
    let name = format!("{:?}", args.target).to_lowercase();
    if args.json {
        println!(
            "{}",
            report::json(&name, args.workload, args.clients, &measured)
        );
    } else {
        println!(
            "target   workload  clients  ops/s      p50ms   p90ms   p99ms   p99.9ms  max ms  aborts  retries"
        );
        println!(
            "{name:<8} {:<9} {:<8} {:<10.0} {:<7.2} {:<7.2} {:<7.2} {:<8.2} {:<7.2} {:<7} {}",
            args.workload.name(),
            args.clients,
            measured.throughput(),
            measured.latency_ms(0.5),
            measured.latency_ms(0.9),
            measured.latency_ms(0.99),
            measured.latency_ms(0.999),
            measured.latency_ms(1.0),
            measured.aborts,
            measured.retries
        );
    }
    Ok(())
}

/// A server process the comparison started; stopped by PID when dropped.
struct Server {
    name: &'static str,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first, so each store shuts down as in production.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768-60999),
/// and below the ports the cluster tests reserve (20000-31999), so that a
/// benchmark's probes never race a test's member for its port.
const PORTS_FROM: u16 = 10_000;
/// How many ports [`free_port`] looks through.
const PORTS_COUNT: u16 = 10_000;

/// The ports [`free_port`] has handed out: each is bound again only when its
/// server starts, so it must not be handed out twice meanwhile.
static PORTS_GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A loopback port free when asked, for a server started next.
///
/// Not one the kernel picks for port 0: those come from the ephemeral
/// range, from which every outgoing connection also takes its local port,
/// and a cluster's members dial each other (again and again while a peer
/// is still starting) before the last has bound its port. A dial can take
/// that very port (once, a member then failed to start and the benchmark
/// stopped). Ports below the range are never given to connections.
fn free_port() -> anyhow::Result<u16> {
    let mut given = PORTS_GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let start = (std::process::id() % u32::from(PORTS_COUNT)) as u16;
    for step in 0..PORTS_COUNT {
        let port = PORTS_FROM + (start + step) % PORTS_COUNT;
        if given.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return Ok(port);
    }
    anyhow::bail!(
        "no free loopback port in {PORTS_FROM}..{}",
        PORTS_FROM + PORTS_COUNT
    )
}

fn ensure_etcd() -> anyhow::Result<()> {
    if Command::new("etcd").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("etcd not found: installing etcd-server from Debian");
    let ok = Command::new("apt-get").arg("update").status()?.success()
        && Command::new("apt-get")
            .args(["install", "-y", "etcd-server"])
            .status()?
            .success();
    anyhow::ensure!(ok, "could not install etcd-server");
    Ok(())
}

/// Starts a single-node etcd; its WAL is fsync'd before it acknowledges.
async fn start_etcd(dir: &Path, cpu: Option<usize>) -> anyhow::Result<(Server, String)> {
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.join("etcd.log"))?;
    let child = ordo_bench::pin::on_cpu(Path::new("etcd"), cpu)
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("bench={peer_url}")])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting etcd")?;
    let server = Server {
        name: "etcd",
        child,
    };
    wait_for_etcd(&client_url, dir).await?;
    Ok((server, client_url))
}

/// Waits (at most 30 s) until the etcd at `endpoint` answers a
/// linearizable read, which needs an elected leader.
async fn wait_for_etcd(endpoint: &str, dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = async {
            let mut t = EtcdTarget::new(EtcdTarget::channel(endpoint).await?);
            t.get(b"ready?").await
        };
        if ready.await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "etcd did not become ready; see the etcd logs in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The servers a comparison started; they stop when this is dropped.
enum Started {
    Single {
        _etcd: Server,
        ordo: DevProcess,
    },
    Clusters {
        _etcd: cluster::EtcdCluster,
        _ordo: cluster::OrdoCluster,
    },
}

impl Started {
    /// Stops ordo with SIGTERM, as in production (etcd's guards do the same
    /// when dropped).
    fn stop(self) -> anyhow::Result<()> {
        if let Started::Single { ordo, .. } = self {
            ordo.terminate()?;
        }
        Ok(())
    }
}

/// Starts etcd and ordo, single processes or clusters as `args` says.
async fn start_contenders(
    args: &CompareArgs,
    ordo_binary: &Path,
    dir: &Path,
    cpu: Option<usize>,
) -> anyhow::Result<(Started, OrdoAt, String)> {
    if !args.cluster {
        let (etcd, etcd_url) = start_etcd(dir, cpu).await?;
        let (ordo, ordo_at) = start_ordo(ordo_binary, dir, cpu)?;
        return Ok((Started::Single { _etcd: etcd, ordo }, ordo_at, etcd_url));
    }
    let etcd = cluster::EtcdCluster::start(dir, cpu).await?;
    let ordo = cluster::OrdoCluster::start(ordo_binary, dir, cpu)?;
    let key = ordo_txn::testkit::signing_key(1);
    let client = ordo_client::Client::connect(&ordo.endpoint).await?;
    let name = ordo_client::DEFAULT_STREAM.as_bytes().to_vec();
    client
        .transact(&key, async |tx| {
            tx.acl(ordo_txn::AclOp::CreateStream { name: name.clone() });
            Ok(())
        })
        .await?;
    let at = OrdoAt {
        endpoint: ordo.endpoint.clone(),
        stream: ordo_txn::stream_id(&ordo_txn::address_of(&key), &name),
        key,
    };
    let etcd_url = etcd.endpoint.clone();
    let started = Started::Clusters {
        _etcd: etcd,
        _ordo: ordo,
    };
    Ok((started, at, etcd_url))
}

/// Starts `ordo dev` (with its CLI key and default stream) and learns its
/// address and the CLI user's key.
fn start_ordo(
    binary: &Path,
    dir: &Path,
    cpu: Option<usize>,
) -> anyhow::Result<(DevProcess, OrdoAt)> {
    let data = dir.join("ordo");
    let log = Stdio::from(std::fs::File::create(dir.join("ordo.log"))?);
    let command = ordo_bench::pin::on_cpu(binary, cpu);
    let process = DevProcess::start_command(command, binary, &data, &[], log)?;
    let endpoint = process.endpoint.clone();
    let key = ordo_client::keyfile::load(&data.join("cli.key"))?;
    let stream = ordo_txn::stream_id(
        &ordo_txn::address_of(&key),
        ordo_client::DEFAULT_STREAM.as_bytes(),
    );
    Ok((
        process,
        OrdoAt {
            endpoint,
            key,
            stream,
        },
    ))
}

/// The servers of a comparison and how to reach them.
struct Contenders {
    ordo: OrdoAt,
    etcd: String,
    null: String,
    connections: usize,
}

impl Contenders {
    /// Runs `spec` with `clients` clients on `contender`.
    async fn run(
        &self,
        contender: Contender,
        clients: usize,
        spec: &Spec,
    ) -> anyhow::Result<Measured> {
        use ordo_client::CommitMode::{Session, Signed};
        let n = self.connections;
        let null = OrdoAt {
            endpoint: self.null.clone(),
            ..self.ordo.clone()
        };
        Ok(match contender {
            Contender::Ordo => {
                load::run(ordo_targets(&self.ordo, clients, n, Session).await?, spec).await?
            }
            Contender::OrdoSigned => {
                load::run(ordo_targets(&self.ordo, clients, n, Signed).await?, spec).await?
            }
            Contender::Null => {
                load::run(ordo_targets(&null, clients, n, Session).await?, spec).await?
            }
            Contender::NullSigned => {
                load::run(ordo_targets(&null, clients, n, Signed).await?, spec).await?
            }
            Contender::Etcd => {
                load::run(etcd_targets(&self.etcd, clients, n, false).await?, spec).await?
            }
            Contender::EtcdSerializable => {
                load::run(etcd_targets(&self.etcd, clients, n, true).await?, spec).await?
            }
        })
    }
}

/// Core 0 for servers, core 1 for the load generator, under `--pin`.
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;

async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    ensure_etcd()?;
    let ordo_binary = match &args.ordo {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("ordo"),
    };
    let server_cpu = args.pin.then_some(SERVER_CPU);
    let dir = tempfile::tempdir()?;
    let (running, ordo_at, etcd_url) =
        start_contenders(&args, &ordo_binary, dir.path(), server_cpu).await?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let null_workers = if args.pin { 1 } else { cores };
    let null = ordo_bench::null::start(null_workers, server_cpu)?;
    preload_ordo(&ordo_at, &args.load).await?;
    preload_etcd(&etcd_url, &args.load).await?;
    let servers = Contenders {
        ordo: ordo_at,
        etcd: etcd_url,
        null,
        connections: args.load.connections,
    };
    let rows = measure_matrix(&args, &servers).await?;
    let pinning = match args.pin {
        true => {
            format!("servers pinned to core {SERVER_CPU}, the load generator to core {LOAD_CPU}")
        }
        false => "nothing pinned".to_string(),
    };
    let shape = match args.cluster {
        true => {
            "ordo: a cluster of 3 voters that store (the first, leader after init, also the gateway) and 3 storage members, shards at 4+2, write quorum 5; etcd: 3 members; each load to its leader"
        }
        false => "ordo dev and a single etcd",
    };
    let header = format!(
        "{shape}; {} cores ({pinning}); {} keys of {} bytes, values of {} bytes; {} s measured after {} s warm-up per run, {} round(s) per cell, the contenders alternating within each round (a ratio is the median of the rounds' own ratios, their range in brackets; the figures shown are each contender's median run); {} shared connections per target; put/get uniform, txn-rmw and YCSB zipfian (theta 0.99). ordo and etcd fsync before acknowledging a write; the null target answers at once. Whole run: {:.0} s.",
        ordo_bench::pin::online_cores(),
        args.load.keys,
        args.load.key_size,
        args.load.value_size,
        args.load.seconds,
        args.load.warmup,
        args.rounds,
        args.load.connections,
        started.elapsed().as_secs_f64()
    );
    running.stop()?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.md"),
        report::markdown(&rows, &header, args.cluster),
    )?;
    std::fs::write(args.out.join("chart.svg"), report::svg(&rows))?;
    println!("{}", report::markdown(&rows, &header, args.cluster));
    eprintln!("wrote {}/report.md and chart.svg", args.out.display());
    Ok(())
}

/// Every workload at every client count on every contender that measures it.
async fn measure_matrix(args: &CompareArgs, servers: &Contenders) -> anyhow::Result<Vec<Row>> {
    let workloads = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    let contenders = match (args.contenders.is_empty(), args.cluster) {
        (false, _) => args.contenders.clone(),
        (true, false) => Contender::ALL.to_vec(),
        (true, true) => vec![Contender::Ordo, Contender::Etcd],
    };
    let mut rows = Vec::new();
    for &workload in &workloads {
        let spec = spec(&args.load, workload);
        for &clients in &args.clients {
            let mut results = Vec::new();
            for _ in 0..args.rounds {
                for &contender in contenders.iter().filter(|c| c.measures(workload)) {
                    let measured = servers.run(contender, clients, &spec).await?;
                    eprintln!(
                        "{:<8} {clients:>4} clients: {:<18} {:>8.0} ops/s",
                        workload.name(),
                        contender.name(),
                        measured.throughput()
                    );
                    results.push((contender, measured));
                }
            }
            rows.push(Row {
                workload,
                clients,
                results,
            });
        }
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // Pinned before the runtime starts, so every worker thread inherits it.
    if let Cmd::Compare(CompareArgs { pin: true, .. }) = &command {
        ordo_bench::pin::current_thread_to(LOAD_CPU);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            Cmd::Run(args) => run_one(args).await,
            Cmd::Compare(args) => compare(args).await,
            Cmd::Chain(args) => {
                let cells =
                    chain::measure(&args.block_times, &args.appenders, args.seconds).await?;
                match args.json {
                    true => println!("{}", serde_json::to_string_pretty(&cells)?),
                    false => print!("{}", chain::table(&cells)),
                }
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..8).map(|_| free_port().expect("a port")).collect();
        for (i, port) in ports.iter().enumerate() {
            assert!((PORTS_FROM..PORTS_FROM + PORTS_COUNT).contains(port));
            assert!(*port < 20_000, "below the tests' and the kernel's ranges");
            assert!(!ports[..i].contains(port), "{port} handed out twice");
            std::net::TcpListener::bind(("127.0.0.1", *port)).expect("still free");
        }
    }
}
