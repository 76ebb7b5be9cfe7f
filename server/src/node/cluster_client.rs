//! The client-facing roles of a cluster member: **replica** (follows the
//! committed headers, fetches each entry's shards from the storage members,
//! replays, and serves reads, watch, SQL and status) and **gateway** (also
//! takes commits: batches them into entries, spreads each entry's shards
//! over the storage members, orders its header once a write quorum of
//! shards is durable, and acknowledges a commit once its own replica
//! applied the entry).
//!
//! Both serve the same gRPC API as `ordo dev`, in the clear, on the
//! member's `listen` address: the CLI, the client libraries and the
//! benchmark work against any of them. They are `ordo dev`'s roles over
//! another log: [`crate::node::run::start_client_roles`] runs unchanged
//! over an [`EntryWriter::spread`] and an [`EntryReader::spread`] (shards
//! through [`StorageSet`], headers through the raft voters), so replay,
//! the commit path and every service are the code `ordo dev` tests.
//!
//! A read replica refuses commits with a typed error (FAILED_PRECONDITION);
//! a gateway always runs its own replica, because it acknowledges a commit
//! only after applying it.

use crate::node::commits::BatchLimits;
use crate::node::da::certify::Certifier;
use crate::node::handles::{Commits, Snapshots};
use crate::node::run::{ClientSettings, ClientTasks, LogAccess, ServiceParts};
use crate::node::storage_set::StorageSet;
use anyhow::Context;
use ordo_log::{EntryReader, EntryWriter, RecentPayloads, Sequencer, SpreadShards};
use ordo_raft::{PeerTls, RaftSequencer, RemoteSequencer};
use ordo_txn::attest::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Pause between attempts to reach the sequencers, or to found the log,
/// while the cluster is still forming (members may start in any order,
/// and `ordo cluster init` may come after them).
pub const FORMING_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The sequencer as a member that is no voter reaches it: waits, retrying
/// every [`FORMING_RETRY_PAUSE`], until a voter answers.
pub async fn connect_sequencers(voters: &[String], tls: &Arc<PeerTls>) -> Arc<RemoteSequencer> {
    loop {
        match RemoteSequencer::connect(voters.to_vec(), tls.clone()).await {
            Ok(sequencer) => return Arc::new(sequencer),
            Err(e) => tracing::warn!(error = %e, "waiting for the sequencers"),
        }
        tokio::time::sleep(FORMING_RETRY_PAUSE).await;
    }
}

/// The log's order on a chain: waits, retrying every
/// [`FORMING_RETRY_PAUSE`], until the endpoint answers. A gateway appends
/// with its node key, so the chain records its own address as the
/// submitter of its entries; a replica only reads.
async fn connect_chain(
    config: &ClientConfig,
    chain: &ordo_evm::EvmSettings,
) -> anyhow::Result<Arc<ordo_evm::EvmSequencer>> {
    let signer = match config.gateway {
        true => Some(crate::node::gateway::NodeKey::load_or_create(&config.data_dir)?.key),
        false => None,
    };
    let chain = ordo_evm::EvmSettings {
        saved_dir: Some(config.data_dir.join("chain")),
        ..chain.clone()
    };
    let mut attempts = 0u64;
    loop {
        match ordo_evm::EvmSequencer::open(chain.clone(), signer.clone()).await {
            Ok(sequencer) => return Ok(Arc::new(sequencer)),
            // The endpoint may come up after this member; nothing else
            // (another chain, no contract) mends itself.
            Err(e @ ordo_evm::EvmError::Rpc { .. }) => {
                attempts += 1;
                if attempts % 10 == 1 {
                    tracing::warn!(error = %e, "waiting for the chain");
                }
            }
            Err(e) => return Err(anyhow::Error::new(e).context("opening the chain's log")),
        }
        tokio::time::sleep(FORMING_RETRY_PAUSE).await;
    }
}

