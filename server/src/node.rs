//! Starting and stopping a node.

use anyhow::Context;
use ordo_log::{CodingParams, LocalSequencer, LocalSequencerOptions, RocksShardStore, Sequencer};
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
    /// How commits are packed into log entries.
    pub batch: crate::commits::BatchLimits,
}

/// What the services of a running node share.
pub struct NodeState {
    /// Orders log entries.
    pub sequencer: Arc<dyn Sequencer>,
    /// Codes, stores and orders new entries.
    pub writer: ordo_log::EntryWriter,
    /// Reads committed entries back, verified.
    pub reader: ordo_log::EntryReader,
    /// How entries are coded.
    pub coding: CodingParams,
    /// Roles this node plays.
    pub role: &'static str,
    /// The replicated state, for reads.
    pub state: ordo_kv::MvccStore<Arc<ordo_kv::RocksEngine>>,
    /// How far the replica has applied the log.
    pub applied: tokio::sync::watch::Receiver<ordo_txn::Applied>,
    /// The commit path: batching and decisions.
    pub committer: crate::commits::Committer,
    /// What the commit path counts.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who SQL commits are signed by, and the SQL stream.
    pub sql: crate::sql::SqlPrincipal,
    /// Signatures checked at ingress or made here, for the replica.
    pub verified: Arc<crate::verified::VerifiedSignatures>,
}

/// The state directory of a node with data directory `data_dir`.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

/// Replays the log of the (stopped) node in `data_dir` into `state` (default:
/// the node's own state), printing where it resumed, optionally each applied
/// entry, and the final position and digest on stdout.
pub async fn run_replay(
    data_dir: &Path,
    state: Option<&Path>,
    progress: bool,
) -> anyhow::Result<()> {
    let sequencer = LocalSequencer::open(data_dir.join("log"), LocalSequencerOptions::default())
        .with_context(|| {
            format!(
                "opening the log in {} (is a node running on it?)",
                data_dir.display()
            )
        })?;
    let sequencer: Arc<dyn Sequencer> = Arc::new(sequencer);
    let shards =
        RocksShardStore::open(data_dir.join("shards")).context("opening the shard store")?;
    let reader = ordo_log::EntryReader::new(Arc::new(shards), sequencer.clone());
    let state = state.map_or_else(|| state_dir(data_dir), Path::to_path_buf);
    let mut replica = crate::replica::Replica::open(&state, reader)?;
    let start = replica.applied();
    println!(
        "resume next_seq={} version={}",
        start.next_seq, start.version
    );
    replica
        .catch_up(sequencer.tail(), |entry| {
            let (seq, applied) = (entry.seq, &entry.applied);
            if progress {
                println!(
                    "applied seq={seq} version={} digest={}",
                    applied.version,
                    ordo_log::hex(&applied.digest)
                );
            }
        })
        .await?;
    let end = replica.applied();
    println!(
        "done next_seq={} version={} digest={}",
        end.next_seq,
        end.version,
        ordo_log::hex(&end.digest)
    );
    Ok(())
}

/// Runs the all-in-one node until SIGINT or SIGTERM.
pub async fn run_dev(config: DevConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let sequencer = LocalSequencer::open(
        config.data_dir.join("log"),
        LocalSequencerOptions::default(),
    )
    .context("opening the local sequencer")?;
    let shards: Arc<dyn ordo_log::ShardStore> = Arc::new(
        RocksShardStore::open(config.data_dir.join("shards")).context("opening the shard store")?,
    );
    let local_sequencer = Arc::new(sequencer);
    let sequencer: Arc<dyn Sequencer> = local_sequencer.clone();
    let coding = CodingParams::default();
    let reader = ordo_log::EntryReader::new(shards.clone(), sequencer.clone());
    let verified = Arc::new(crate::verified::VerifiedSignatures::default());
    let replica = crate::replica::Replica::open(&state_dir(&config.data_dir), reader.clone())
        .context("opening the replica state")?
        .with_verified(verified.clone());
    let engine = replica.engine().clone();
    let (publish, applied) = tokio::sync::watch::channel(replica.applied());
    let waiters = Arc::new(crate::commits::Waiters::default());
    let follower = tokio::spawn(follow_log(
        replica,
        sequencer.clone(),
        publish,
        waiters.clone(),
    ));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (committer, batcher) = crate::commits::Committer::start(
        ordo_log::EntryWriter::new(shards.clone(), sequencer.clone(), coding)?,
        config.batch,
        waiters,
        metrics.clone(),
    );
    let sql = crate::sql::SqlPrincipal::load_or_create(&config.data_dir)?;
    let state = Arc::new(NodeState {
        sequencer: sequencer.clone(),
        writer: ordo_log::EntryWriter::new(shards, sequencer.clone(), coding)?,
        reader,
        coding,
        role: "dev",
        state: ordo_kv::MvccStore::new(engine),
        applied,
        committer,
        metrics,
        sql,
        verified,
    });
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics address {}", config.metrics_listen))?;
    println!(
        "ordo metrics on http://{}/metrics",
        metrics_listener.local_addr()?
    );
    if config.cli_key {
        ensure_cli_identity(&state, &config.data_dir).await?;
    }
    let exporter = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        metrics_page(state.clone(), local_sequencer.clone()),
    ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr()?;
    serve(state, listener, shutdown_signal()).await?;
    exporter.abort();
    batcher.abort();
    follower.abort();
    local_sequencer.close();
    tracing::info!(address = %local, "stopped");
    Ok(())
}

