//! Starting and stopping a node: opening its stores, starting its roles,
//! serving gRPC until SIGINT or SIGTERM.

use crate::node::appenders::Appenders;
use crate::node::commits::{
    BatchLimits, Committer, Companion, ForReplica, Vouch, Waiters, WriterCheck,
};
use crate::node::gateway::NodeKey;
use crate::node::handles::{Commits, Snapshots};
use crate::node::local_log::LocalLog;
use crate::node::metrics::Metrics;
use crate::node::own_entries::OwnEntries;
use crate::node::own_thread::OwnThread;
use crate::node::replica::Replica;
use crate::node::services::{acl, da, kv, log, sql, status, txn};
use crate::node::sql::SqlPrincipal;
use crate::node::verified::VerifiedSignatures;
use anyhow::Context;
use ordo_log::{CodingParams, EntryReader, EntryWriter, Sequencer};
use ordo_proto::v1::{
    acl_server, da_server, kv_server, log_server, sql_server, status_server, txn_server,
};
use ordo_txn::attest::Ordering;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a stopping node waits for in-flight calls before closing connections.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Configuration of `ordo dev`.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Where the node keeps its files.
    pub data_dir: PathBuf,
    /// Prometheus metrics listen address.
    pub metrics_listen: SocketAddr,
    /// Create the CLI user's key and default stream on first start.
    pub cli_key: bool,
    /// Accounts that may append raw entries (`Log.Append`).
    pub log_appenders: Vec<ordo_txn::Address>,
    /// How commits are packed into log entries.
    pub batch: BatchLimits,
    /// Mine with the shards this node stores, when set.
    pub mining: Option<crate::node::miner::MinerSettings>,
    /// Blob dispersal's limits.
    pub da: crate::node::da::DaLimits,
    /// Serving threads besides the runtime (see [`crate::node::serving`]).
    pub serving_threads: usize,
}

/// Everything the services of a running node are built from. Only
/// [`serve`] (and in-process tests, through [`LocalNode`]) sees it whole:
/// each service gets the parts it uses.
pub struct ServiceParts {
    /// The replicated state, for reads.
    pub snapshots: Snapshots,
    /// The commit path.
    pub commits: Commits,
    /// Orders log entries.
    pub sequencer: Arc<dyn Sequencer>,
    /// Codes, stores and orders new raw entries.
    pub writer: ordo_log::EntryWriter,
    /// Reads committed entries back, verified.
    pub reader: ordo_log::EntryReader,
    /// How entries are coded.
    pub coding: CodingParams,
    /// Roles this node plays.
    pub role: &'static str,
    /// Who SQL commits are signed by, and the SQL stream.
    pub sql: SqlPrincipal,
    /// Who may append raw entries.
    pub appenders: Arc<Appenders>,
    /// What the chain ordering the log did, when one does.
    pub chain: Option<Arc<ordo_evm::EvmStats>>,
    /// What orders the log: written into the genesis record of a log this
    /// node founds, and required of the log's genesis by its replica.
    pub ordering: Ordering,
    /// The node's miner, once it starts (for status).
    pub miner: crate::node::services::status::MinerSlot,
    /// Blobs being dispersed through this node.
    pub dispersals: Arc<crate::node::da::Dispersals>,
    /// The write quorum the node's gateway waits for, if it takes commits
    /// to a log spread over storage members.
    pub write_quorum: Option<usize>,
    /// Who signs blob certificates.
    pub certifier: crate::node::da::certify::Certifier,
}

/// The state directory of a node with data directory `data_dir`.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

/// The log a node's client-facing roles run over: its own disk for `ordo
/// dev`, the cluster's storage members and sequencers for `ordo node`.
pub struct LogAccess {
    /// Orders entries.
    pub sequencer: Arc<dyn Sequencer>,
    /// Codes, stores and orders entries.
    pub writer: ordo_log::EntryWriter,
    /// Reads committed entries back, verified.
    pub reader: ordo_log::EntryReader,
    /// How the writer codes entries.
    pub coding: CodingParams,
    /// What the chain ordering the log did, when one does.
    pub chain: Option<Arc<ordo_evm::EvmStats>>,
    /// What orders the log.
    pub ordering: Ordering,
    /// Shards of an entry the writer waits to find durable on distinct
    /// storage members, for a log spread over them (`None`: the log is on
    /// this machine).
    pub write_quorum: Option<usize>,
}

