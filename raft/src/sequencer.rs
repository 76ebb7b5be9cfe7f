//! [`RaftSequencer`]: the [`Sequencer`] a voter offers its node.
//!
//! Appends from the node's tasks are batched (one raft entry, so one quorum
//! round and one flush per voter, carries every descriptor that queued while
//! the previous batch was in flight). On the leader a batch is proposed
//! directly; on a follower it is forwarded to the leader's `Append` RPC. An
//! append returns once its header is committed and applied on *this* voter,
//! so the node's own reads and `tail` already include it.
//!
//! A forwarded batch is sent again only when the voter it reached proposed
//! nothing (it was not the leader, or could not be reached). When the
//! answer is lost after the leader proposed it, the append fails as
//! unknown: the descriptor may still be ordered, and the caller decides
//! (the log's readers tolerate an entry ordered twice; replay's
//! transaction ids make the second copy change nothing).

use crate::leader_queue::Refusal;
use crate::network::{LEADER_METADATA, Network, RaftService, peer_client};
use crate::store::{HeaderReader, OpenError, open_store};
use crate::tls::PeerTls;
use crate::types::MAX_BATCH_DESCRIPTORS;
use crate::types::{HeaderBatch, Node, NodeId, TypeConfig};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Raft, SnapshotPolicy};
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError, WriteFault};
use ordo_proto::cluster::v1::AppendRequest;
use ordo_proto::cluster::v1::sequencer_server::SequencerServer;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Appends waiting for the batcher beyond this make `append` wait for room.
pub const MAX_QUEUED_APPENDS: usize = 16 * MAX_BATCH_DESCRIPTORS;

/// How long an append keeps looking for a leader (an election, a leader
/// unreachable for a moment) before it fails.
pub const APPEND_DEADLINE: Duration = Duration::from_secs(10);

/// How long [`RaftSequencer::shutdown`] waits for raft's tasks to drop the store.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Pause between attempts to find a leader.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Raft timing for voters on one network: heartbeats every 100 ms, an
/// election after 0.5-1 s of silence. A heartbeat's round trip plus a
/// follower's fsync must fit in the heartbeat interval (openraft's
/// AppendEntries timeout), with room for a loaded machine.
pub fn raft_config() -> openraft::Config {
    openraft::Config {
        cluster_name: "ordo".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        // The header log is the state: the raft log is never purged, so no
        // snapshot is ever needed to catch a voter up.
        snapshot_policy: SnapshotPolicy::Never,
        max_payload_entries: 64,
        ..Default::default()
    }
}

/// Where a voter keeps its state and who it is.
pub struct VoterConfig {
    /// The voter's id: unique in the cluster, never reused.
    pub id: NodeId,
    /// Directory of its RocksDB store.
    pub dir: PathBuf,
    /// A switch that fails the store's next write (tests only).
    pub fault: Option<Arc<WriteFault>>,
    /// Its member credentials, for raft and forwarded appends.
    pub tls: Arc<PeerTls>,
}

/// Why a voter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its store did not open.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// openraft refused the configuration or failed to start.
    #[error("starting raft: {0}")]
    Raft(String),
}

struct Proposal {
    descriptor: EntryDescriptor,
    reply: oneshot::Sender<Result<u64, SequencerError>>,
}