/// First start: a key for the CLI user (`DATA_DIR/cli.key`) and a stream
/// named "default" owned by it, so `ordo kv` works with no set-up. Later
/// starts find both and do nothing (a start that died in between finishes
/// the job).
async fn ensure_cli_identity(state: &Arc<NodeState>, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("cli.key");
    let first_start = !path.exists();
    let key = match first_start {
        false => ordo_client::keyfile::load(&path)?,
        true => ordo_client::keyfile::create(&path)?,
    };
    tracing::info!(key = %path.display(), address = %ordo_client::keyfile::address_hex(&key), "CLI identity");
    let name = crate::kvcli::DEFAULT_STREAM;
    ensure_stream_once(state, key, name, first_start).await
}

/// Makes sure stream `name` of `key` exists. On a first start this is done
/// before serving, so clients find the stream at once; later starts must not
/// wait for replay before serving, so the check (for a start that died
/// between making the key and the stream) runs aside.
async fn ensure_stream_once(
    state: &Arc<NodeState>,
    key: ordo_txn::SigningKey,
    name: &'static str,
    first_start: bool,
) -> anyhow::Result<()> {
    if first_start {
        return ensure_stream(state, &key, name).await;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = ensure_stream(&state, &key, name).await {
            tracing::warn!(%error, stream = name, "could not check a stream");
        }
    });
    Ok(())
}

/// Creates stream `name` of `key` once the replica has caught up, unless it
/// exists.
pub(crate) async fn ensure_stream(
    state: &NodeState,
    key: &ordo_txn::SigningKey,
    name: &str,
) -> anyhow::Result<()> {
    let tail = state.sequencer.tail();
    let mut applied = state.applied.clone();
    applied
        .wait_for(|a| a.next_seq >= tail)
        .await
        .context("the replica stopped while catching up")?;
    let at = applied.borrow().version;
    let name = name.as_bytes().to_vec();
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(key), &name);
    if ordo_txn::replay::fact_holds(&state.state, &stream, &ordo_txn::Fact::Exists, at)? {
        return Ok(());
    }
    let create = ordo_txn::Transaction {
        id: ordo_client::txn::fresh_id(),
        sender: [0; 20],
        read_version: at,
        reads: vec![],
        writes: vec![],
        acl: vec![ordo_txn::AclOp::CreateStream { name: name.clone() }],
    };
    let signed = ordo_txn::sign(create, key)?;
    let encoded_len = signed.encode().len();
    let decided = state.committer.commit(signed, encoded_len).await?;
    tracing::info!(
        outcome = decided.outcome.kind(),
        stream = %String::from_utf8_lossy(&name),
        "created a stream"
    );
    Ok(())
}

/// Renders the metrics page from the node's counters and gauges.
fn metrics_page(
    state: Arc<NodeState>,
    sequencer: Arc<LocalSequencer>,
) -> Arc<dyn Fn() -> String + Send + Sync> {
    Arc::new(move || {
        let applied = *state.applied.borrow();
        state.metrics.render(&crate::metrics::NodeGauges {
            log_tail: state.sequencer.tail(),
            applied_seq: applied.next_seq,
            applied_version: applied.version,
            fsync_micros: sequencer.fsync_latency(),
        })
    })
}

/// Runs the replica role until the log closes; a failure is logged, and the
/// node keeps serving what it has applied (status shows the lag grow).
async fn follow_log(
    replica: crate::replica::Replica,
    sequencer: Arc<dyn Sequencer>,
    applied: tokio::sync::watch::Sender<ordo_txn::Applied>,
    waiters: Arc<crate::commits::Waiters>,
) {
    let deliver = move |entry: &crate::replica::AppliedEntry<'_>| waiters.deliver(entry);
    if let Err(error) = crate::replica::follow(replica, sequencer, applied, deliver).await {
        tracing::error!(%error, "replica stopped");
    }
}

/// Serves every gRPC service on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let status = ordo_proto::v1::status_server::StatusServer::new(
        crate::services::StatusService::new(state.clone()),
    );
    let log =
        ordo_proto::v1::log_server::LogServer::new(crate::services::LogService::new(state.clone()))
            .max_decoding_message_size(crate::services::MAX_REQUEST_BYTES);
    let kv =
        ordo_proto::v1::kv_server::KvServer::new(crate::services::KvService::new(state.clone()));
    let acl =
        ordo_proto::v1::acl_server::AclServer::new(crate::services::AclService::new(state.clone()));
    // Twice the transaction limit: anything up to that gets the decoder's
    // typed "too large" error; beyond it tonic refuses the message itself.
    let txn =
        ordo_proto::v1::txn_server::TxnServer::new(crate::services::TxnService::new(state.clone()))
            .max_decoding_message_size(2 * ordo_txn::limits::MAX_TXN_BYTES);
    // Twice the SQL text limit, so oversized scripts get the SQL layer's
    // typed "too long" error.
    let sql = ordo_proto::v1::sql_server::SqlServer::new(crate::services::SqlService::new(state))
        .max_decoding_message_size(2 * ordo_sql::parse::MAX_SQL_BYTES);
    health
        .set_serving::<ordo_proto::v1::status_server::StatusServer<crate::services::StatusService>>(
        )
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // Printed on stdout (not only logged) so scripts and tests that asked for
    // port 0 learn the real address.
    println!("ordo listening on {local}");
    tracing::info!(address = %local, "serving gRPC");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // No Nagle: replies are small and latency-bound; with Nagle, a reply
    // written in pieces waits for the client's delayed ACK (about 40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(status)
        .add_service(log)
        .add_service(kv)
        .add_service(txn)
        .add_service(acl)
        .add_service(sql)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("gRPC server failed"),
        () = shutdown => {}
    }
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let _ = stop.send(());
    // Graceful shutdown waits for clients to hang up; a client that keeps an
    // idle connection open must not keep the node alive for ever.
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.context("gRPC server failed")?,
        Err(_) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them")
        }
    }
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stopping only on SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, stopping"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
    }
}