/// How a node that serves clients runs, besides its log.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Where the node keeps its key and replica state.
    pub data_dir: PathBuf,
    /// How commits are packed into log entries.
    pub batch: BatchLimits,
    /// Accounts that may append raw entries (`Log.Append`).
    pub log_appenders: Vec<ordo_txn::Address>,
    /// The roles the status service reports.
    pub role: &'static str,
    /// Whether the node takes commits (a gateway) or refuses them (a read
    /// replica).
    pub takes_commits: bool,
    /// Blob dispersal's limits.
    pub da: crate::node::da::DaLimits,
    /// Who signs blob certificates: the node's own key when it orders its
    /// log itself (`None`), else the raft voters, or no one.
    pub certifier: Option<crate::node::da::certify::Certifier>,
}

/// The tasks of a node's client-facing roles, stopped when it stops.
pub struct ClientTasks {
    /// The follower, when it runs on the node's runtime (on a local log
    /// that takes commits it runs on the batcher's thread instead).
    follower: Option<tokio::task::JoinHandle<()>>,
    batcher: Option<OwnThread>,
}

impl ClientTasks {
    /// Stops the batcher (commits in flight are abandoned, their callers
    /// told the node is stopping) and the replica.
    pub fn stop(self) {
        if let Some(batcher) = self.batcher {
            batcher.stop();
        }
        if let Some(follower) = self.follower {
            follower.abort();
        }
    }
}

/// What a running node must stop: its tasks, then its log.
struct Running {
    log: LocalLog,
    tasks: ClientTasks,
}

impl Running {
    fn stop(self) {
        self.tasks.stop();
        self.log.close();
    }
}

/// Every role of `ordo dev` running in this process over a log on this
/// machine, without the network: what `ordo dev` serves, and what
/// in-process tests drive.
pub struct LocalNode {
    /// What the services are built from.
    pub parts: ServiceParts,
    running: Running,
}

impl LocalNode {
    /// Opens the node's stores under `config.data_dir`, starts the
    /// replica and commit roles, and founds the log (genesis record) if it
    /// is empty.
    pub async fn start(config: &DevConfig) -> anyhow::Result<Self> {
        let log = LocalLog::open(&config.data_dir)?;
        let coding = CodingParams::default();
        let access = LogAccess {
            sequencer: log.sequencer(),
            writer: log.writer(coding)?,
            reader: log.reader(),
            coding,
            chain: None,
            ordering: Ordering::Members,
            write_quorum: None,
        };
        let settings = ClientSettings {
            data_dir: config.data_dir.clone(),
            batch: config.batch,
            log_appenders: config.log_appenders.clone(),
            role: "dev",
            takes_commits: true,
            da: config.da,
            certifier: None,
        };
        let (parts, tasks) = start_client_roles(&settings, access)?;
        let running = Running { log, tasks };
        let node = Self { parts, running };
        if let Err(error) = found_log_if_empty(&node.parts).await {
            node.stop();
            return Err(error);
        }
        if let Err(error) = caught_up(&node.parts).await {
            node.stop();
            return Err(error);
        }
        Ok(node)
    }

    /// Stops the roles and closes the log.
    pub fn stop(self) {
        self.running.stop();
    }
}

/// On an empty log, appends the genesis record (this node the log's admin
/// and first gateway) and waits until the replica applied it. In a cluster
/// several gateways may find the log empty at once: the first genesis
/// ordered counts, replay rejects any later one, and a gateway whose record
/// came second says so.
pub async fn found_log_if_empty(parts: &ServiceParts) -> anyhow::Result<()> {
    if parts.sequencer.tail() > 0 {
        return Ok(());
    }
    let node = &parts.commits.node;
    let genesis = node.genesis(parts.ordering).encode();
    let header = parts
        .writer
        .append(genesis, vec![], node.address)
        .await
        .context("appending the genesis record")?;
    parts
        .snapshots
        .applied_through(header.seq + 1)
        .await
        .context("the replica stopped before applying the genesis record")?;
    let address = ordo_log::hex(&node.address);
    if header.seq == 0 {
        tracing::info!(node = %address, "founded a new log: this node is its admin and first gateway");
    } else {
        tracing::info!(node = %address, seq = header.seq, "another gateway founded the log first; this node's genesis record was refused");
    }
    Ok(())
}