/// A raft voter as a [`Sequencer`].
pub struct RaftSequencer {
    id: NodeId,
    raft: Raft<TypeConfig>,
    /// Raft's handles on the store, to know when shutdown let go of it.
    raft_handles: Arc<()>,
    reader: HeaderReader,
    proposals: mpsc::Sender<Proposal>,
    /// The queue behind the `Append` RPC.
    leader_queue: mpsc::Sender<crate::leader_queue::Group>,
    /// What members report to this voter.
    reports: Arc<crate::reports::MemberReports>,
    /// Set when the voter stops, for the streams its service serves.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl RaftSequencer {
    /// Opens the voter's store and starts raft on it. The voter serves
    /// nothing until its [`RaftSequencer::service`] is mounted on a gRPC
    /// server at the address its peers know it by.
    pub async fn start(config: VoterConfig) -> Result<Arc<Self>, StartError> {
        let (log, machine) = open_store(&config.dir, config.fault)?;
        let reader = machine.reader();
        let raft_handles = machine.raft_handles();
        let raft_config = raft_config()
            .validate()
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let network = Network::new(config.tls.clone());
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log, machine)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let (proposals, queue) = mpsc::channel(MAX_QUEUED_APPENDS);
        let forwarder = Forwarder {
            id: config.id,
            tls: config.tls,
        };
        tokio::spawn(run_batcher(raft.clone(), forwarder, queue));
        let leader_queue = crate::leader_queue::spawn(raft.clone(), config.id);
        Ok(Arc::new(Self {
            id: config.id,
            raft,
            raft_handles,
            reader,
            proposals,
            leader_queue,
            reports: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// What members report to this voter (its own member reports here
    /// directly).
    pub fn reports(&self) -> &Arc<crate::reports::MemberReports> {
        &self.reports
    }

    /// The voter's gRPC service, for its node's peer-facing server.
    pub fn service(&self) -> SequencerServer<RaftService> {
        let service = RaftService::new(
            self.raft.clone(),
            self.reader.clone(),
            self.leader_queue.clone(),
            self.reports.clone(),
            self.stopping.subscribe(),
        );
        SequencerServer::new(service)
    }

    /// Forms a new cluster of `voters` (this one among them). Safe to call
    /// on every founding voter with the same set; a voter that already
    /// belongs to a cluster ignores it.
    pub async fn initialize(&self, voters: BTreeMap<NodeId, Node>) -> Result<(), SequencerError> {
        match self.raft.initialize(voters).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(SequencerError::Io(format!("initializing raft: {e}"))),
        }
    }

    /// The underlying raft handle: membership changes and metrics.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The voter's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Stops raft on this voter and waits (at most [`SHUTDOWN_WAIT`]) until
    /// raft's tasks have let go of the store, so that the store closes once
    /// the readers are gone. Appends after this fail.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while Arc::strong_count(&self.raft_handles) > 1 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("raft's tasks still hold the store after {SHUTDOWN_WAIT:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the local header log holds seq `seq`.
    async fn applied_here(&self, seq: u64) -> Result<(), SequencerError> {
        let waited = tokio::time::timeout(APPEND_DEADLINE, self.wait_beyond(seq)).await;
        match waited {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(SequencerError::Io(format!(
                "entry {seq} committed but not applied on this voter within {APPEND_DEADLINE:?}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Sequencer for RaftSequencer {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        let (reply, answer) = oneshot::channel();
        let proposal = Proposal {
            descriptor: entry.clone(),
            reply,
        };
        self.proposals
            .send(proposal)
            .await
            .map_err(|_| SequencerError::Closed)?;
        let seq = answer.await.map_err(|_| SequencerError::Closed)??;
        self.applied_here(seq).await?;
        Ok(EntryHeader { seq, entry })
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        self.reader
            .read(from, max.min(MAX_READ_BATCH))
            .map_err(SequencerError::Io)
    }

    fn tail(&self) -> u64 {
        self.reader.tail()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        let mut tail = self.reader.watch();
        let reached = tail
            .wait_for(|&tail| tail > seq)
            .await
            .map_err(|_| SequencerError::Closed)?;
        Ok(*reached)
    }
}

/// Who the batcher is, for forwarding: its id and member credentials.
struct Forwarder {
    id: NodeId,
    tls: Arc<PeerTls>,
}

/// Gathers queued appends into batches and proposes them one at a time.
async fn run_batcher(
    raft: Raft<TypeConfig>,
    forwarder: Forwarder,
    mut queue: mpsc::Receiver<Proposal>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_DESCRIPTORS);
    while queue.recv_many(&mut batch, MAX_BATCH_DESCRIPTORS).await > 0 {
        let (descriptors, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.descriptor, p.reply)).unzip();
        let result = propose(&raft, &forwarder, HeaderBatch { descriptors }).await;
        for (i, reply) in replies.into_iter().enumerate() {
            let _ = reply.send(result.clone().map(|first| first + i as u64));
        }
    }
}

/// Orders `batch` on the leader, wherever it is; returns its first seq.
async fn propose(
    raft: &Raft<TypeConfig>,
    forwarder: &Forwarder,
    batch: HeaderBatch,
) -> Result<u64, SequencerError> {
    let deadline = tokio::time::Instant::now() + APPEND_DEADLINE;
    loop {
        let leader = match raft.client_write(batch.clone()).await {
            Ok(written) => return Ok(written.data.first),
            Err(e) => leader_to_try(&e, forwarder.id)?,
        };
        if let Some(addr) = leader {
            match forward(&addr, &forwarder.tls, &batch).await {
                Forwarded::Ordered(first) => return Ok(first),
                Forwarded::Unknown(e) => return Err(e),
                Forwarded::NotOrdered => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SequencerError::Io(format!(
                "no raft leader took the append within {APPEND_DEADLINE:?}"
            )));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// After raft refused a local proposal: the leader's address to forward to
/// (None while no leader is known), or the error that ends the append.
fn leader_to_try(
    e: &RaftError<NodeId, ClientWriteError<NodeId, Node>>,
    id: NodeId,
) -> Result<Option<String>, SequencerError> {
    match Refusal::of(e, Some(id)) {
        Refusal::NotLeader(leader) => Ok(leader),
        Refusal::Stopped(why) => Err(SequencerError::Poisoned(format!("raft stopped: {why}"))),
        Refusal::Failed(why) => Err(SequencerError::Io(format!(
            "raft refused the append: {why}"
        ))),
    }
}

enum Forwarded {
    /// The leader ordered the batch from this seq.
    Ordered(u64),
    /// Nothing was proposed: try again.
    NotOrdered,
    /// The batch may or may not be ordered.
    Unknown(SequencerError),
}

/// Sends `batch` to the voter at `addr` to order.
async fn forward(addr: &str, tls: &PeerTls, batch: &HeaderBatch) -> Forwarded {
    let Ok(mut client) = peer_client(addr, tls) else {
        return Forwarded::NotOrdered;
    };
    let request = AppendRequest {
        descriptors: batch.clone().into(),
    };
    match client.append(request).await {
        Ok(reply) => Forwarded::Ordered(reply.into_inner().first_seq),
        Err(status) if not_proposed(&status) => {
            tracing::debug!(%addr, leader = ?status.metadata().get(LEADER_METADATA), "append forwarded to a non-leader");
            Forwarded::NotOrdered
        }
        Err(status) => Forwarded::Unknown(SequencerError::Io(format!(
            "forwarded append to {addr} ended unknown: {status}"
        ))),
    }
}

/// Whether a refused forward certainly proposed nothing: the voter was
/// not the leader, or the connection never carried the request.
fn not_proposed(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::FailedPrecondition => true,
        // tonic's own answer when the connection could not be made.
        tonic::Code::Unavailable => status.message().contains("connect"),
        _ => false,
    }
}
