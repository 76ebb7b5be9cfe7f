//! The `ordo` command line.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// ordo: a transactional key-value database on a verifiable, erasure-coded shared log.
#[derive(Debug, Parser)]
#[command(name = "ordo", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter, e.g. `info` or `ordo_log=debug,info` (env ORDO_LOG).
    #[arg(long, global = true, env = "ORDO_LOG", default_value = "info")]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process on loopback: the embedded default.
    Dev(DevArgs),
    /// Run one member of a cluster: the roles its config file names.
    Node(NodeArgs),
    /// Form a cluster, change its members, show what each member sees.
    Cluster(crate::commands::cluster::ClusterArgs),
    /// Deploy the log's contract on an EVM chain, fund a member's key.
    Chain(crate::commands::chain::ChainArgs),
    /// Show a node's role and progress.
    Status(crate::commands::status::EndpointArgs),
    /// Replay a stopped node's log into MVCC state, offline, and print the
    /// state digest (compare it across replicas to prove they agree).
    Replay(ReplayArgs),
    /// Read and write keys: get, put, del, scan.
    Kv(crate::commands::kv::KvArgs),
    /// Print committed changes under a prefix as they happen.
    Watch(crate::commands::watch::WatchArgs),
    /// Create streams and change or show their roles (see docs/ACL.md).
    Stream(crate::commands::stream::StreamArgs),
    /// Make a new signing key file.
    Keygen(crate::commands::keygen::KeygenArgs),
    /// An interactive SQL shell, or run SQL with -c / -f.
    Sql(crate::commands::sql::SqlArgs),
    /// Storage mining: where it stands, register a miner, turn it on.
    Mine(crate::commands::mine::MineArgs),
    /// Raise the log's retention horizon: history below it is given up.
    Compact(crate::commands::retention::CompactArgs),
    /// How much history the log keeps: show or set the policy.
    Retention(crate::commands::retention::RetentionArgs),
    /// Blobs: disperse a file, follow it, fetch it, verify its certificate.
    Da(crate::commands::da::DaArgs),
}

/// Options of `ordo replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The node's data directory (its log and shards are read from here).
    #[arg(long, env = "ORDO_DATA_DIR", default_value = "./ordo-data")]
    pub data_dir: PathBuf,
    /// Where to build the state; default: the node's own state directory.
    /// Point it elsewhere to build an independent replica.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print a line after each applied entry.
    #[arg(long)]
    pub progress: bool,
}

/// Options of `ordo node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The member's TOML file (see `ordo_server::node::cluster_node`).
    #[arg(long, env = "ORDO_CONFIG")]
    pub config: PathBuf,
}

/// Options of `ordo dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// A TOML configuration file (see `ordo_server::node::config`); flags and
    /// environment variables override it.
    #[arg(long, env = "ORDO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on [default: 127.0.0.1:7420]. Port 0 picks a free port (printed at start).
    #[arg(long, env = "ORDO_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the node's files, created if missing [default: ./ordo-data].
    #[arg(long, env = "ORDO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to serve Prometheus metrics on, `GET /metrics` [default: 127.0.0.1:7421]. Port 0 picks a free port.
    #[arg(long, env = "ORDO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Skip creating the CLI user's key (`DATA_DIR/cli.key`) and its
    /// "default" stream on first start: the log stays exactly as clients
    /// write it.
    #[arg(long)]
    pub no_cli_key: bool,
    /// An account (0x-prefixed address) that may append raw entries with
    /// `Log.Append`; repeatable, added to the file's `log_appenders`.
    #[arg(long = "log-appender")]
    pub log_appenders: Vec<String>,
    /// Mine with the shards this node stores, crediting this account
    /// (0x-prefixed address); see docs/MINING.md.
    #[arg(long)]
    pub mine_beneficiary: Option<String>,
    /// The share of one core mining may take, 0.01..=1.
    #[arg(long, default_value_t = crate::node::miner::DEFAULT_CPU_SHARE)]
    pub mine_cpu_share: f64,
    /// Threads of the async runtime that replays the log and serves the
    /// first gRPC lane, 1..=1024 [default: one fewer than the cores, at
    /// least one; see `dev_runtime_workers`].
    #[arg(long, env = "ORDO_RUNTIME_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=crate::node::cluster_node::MAX_RUNTIME_WORKERS as i64))]
    pub runtime_workers: Option<u16>,
    /// Threads that serve gRPC connections besides the runtime, each with a
    /// runtime of its own, 0..=1024 [default: the cores the runtime's
    /// workers leave; see `dev_serving_threads`].
    #[arg(long, env = "ORDO_SERVING_THREADS",
          value_parser = clap::value_parser!(u16).range(0..=crate::node::serving::MAX_SERVING_THREADS as i64))]
    pub serving_threads: Option<u16>,
}