/// What the client roles of a member are told by its config file.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the member keeps its key and replica state.
    pub data_dir: std::path::PathBuf,
    /// Where it serves clients.
    pub listen: std::net::SocketAddr,
    /// Whether it takes commits (a gateway) or only serves reads.
    pub gateway: bool,
    /// The voters' peer addresses (unused when the member is a voter).
    pub sequencers: Vec<String>,
    /// The storage members, id to peer address.
    pub storage: std::collections::BTreeMap<u64, String>,
    /// How the gateway codes entries.
    pub coding: ordo_log::CodingParams,
    /// Shards durable before an entry is ordered (`None`: `k + m - 1`).
    pub write_quorum: Option<usize>,
    /// How the gateway packs commits into entries, and how many entries it
    /// keeps in flight.
    pub batch: BatchLimits,
    /// The chain that orders the log, instead of the voters of
    /// `sequencers`.
    pub evm: Option<ordo_evm::EvmSettings>,
}

impl ClientConfig {
    /// The fewest storage members the write quorum can be met on.
    pub fn fewest_storage_members(&self) -> usize {
        let coding = &self.coding;
        crate::node::storage_set::write_quorum(
            coding.data_shards,
            coding.parity_shards,
            self.write_quorum,
        )
    }
}

/// The client-facing half of a running member.
pub struct ClientSide {
    /// The replica's and commit path's metrics page.
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// The replica's applied position and the tail it knows of.
    position: crate::node::reporter::Position,
    /// The storage members, as the log records them.
    storage: StorageSet,
    /// The log's order, as this member's replica follows it.
    sequencer: Arc<dyn Sequencer>,
    /// Keeps `storage` on the membership the replica applied.
    membership: tokio::task::JoinHandle<()>,
    tasks: ClientTasks,
    /// What the replica and the commit path hand a miner beside them.
    handles: (Snapshots, Commits),
    /// Where the status service finds a miner beside them, once it starts.
    miner: crate::node::services::status::MinerSlot,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl ClientSide {
    /// Opens the member's replica over the cluster's log, founds the log if
    /// this is a gateway and the log is empty, and starts serving clients
    /// on `config.listen`. Waits for the sequencers while none answers.
    pub async fn start(
        config: &ClientConfig,
        tls: &Arc<PeerTls>,
        voter: Option<Arc<RaftSequencer>>,
    ) -> anyhow::Result<Self> {
        let listen = config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the client address {listen}"))?;
        let (access, storage, certifier) = cluster_log(config, tls, voter).await?;
        let gateway = config.gateway;
        let settings = ClientSettings {
            data_dir: config.data_dir.clone(),
            batch: config.batch,
            log_appenders: Vec::new(),
            role: if gateway { "gateway" } else { "replica" },
            takes_commits: gateway,
            da: crate::node::da::DaLimits::default(),
            certifier: Some(certifier),
        };
        let (parts, tasks) = crate::node::run::start_client_roles(&settings, access)?;
        let membership = tokio::spawn(crate::node::storage_members::follow(
            parts.snapshots.clone(),
            storage.clone(),
            config.storage.clone(),
            config.fewest_storage_members(),
        ));
        if gateway {
            found_log(&parts).await;
        }
        let metrics = crate::node::run::metrics_page(&parts, None);
        let handles = (parts.snapshots.clone(), parts.commits.clone());
        let miner = parts.miner.clone();
        let (snapshots, followed) = (parts.snapshots.clone(), parts.sequencer.clone());
        let sequencer = followed.clone();
        let position: crate::node::reporter::Position =
            Arc::new(move || (snapshots.position().next_seq, followed.tail()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::node::run::serve(parts, listener, 0, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            metrics,
            position,
            storage,
            sequencer,
            membership,
            tasks,
            handles,
            miner,
            server,
            stop,
        })
    }

    /// The replica's and commit path's metrics page.
    pub fn metrics_page(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        self.metrics.clone()
    }

    /// The storage members, kept on the membership the log records.
    pub fn storage_set(&self) -> StorageSet {
        self.storage.clone()
    }

    /// The log's order as this member's replica follows it (raft voters or
    /// a chain), for a repair role beside it.
    pub fn sequencer(&self) -> Arc<dyn Sequencer> {
        self.sequencer.clone()
    }

    /// The replica's state and the commit path, for a miner beside them.
    pub fn handles(&self) -> (Snapshots, Commits) {
        self.handles.clone()
    }

    /// Shows `stats` in this member's status: its miner started.
    pub fn show_miner(&self, stats: Arc<crate::node::miner::MinerStats>) {
        let _ = self.miner.set(stats);
    }

    /// The replica's applied position and the tail it knows of, for reports.
    pub fn position(&self) -> crate::node::reporter::Position {
        self.position.clone()
    }

    /// Waits until the client server ends on its own (an error: it ends
    /// only when told to).
    pub async fn ended(&mut self) -> anyhow::Error {
        match (&mut self.server).await {
            Ok(Ok(())) => anyhow::anyhow!("the client server stopped unasked"),
            Ok(Err(e)) => e.context("serving clients"),
            Err(e) => anyhow::Error::new(e).context("the client server task"),
        }
    }

    /// Stops serving clients (in-flight calls get the server's grace
    /// period), then the batcher and the replica.
    pub async fn stop(self) {
        self.membership.abort();
        let _ = self.stop.send(());
        // `ended` may have seen the server end already; a finished
        // handle must not be awaited again.
        if self.server.is_finished() {
            self.tasks.stop();
            return;
        }
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the client server failed while stopping"),
            Err(e) => tracing::warn!(error = %e, "the client server task failed"),
        }
        self.tasks.stop();
    }
}

/// The cluster's log as this member's client roles use it: shards through
/// the storage members at the configured write quorum, headers through
/// this member's own voter or the voters it names.
async fn cluster_log(
    config: &ClientConfig,
    tls: &Arc<PeerTls>,
    voter: Option<Arc<RaftSequencer>>,
) -> anyhow::Result<(LogAccess, StorageSet, Certifier)> {
    let storage = StorageSet::connect(&config.storage, tls)
        .context("reaching the storage members")?
        .with_write_quorum(config.write_quorum);
    let shards: Arc<dyn SpreadShards> = Arc::new(storage.clone());
    let (mut chain_stats, mut ordering) = (None, Ordering::Members);
    let voters = Certifier::Voters {
        addresses: config.sequencers.clone(),
        local: voter.clone(),
        tls: tls.clone(),
    };
    let (sequencer, certifier): (Arc<dyn Sequencer>, _) = match (voter, &config.evm) {
        (Some(voter), _) => (voter, voters),
        (None, Some(settings)) => {
            let chain = connect_chain(config, settings).await?;
            chain_stats = Some(chain.stats());
            ordering = Ordering::Chain {
                chain_id: settings.chain_id,
                contract: settings.contract.into_array(),
            };
            (chain.clone(), Certifier::Chain(chain))
        }
        (None, None) => (connect_sequencers(&config.sequencers, tls).await, voters),
    };
    let coding = config.coding;
    // The gateway's replica takes the entries its own batcher just wrote
    // from memory instead of fetching them back from the storage members.
    let recent = Arc::new(RecentPayloads::default());
    let writer = EntryWriter::spread(shards.clone(), sequencer.clone(), coding)
        .context("coding parameters")?
        .remembering(recent.clone());
    let reader = EntryReader::spread(shards, sequencer.clone()).remembering(recent);
    let access = LogAccess {
        sequencer,
        writer,
        reader,
        coding,
        chain: chain_stats,
        ordering,
        write_quorum: Some(config.fewest_storage_members()),
    };
    Ok((access, storage, certifier))
}

/// Founds the log if it is empty, retrying while the cluster forms: the
/// gateway serves clients only once the log has its genesis record, so no
/// commit can come before it (a log whose first entry is not a genesis
/// record has no admin and no gateways, for ever).
async fn found_log(parts: &ServiceParts) {
    let mut attempts = 0u64;
    loop {
        match crate::node::run::found_log_if_empty(parts).await {
            Ok(()) => return,
            Err(e) => {
                attempts += 1;
                // The first attempts fail while the voters elect a leader.
                if attempts % 10 == 1 {
                    tracing::warn!(error = format!("{e:#}"), "waiting to found the log");
                }
            }
        }
        tokio::time::sleep(FORMING_RETRY_PAUSE).await;
    }
}