/// Waits until the replica has applied every entry the log held when the
/// node started. The state on disk may trail the log (a node killed
/// between an entry's sync and its apply, whose commit was never
/// answered, or one whose state writes had not reached the disk), and a
/// node that served before catching up would answer a read or a status
/// with a state older than commits it acknowledged before it stopped.
async fn caught_up(parts: &ServiceParts) -> anyhow::Result<()> {
    let tail = parts.sequencer.tail();
    let behind = tail.saturating_sub(parts.snapshots.position().next_seq);
    if behind > 0 {
        tracing::info!(
            entries = behind,
            "applying the log's entries before serving"
        );
    }
    parts
        .snapshots
        .applied_through(tail)
        .await
        .map(drop)
        .context("the replica stopped before applying the log it was opened on")
}

/// Opens the replica over `log` and starts the replica role and, on a
/// node that takes commits, the batcher.
pub fn start_client_roles(
    settings: &ClientSettings,
    log: LogAccess,
) -> anyhow::Result<(ServiceParts, ClientTasks)> {
    let LogAccess {
        sequencer,
        writer,
        reader,
        coding,
        chain,
        ordering,
        write_quorum,
    } = log;
    let opened = open_replica(settings, &reader, &sequencer, ordering)?;
    // Beside the batcher on a local log (see `Committer::start`); a spread
    // log's appends run as tasks on the batcher's thread, and a read
    // replica has no batcher.
    let (follower, companion) = match settings.takes_commits && !writer.is_spread() {
        true => (None, Some(opened.following)),
        false => (Some(tokio::spawn(opened.following)), None),
    };
    let node = NodeKey::load_or_create(&settings.data_dir)?;
    let certifier = (settings.certifier.clone())
        .unwrap_or_else(|| crate::node::da::certify::Certifier::Own(node.key.clone()));
    let commit_path = CommitPath {
        writer: &writer,
        ordering,
        node: &node,
        waiters: opened.waiters,
        metrics: opened.metrics.clone(),
        for_replica: opened.for_replica.clone(),
        companion,
    };
    let (committer, batcher) = start_commit_path(settings, commit_path, &opened.snapshots)?;
    let parts = ServiceParts {
        snapshots: opened.snapshots,
        commits: Commits {
            committer,
            verified: opened.for_replica.made,
            metrics: opened.metrics,
            node,
        },
        writer,
        sequencer,
        reader,
        coding,
        role: settings.role,
        sql: SqlPrincipal::load_or_create(&settings.data_dir)?,
        appenders: Arc::new(Appenders::open(
            &settings.data_dir,
            &settings.log_appenders,
        )?),
        chain,
        ordering,
        miner: Default::default(),
        dispersals: Arc::new(crate::node::da::Dispersals::open(
            &settings.data_dir,
            settings.da,
        )?),
        certifier,
        // A read replica takes no commits, so it waits for no quorum.
        write_quorum: write_quorum.filter(|_| settings.takes_commits),
    };
    Ok((parts, ClientTasks { follower, batcher }))
}

/// A replica opened over the log and not yet following it: its state and
/// applied version as the services read them, the follower that moves
/// them, and what it shares with a batcher (the waiters it answers, the
/// signatures and decoded entries the batcher leaves it, the metrics both
/// count into).
struct OpenedReplica {
    snapshots: Snapshots,
    following: Companion,
    waiters: Arc<Waiters>,
    for_replica: ForReplica,
    metrics: Arc<Metrics>,
}

/// Opens the replica's state under `settings.data_dir`, read through
/// `reader` and expecting a log ordered by `ordering`.
fn open_replica(
    settings: &ClientSettings,
    reader: &EntryReader,
    sequencer: &Arc<dyn Sequencer>,
    ordering: Ordering,
) -> anyhow::Result<OpenedReplica> {
    let for_replica = ForReplica {
        made: Arc::new(VerifiedSignatures::default()),
        own: Arc::new(OwnEntries::default()),
    };
    let metrics = Arc::new(Metrics::default());
    let replica = Replica::open(&state_dir(&settings.data_dir), reader.clone())
        .context("opening the replica state")?
        .with_verified(for_replica.made.clone())
        .with_own_entries(for_replica.own.clone())
        .with_metrics(metrics.clone())
        .expecting(ordering)?;
    let state = replica.store();
    let (publish, applied) = tokio::sync::watch::channel(replica.applied());
    let waiters = Arc::new(Waiters::default());
    let following = Box::pin(follow_log(
        replica,
        sequencer.clone(),
        publish,
        waiters.clone(),
    ));
    Ok(OpenedReplica {
        snapshots: Snapshots {
            state,
            applied,
            streams: Arc::default(),
        },
        following,
        waiters,
        for_replica,
        metrics,
    })
}