/// The async runtime's threads for `ordo dev` unless `--runtime-workers`
/// says otherwise: one fewer than the cores, at least one.
///
/// The node keeps threads of its own busy whenever it takes writes: the
/// batcher, which packs, signs and syncs each entry, and RocksDB's flushes
/// and compactions. A worker per core on top of them means that a task
/// woken on one worker is often run, or stolen, on a worker parked on the
/// other core, and each such crossing costs a wake-up; on a virtual
/// machine, tens of microseconds. On this project's two-core machine one
/// worker took a lone put's p50 from 0.13 to 0.10 ms and puts at 16, 64
/// and 256 clients up by 12%, 17% and 6%, while reads at 256 clients fell
/// by about a tenth (docs/BENCHMARKS.md, "One runtime worker fewer than
/// the cores"); the cores left serve connections on lanes of their own
/// ([`dev_serving_threads`]).
fn dev_runtime_workers(given: Option<u16>) -> usize {
    given.map_or(cores().saturating_sub(1).max(1), usize::from)
}

/// The cores this process may run on (one if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads that serve gRPC connections for `ordo dev` besides its
/// runtime, unless `--serving-threads` says otherwise: one for each core
/// the runtime's `workers` leave, so that many clients' reads use every
/// core while a lone client's commits stay on the runtime (see
/// [`crate::node::serving`]).
fn dev_serving_threads(given: Option<u16>, workers: usize) -> usize {
    given.map_or(cores().saturating_sub(workers), usize::from)
}

/// The multi-threaded runtime every command runs on: `workers` threads,
/// or one per core.
fn async_runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing(&cli.log_level)?;
    // A member's file may size its runtime; every other command runs on
    // the default one, built when the command needs it.
    let runtime = || async_runtime(None);
    match cli.command {
        Command::Dev(args) => {
            let workers = dev_runtime_workers(args.runtime_workers);
            let runtime = async_runtime(Some(workers))?;
            runtime.block_on(crate::node::run::run_dev(dev_config(args, workers)?))
        }
        Command::Node(args) => {
            let config = crate::node::cluster_node::NodeConfig::load(&args.config)?;
            let runtime = async_runtime(config.runtime_workers)?;
            runtime.block_on(crate::node::cluster_node::run_node(config))
        }
        Command::Cluster(args) => runtime()?.block_on(crate::commands::cluster::run(args)),
        Command::Chain(args) => runtime()?.block_on(crate::commands::chain::run(args)),
        Command::Status(args) => runtime()?.block_on(crate::commands::status::status(args)),
        Command::Mine(args) => runtime()?.block_on(crate::commands::mine::run(args)),
        Command::Da(args) => runtime()?.block_on(crate::commands::da::run(args)),
        Command::Compact(args) => runtime()?.block_on(crate::commands::retention::compact(args)),
        Command::Retention(args) => runtime()?.block_on(crate::commands::retention::run(args)),
        Command::Kv(args) => runtime()?.block_on(crate::commands::kv::run(args)),
        Command::Keygen(args) => crate::commands::keygen::keygen(&args),
        Command::Watch(args) => runtime()?.block_on(crate::commands::watch::watch(args)),
        Command::Stream(args) => runtime()?.block_on(crate::commands::stream::run(args)),
        Command::Sql(args) => {
            let status = runtime()?.block_on(crate::commands::sql::run(args))?;
            if status != 0 {
                std::process::exit(status);
            }
            Ok(())
        }
        Command::Replay(args) => runtime()?.block_on(crate::replay::run_replay(
            &args.data_dir,
            args.state_dir.as_deref(),
            args.progress,
        )),
    }
}

