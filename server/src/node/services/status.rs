//! `ordo.v1.Status`: what the node is and how far it has got.

use crate::node::handles::Snapshots;
use ordo_kv::{Column, Engine, RocksEngine};
use ordo_log::{CodingParams, Sequencer};
use ordo_proto::v1::{
    ChainStatus, GetStatusRequest, GetStatusResponse, MiningStatus, RetentionStatus,
    status_server::Status,
};
use std::sync::Arc;
use tonic::{Request, Response};

/// Serves the node's status.
pub struct StatusService {
    snapshots: Snapshots,
    sequencer: Arc<dyn Sequencer>,
    role: &'static str,
    coding: CodingParams,
    chain: Option<Arc<ordo_evm::EvmStats>>,
    miner: MinerSlot,
    node: ordo_txn::Address,
    /// The log's id, once its first header is known (it never changes).
    log_id: std::sync::OnceLock<Vec<u8>>,
    /// The gateway's write quorum (0: none; see the field's documentation).
    write_quorum: u32,
}

/// The node's miner, once it starts (a node that does not mine leaves it
/// empty).
pub type MinerSlot = Arc<std::sync::OnceLock<Arc<crate::node::miner::MinerStats>>>;

impl StatusService {
    /// Reports the replica's position in `snapshots` against `sequencer`'s
    /// tail, with the node's `role` and how it codes new entries.
    pub fn new(
        snapshots: Snapshots,
        sequencer: Arc<dyn Sequencer>,
        role: &'static str,
        coding: CodingParams,
    ) -> Self {
        Self {
            snapshots,
            sequencer,
            role,
            coding,
            chain: None,
            miner: MinerSlot::default(),
            node: [0; 20],
            log_id: std::sync::OnceLock::new(),
            write_quorum: 0,
        }
    }

    /// Also reports the write quorum this node's gateway waits for, if it
    /// has one.
    pub fn with_write_quorum(self, quorum: Option<usize>) -> Self {
        let write_quorum = quorum.map_or(0, |q| u32::try_from(q).unwrap_or(u32::MAX));
        Self {
            write_quorum,
            ..self
        }
    }

    /// Also reports the node's account.
    pub fn with_node(self, node: ordo_txn::Address) -> Self {
        Self { node, ..self }
    }

    /// Also reports what this node's miner did, once the slot is filled.
    pub fn with_miner(self, miner: MinerSlot) -> Self {
        Self { miner, ..self }
    }

    /// Also reports where the chain ordering the log stands.
    pub fn with_chain(self, chain: Option<Arc<ordo_evm::EvmStats>>) -> Self {
        Self { chain, ..self }
    }
}

/// The chain's part of the status.
fn chain_status(stats: &ordo_evm::EvmStats) -> ChainStatus {
    use std::sync::atomic::Ordering::Relaxed;
    ChainStatus {
        head_block: stats.chain_head.load(Relaxed),
        confirmed_block: stats.confirmed_block.load(Relaxed),
        pending_appends: stats.pending_appends.load(Relaxed),
        transactions: stats.transactions.load(Relaxed),
        gas_used: stats.gas_used.load(Relaxed),
    }
}

/// The miner's part of the status.
fn miner_status(stats: &crate::node::miner::MinerStats) -> ordo_proto::v1::MinerStatus {
    use std::sync::atomic::Ordering::Relaxed;
    ordo_proto::v1::MinerStatus {
        account: stats.account.to_vec(),
        attempts: stats.attempts.load(Relaxed),
        held: stats.held.load(Relaxed),
        hits: stats.hits.load(Relaxed),
        accepted: stats.accepted.load(Relaxed),
        refused: stats.refused.load(Relaxed),
        sealed_chunks: stats.sealed_chunks.load(Relaxed),
        attempts_per_second: stats.rate_milli.load(Relaxed) as f64 / 1000.0,
    }
}

/// Mining's part of the status, once it is configured.
fn mining_status(mining: &ordo_txn::mining::Mining) -> Option<MiningStatus> {
    let params = mining.params?;
    let open = mining.open;
    Some(MiningStatus {
        epoch_entries: params.epoch_entries,
        target_proofs: params.target_proofs,
        reward_per_proof: params.reward_per_proof,
        epoch: open.map_or(0, |o| o.epoch),
        target: open
            .map_or(params.initial_target, |o| o.target)
            .to_bytes()
            .to_vec(),
        accepted: open.map_or(0, |o| o.accepted),
        mineable_chunks: mining.mineable,
    })
}

/// The log's retention and this node's collection.
pub fn retention_status(
    state: &ordo_kv::MvccStore<Arc<RocksEngine>>,
) -> Result<RetentionStatus, tonic::Status> {
    let retention = ordo_txn::retention::Retention::load(state.engine().as_ref())
        .map_err(|e| tonic::Status::internal(format!("reading the retention state: {e}")))?;
    let engine = state.engine();
    Ok(RetentionStatus {
        horizon: retention.horizon,
        keep_versions: retention.policy.keep_versions,
        keep_secs: retention.policy.keep_secs,
        collected_rows: engine.collected_rows(),
        swept_deletes: state.swept_deletes(),
        stored_versions: engine.estimated_rows(Column::Data) + engine.estimated_rows(Column::Acl),
    })
}

impl StatusService {
    /// The log's id, once it has a first entry: read once, then kept (a
    /// replica's sequencer may be a network call away).
    async fn log_id(&self) -> Vec<u8> {
        if let Some(id) = self.log_id.get() {
            return id.clone();
        }
        let Ok(headers) = self.sequencer.read(0, 1).await else {
            return Vec::new();
        };
        match headers.first() {
            Some(first) => (self.log_id)
                .get_or_init(|| ordo_da::certificate::log_id(&first.encode()).to_vec())
                .clone(),
            None => Vec::new(),
        }
    }
}

#[tonic::async_trait]
impl Status for StatusService {
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, tonic::Status> {
        let applied = self.snapshots.position();
        let log_tail = self.sequencer.tail();
        let mining = ordo_txn::mining::Mining::load(self.snapshots.state.engine().as_ref())
            .map_err(|e| tonic::Status::internal(format!("reading mining state: {e}")))?;
        Ok(Response::new(GetStatusResponse {
            applied_version: applied.version,
            applied_seq: applied.next_seq,
            replay_lag: log_tail.saturating_sub(applied.next_seq),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: self.role.to_string(),
            log_tail,
            data_shards: u32::from(self.coding.data_shards),
            parity_shards: u32::from(self.coding.parity_shards),
            state_digest: applied.digest.to_vec(),
            chain: self.chain.as_deref().map(chain_status),
            mining: mining_status(&mining),
            miner: self.miner.get().map(|stats| miner_status(stats)),
            retention: Some(retention_status(&self.snapshots.state)?),
            node_address: self.node.to_vec(),
            log_id: self.log_id().await,
            write_quorum: self.write_quorum,
        }))
    }
}