/// What a node's commit path is started from.
struct CommitPath<'a> {
    writer: &'a EntryWriter,
    ordering: Ordering,
    node: &'a NodeKey,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    for_replica: ForReplica,
    companion: Option<Companion>,
}

/// Starts the batcher on a node that takes commits; a read replica gets a
/// committer that refuses every commit, and no batcher. On a chain-ordered
/// log the committer also checks that the node may submit there.
fn start_commit_path(
    settings: &ClientSettings,
    path: CommitPath<'_>,
    snapshots: &Snapshots,
) -> anyhow::Result<(Committer, Option<OwnThread>)> {
    if !settings.takes_commits {
        return Ok((Committer::refusing(), None));
    }
    let (committer, batcher) = Committer::start(
        path.writer.clone(),
        vouch_for(path.ordering, path.node),
        settings.batch,
        path.waiters,
        path.metrics,
        path.for_replica,
        path.companion,
    )?;
    let committer = match path.ordering {
        Ordering::Members => committer,
        Ordering::Chain { .. } => committer.checking_writers(WriterCheck {
            state: snapshots.state.clone(),
            applied: snapshots.applied.clone(),
            node: path.node.address,
        }),
    };
    Ok((committer, Some(batcher)))
}

/// How the node vouches for its session transactions on a log ordered by
/// `ordering`: with a signature per entry where the header's submitter
/// proves nothing, by its chain-authenticated submission where it does.
fn vouch_for(ordering: Ordering, node: &NodeKey) -> Vouch {
    match ordering {
        Ordering::Members => Vouch::Signature(node.key.clone()),
        Ordering::Chain { .. } => Vouch::Submission,
    }
}