/// Combines flags and environment (already merged by clap) with the file.
fn dev_config(args: DevArgs, workers: usize) -> anyhow::Result<crate::node::run::DevConfig> {
    use crate::node::config::{
        DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN, FileConfig,
    };
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let address = |given: Option<SocketAddr>,
                   from_file: Option<SocketAddr>,
                   default: &str|
     -> anyhow::Result<SocketAddr> {
        match given.or(from_file) {
            Some(address) => Ok(address),
            None => Ok(default.parse()?),
        }
    };
    let mining = mining(&args)?;
    Ok(crate::node::run::DevConfig {
        listen: address(args.listen, file.listen, DEFAULT_LISTEN)?,
        metrics_listen: address(
            args.metrics_listen,
            file.metrics_listen,
            DEFAULT_METRICS_LISTEN,
        )?,
        data_dir: args
            .data_dir
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        batch: file.batch_limits()?,
        cli_key: !args.no_cli_key,
        log_appenders: appenders(&file, &args.log_appenders)?,
        mining,
        da: file.da_limits()?,
        serving_threads: dev_serving_threads(args.serving_threads, workers),
    })
}

/// How `ordo dev` mines, if it does.
fn mining(args: &DevArgs) -> anyhow::Result<Option<crate::node::miner::MinerSettings>> {
    let Some(beneficiary) = &args.mine_beneficiary else {
        return Ok(None);
    };
    let settings = crate::node::miner::MinerSettings {
        beneficiary: crate::node::config::parse_address(beneficiary)?,
        cpu_share: args.mine_cpu_share,
    };
    settings.check().map_err(anyhow::Error::msg)?;
    Ok(Some(settings))
}

/// The file's appenders and the flags', once each.
fn appenders(
    file: &crate::node::config::FileConfig,
    flags: &[String],
) -> anyhow::Result<Vec<ordo_txn::Address>> {
    let mut all = file.log_appenders()?;
    for flag in flags {
        all.push(crate::node::config::parse_address(flag)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_defaults_are_loopback_and_local_dir() {
        let cli = Cli::try_parse_from(["ordo", "dev"]).expect("parses");
        let Command::Dev(args) = cli.command else {
            panic!("expected dev")
        };
        let config = dev_config(args, 1).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:7420");
        assert_eq!(config.metrics_listen.to_string(), "127.0.0.1:7421");
        assert_eq!(config.data_dir, PathBuf::from("./ordo-data"));
    }

    #[test]
    fn bad_listen_address_is_refused() {
        let error = Cli::try_parse_from(["ordo", "dev", "--listen", "not-an-address"])
            .expect_err("must fail");
        assert!(error.to_string().contains("--listen"), "{error}");
    }

    #[test]
    fn dev_runs_one_worker_fewer_than_the_cores_unless_told() {
        let cores = cores();
        assert_eq!(dev_runtime_workers(None), (cores - 1).max(1));
        let cli = Cli::try_parse_from(["ordo", "dev", "--runtime-workers", "3"]).expect("parses");
        let Command::Dev(args) = cli.command else {
            panic!("expected dev")
        };
        assert_eq!(dev_runtime_workers(args.runtime_workers), 3);
    }

    #[test]
    fn dev_serves_on_the_cores_its_workers_leave_unless_told() {
        let cores = cores();
        let workers = dev_runtime_workers(None);
        assert_eq!(dev_serving_threads(None, workers), cores - workers);
        assert_eq!(dev_serving_threads(None, cores + 4), 0);
        let cli = Cli::try_parse_from(["ordo", "dev", "--serving-threads", "0"]).expect("parses");
        let Command::Dev(args) = cli.command else {
            panic!("expected dev")
        };
        assert_eq!(dev_serving_threads(args.serving_threads, 1), 0);
        let config = dev_config(args, workers).expect("valid");
        assert_eq!(config.serving_threads, 0);
    }

    #[test]
    fn serving_threads_past_the_limit_are_refused() {
        for bad in ["1025", "-1", "2.5", "many"] {
            let flag = format!("--serving-threads={bad}");
            let error = Cli::try_parse_from(["ordo", "dev", &flag]).expect_err("must fail");
            assert!(
                error.to_string().contains("--serving-threads"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn runtime_workers_outside_one_to_the_limit_are_refused() {
        for bad in ["0", "1025", "2.5", "many"] {
            let error = Cli::try_parse_from(["ordo", "dev", "--runtime-workers", bad])
                .expect_err("must fail");
            assert!(
                error.to_string().contains("--runtime-workers"),
                "{bad}: {error}"
            );
        }
    }
}