/// Runs the all-in-one node until SIGINT or SIGTERM.
pub async fn run_dev(config: DevConfig) -> anyhow::Result<()> {
    let LocalNode { parts, running } = LocalNode::start(&config).await?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics address {}", config.metrics_listen))?;
    println!(
        "ordo metrics on http://{}/metrics",
        metrics_listener.local_addr()?
    );
    if config.cli_key {
        let (snapshots, commits) = (parts.snapshots.clone(), parts.commits.clone());
        crate::node::streams::ensure_cli_identity(
            snapshots,
            commits,
            running.log.sequencer(),
            &config.data_dir,
        )
        .await?;
    }
    let log = running.log.clone();
    let fsync = Arc::new(move || log.fsync_latency());
    let mut page = metrics_page(&parts, Some(fsync));
    let miner = match config.mining {
        None => None,
        Some(settings) => {
            let handles = (parts.snapshots.clone(), parts.commits.clone());
            let shards = running.log.shards();
            let (miner, mined) =
                crate::node::miner::spawn(settings, &config.data_dir, shards, handles, None)?;
            let _ = parts.miner.set(mined.clone());
            page = crate::node::miner::with_miner_page(page, mined);
            Some(miner)
        }
    };
    let exporter = tokio::spawn(crate::node::metrics::serve(metrics_listener, page));
    let compactor = crate::node::compactor::spawn((parts.snapshots.clone(), parts.commits.clone()));
    let expirer = crate::node::da::expirer::spawn((parts.snapshots.clone(), parts.commits.clone()));
    let sweeper = crate::node::compactor::spawn_sweeper(parts.snapshots.clone());
    let heads_keeper = crate::node::heads_keeper::spawn(parts.snapshots.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr()?;
    serve(parts, listener, config.serving_threads, shutdown_signal()).await?;
    exporter.abort();
    compactor.abort();
    expirer.abort();
    sweeper.abort();
    heads_keeper.abort();
    if let Some(miner) = miner {
        miner.abort();
    }
    running.stop();
    tracing::info!(address = %local, "stopped");
    Ok(())
}

/// How long the syncs of a node's own log took (a node whose log is on
/// other machines has none).
pub type FsyncLatency = Arc<dyn Fn() -> ordo_log::stats::HistogramSnapshot + Send + Sync>;

/// Renders the metrics page from the node's counters and gauges.
pub fn metrics_page(
    parts: &ServiceParts,
    fsync: Option<FsyncLatency>,
) -> Arc<dyn Fn() -> String + Send + Sync> {
    let (snapshots, metrics) = (parts.snapshots.clone(), parts.commits.metrics.clone());
    let sequencer = parts.sequencer.clone();
    let spread = parts.writer.spread_timings();
    let chain = parts.chain.clone();
    Arc::new(move || {
        let applied = snapshots.position();
        let mut page = metrics.render(&crate::node::metrics::NodeGauges {
            log_tail: sequencer.tail(),
            applied_seq: applied.next_seq,
            applied_version: applied.version,
            fsync_micros: fsync.as_ref().map(|f| f()),
            spread_micros: spread
                .as_ref()
                .map(|t| (t.store.snapshot(), t.order.snapshot())),
            newest: snapshots
                .state
                .newest()
                .map(|n| n.stats())
                .unwrap_or_default(),
            heads: snapshots.state.heads().map(|h| h.stats()),
        });
        if let Some(chain) = &chain {
            crate::node::metrics::render_chain(chain, &mut page);
        }
        match crate::node::services::status::retention_status(&snapshots.state) {
            Ok(retention) => crate::node::metrics::render_retention(&retention, &mut page),
            Err(e) => tracing::warn!(error = %e, "metrics: retention state"),
        }
        page
    })
}

/// Runs the replica role until the log closes; a failure is logged, and the
/// node keeps serving what it has applied (status shows the lag grow).
async fn follow_log(
    replica: Replica,
    sequencer: Arc<dyn Sequencer>,
    applied: tokio::sync::watch::Sender<ordo_txn::Applied>,
    waiters: Arc<Waiters>,
) {
    let deliver = move |entry: &crate::node::replica::AppliedEntry<'_>| waiters.deliver(entry);
    if let Err(error) = crate::node::replica::follow(replica, sequencer, applied, deliver).await {
        tracing::error!(%error, "replica stopped");
    }
}

/// The node's gRPC router: each service built from the parts it uses.
/// `stopping` turns true when the node starts to stop: long-lived
/// streams that would hold a graceful shutdown open end then.
fn router(
    parts: ServiceParts,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> tonic::transport::server::Router {
    let ServiceParts {
        snapshots,
        commits,
        sequencer,
        writer,
        reader,
        coding,
        role,
        sql,
        appenders,
        chain,
        ordering: _,
        miner,
        dispersals,
        certifier,
        write_quorum,
    } = parts;
    let storing = crate::node::da::Storing {
        writer: writer.clone().forgetful(),
        commits: commits.clone(),
        snapshots: snapshots.clone(),
    };
    let da = da::DaService::new(
        dispersals,
        storing,
        reader.clone(),
        sequencer.clone(),
        certifier,
    );
    let status = status::StatusService::new(snapshots.clone(), sequencer.clone(), role, coding)
        .with_chain(chain)
        .with_miner(miner)
        .with_node(commits.node.address)
        .with_write_quorum(write_quorum);
    let log = log::LogService::new(writer, reader, sequencer.clone(), appenders);
    let sql = sql::SqlService::new(snapshots.clone(), commits.clone(), sql, sequencer)
        .stopping_with(stopping.clone());
    let txn = txn::TxnService::new(snapshots.clone(), commits).stopping_with(stopping.clone());
    tonic::transport::Server::builder()
        .add_service(status_server::StatusServer::new(status))
        .add_service(
            log_server::LogServer::new(log)
                .max_decoding_message_size(crate::node::services::MAX_REQUEST_BYTES),
        )
        .add_service(kv_server::KvServer::new(
            kv::KvService::new(snapshots.clone()).stopping_with(stopping.clone()),
        ))
        // Twice the transaction limit: anything up to that gets the decoder's
        // typed "too large" error; beyond it tonic refuses the message itself.
        .add_service(
            txn_server::TxnServer::new(txn)
                .max_decoding_message_size(2 * ordo_txn::limits::MAX_TXN_BYTES),
        )
        .add_service(acl_server::AclServer::new(acl::AclService::new(snapshots)))
        .add_service(
            da_server::DaServer::new(da)
                .max_decoding_message_size(crate::node::da::CHUNK_BYTES + 64 * 1024),
        )
        // Twice the SQL text limit, so oversized scripts get the SQL layer's
        // typed "too long" error.
        .add_service(
            sql_server::SqlServer::new(sql)
                .max_decoding_message_size(2 * ordo_sql::parse::MAX_SQL_BYTES),
        )
}

/// Every service the node serves, by its gRPC name: each answers the
/// standard health check by name, as load balancers and probes ask.
const SERVICE_NAMES: [&str; 7] = [
    <status_server::StatusServer<status::StatusService> as tonic::server::NamedService>::NAME,
    <log_server::LogServer<log::LogService> as tonic::server::NamedService>::NAME,
    <kv_server::KvServer<kv::KvService> as tonic::server::NamedService>::NAME,
    <txn_server::TxnServer<txn::TxnService> as tonic::server::NamedService>::NAME,
    <acl_server::AclServer<acl::AclService> as tonic::server::NamedService>::NAME,
    <da_server::DaServer<da::DaService> as tonic::server::NamedService>::NAME,
    <sql_server::SqlServer<sql::SqlService> as tonic::server::NamedService>::NAME,
];

/// Sets the health of the whole node (`""`) and of every service.
async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    for name in std::iter::once("").chain(SERVICE_NAMES) {
        health.set_service_status(name, status).await;
    }
}

/// Reflection in both versions clients speak: `v1` (grpcurl) and
/// `v1alpha` (Python's grpcio-reflection and older tools).
fn reflection_services() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = builder()
        .build_v1()
        .context("building the reflection service")?;
    let v1alpha = builder()
        .build_v1alpha()
        .context("building the reflection service (v1alpha)")?;
    Ok((v1, v1alpha))
}

/// Serves every gRPC service on `listener` until `shutdown` completes:
/// on this runtime and on `threads` serving threads of their own (see
/// [`crate::node::serving`]).
pub async fn serve(
    parts: ServiceParts,
    listener: tokio::net::TcpListener,
    threads: usize,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = reflection_services()?;
    set_health(&health, tonic_health::ServingStatus::Serving).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let router = router(parts, stopped.clone())
        .add_service(health_service)
        .add_service(reflection.0)
        .add_service(reflection.1);
    let mut lanes = crate::node::serving::deal_over(listener, threads);
    let started = (lanes.others.drain(..).enumerate())
        .map(|(i, lane)| serving_thread(i + 1, router.clone(), lane, stopped.clone()))
        .collect::<std::io::Result<Vec<_>>>();
    // On failure the threads already started stop with `stop` dropped.
    let others = started.inspect_err(|_| lanes.dealer.abort());
    let others = others.context("starting the serving threads")?;
    // Printed on stdout (not only logged) so scripts and tests that asked for
    // port 0 learn the real address.
    println!("ordo listening on {local}");
    tracing::info!(address = %local, threads, "serving gRPC");
    let server = router.serve_with_incoming_shutdown(lanes.first, stop_asked(stopped));
    tokio::pin!(server);
    let failed = tokio::select! {
        result = &mut server => Some(result.context("gRPC server failed")),
        _ = &mut lanes.dealer => Some(Err(anyhow::anyhow!("the connection dealer stopped"))),
        () = shutdown => None,
    };
    lanes.dealer.abort();
    let _ = stop.send(true);
    let first = match failed {
        Some(failed) => failed,
        None => {
            set_health(&health, tonic_health::ServingStatus::NotServing).await;
            within_grace(server).await
        }
    };
    // A serving thread that failed is the cause when the dealer stopped
    // (its lane was gone), so its error comes first.
    join_serving_threads(others).await.and(first)
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stop_asked(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Waits for a stopping server to finish: graceful shutdown waits for
/// clients to hang up, and a client that keeps an idle connection open
/// must not keep the node alive for ever.
async fn within_grace(
    server: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.context("gRPC server failed"),
        Err(_) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them");
            Ok(())
        }
    }
}

/// Serves lane `index` on a thread with a single-threaded runtime of its
/// own until `stopped` turns true, then for at most [`SHUTDOWN_GRACE`].
fn serving_thread(
    index: usize,
    router: tonic::transport::server::Router,
    lane: crate::node::serving::LaneIncoming,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("ordo-serve-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let server = router.serve_with_incoming_shutdown(lane, stop_asked(stopped.clone()));
                tokio::pin!(server);
                tokio::select! {
                    result = &mut server => return result.context("gRPC server failed"),
                    () = stop_asked(stopped) => {}
                }
                within_grace(server).await
            })
        })
}

/// Waits for every serving thread to end; the first failure, if any.
async fn join_serving_threads(
    threads: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|thread| match thread.join() {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("a serving thread panicked")),
            })
            .collect::<anyhow::Result<Vec<()>>>()
    });
    joined
        .await
        .context("waiting for the serving threads")?
        .map(|_| ())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: the node announces that
/// it listens, and its workers may answer requests, before the task that
/// waits for the signal first polls it; a SIGTERM sent in between must
/// stop the node gracefully, not kill it (a test saw exactly that under
/// load).
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (interrupt, terminate) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
                _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
            },
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGINT and SIGTERM; stopping only when the server fails");
                std::future::pending::<()>().await;
            }
        }
    }
}
