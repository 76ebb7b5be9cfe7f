//! `ordo node --config FILE`: one member of a cluster, running the roles
//! its file names.
//!
//! ```toml
//! id = 1                           # unique in the cluster, never reused
//! data_dir = "./ordo-cluster/n1"
//! peer_listen = "127.0.0.1:7531"   # what the other members dial
//! roles = ["sequencer"]
//! tls_dir = "./ordo-cluster/certs" # ca.pem, node-1.pem, node-1.key
//! metrics_listen = "127.0.0.1:7541" # optional: Prometheus, GET /metrics
//! runtime_workers = 1             # optional; default one per core (see
//!                                  # MAX_RUNTIME_WORKERS for when to set it)
//! # the voters: roles that read the log use them, and every member
//! # reports to them for `ordo cluster status`:
//! sequencers = ["127.0.0.1:7531"]
//! # for roles that move shards (repair, replica, gateway):
//! storage = [{ id = 1, addr = "127.0.0.1:7531" }, { id = 2, addr = "127.0.0.1:7532" }]
//! # for the client roles (replica, gateway):
//! listen = "127.0.0.1:7551"        # the client API, as `ordo dev` serves it
//! write_quorum = 5                 # optional; default k + m - 1
//! ```
//!
//! Members talk only over mutual TLS (see `ordo_raft::tls`): `ordo cluster
//! certs` makes the authority and one certificate per member, named
//! `node-ID` unless `tls_name` says otherwise. `repair` restores shards
//! missing from, or damaged at, their placement homes (see
//! [`crate::node::repair`]).
//!
//! Roles: `sequencer`, a raft voter ordering entry headers (its state
//! under `DATA_DIR/raft`); `storage`, a shard store that verifies every
//! shard it takes and serves (under `DATA_DIR/shards`); `repair`; and the
//! client roles of [`crate::node::cluster_client`], `replica` (follows the
//! log into state under `DATA_DIR/state`, serves reads on `listen`) and
//! `gateway` (also takes commits). A gateway or replica names `listen`,
//! `storage`, and `sequencers` unless it is a voter itself; a gateway may
//! set `data_shards`, `parity_shards` and `write_quorum`. A new cluster is
//! formed once with `ordo cluster init`; members join with `ordo cluster
//! add-node` and `promote`.
//!
//! With `sequencer = "evm"` the log's order is a contract on an EVM chain
//! instead of the raft voters (see `ordo_evm`); gateways and replicas (and
//! a repair role beside a replica) then name the chain instead of
//! `sequencers`:
//!
//! ```toml
//! sequencer = "evm"
//! [evm]
//! rpc_url = "http://127.0.0.1:8545"
//! contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//! chain_id = 31337
//! from_block = 1          # the block the contract was deployed in
//! confirmations = 1       # optional; how deep a block must be, 1..=64
//! poll_interval_ms = 1000 # optional
//! rpc_timeout_ms = 10000  # optional; longest one call may take, up to 60000
//! ca_file = "chain-ca.pem" # optional; extra roots for an https endpoint
//! ```
//!
//! A member that stores shards and runs a replica may mine with those
//! shards (docs/MINING.md; its node key is the miner), submitting its
//! proofs through its own gateway or, without one, another member's:
//!
//! ```toml
//! [mining]
//! beneficiary = "0x…"     # who is credited
//! cpu_share = 0.25        # optional; of one core, 0.01..=1
//! submit_to = "http://127.0.0.1:7551" # without a gateway of its own
//! ```
//!
//! A gateway signs its chain transactions with its node key
//! (`DATA_DIR/node.key`), so the submitter the chain records for its
//! entries is the address its attestations carry; the account needs gas.

use crate::node::cluster_client::{ClientConfig, ClientSide};
use crate::node::config::{ConfigError, load_with};
use crate::node::repair::RepairCounters;
use crate::node::services::attest::AttestService;
use crate::node::services::shards::{ShardCounters, ShardService};
use anyhow::Context;
use ordo_log::RocksShardStore;
use ordo_proto::cluster::v1::attest_server::AttestServer;
use ordo_proto::cluster::v1::shards_server::ShardsServer;
use ordo_raft::{PeerTls, RaftSequencer, VoterConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directory of the raft voter's store inside a data directory.
pub const RAFT_DIR: &str = "raft";

/// Directory of a storage node's shards inside a data directory.
pub const SHARDS_DIR: &str = "shards";

/// Why a repair role needs a replica beside it. Repair must place shards
/// where gateways and readers look for them: by the storage membership
/// the log records, which only replay can tell (whether a write to
/// `cluster/storage/` applied is an ACL decision at that log position).
/// A repair role on its own once followed its file's list instead, and
/// restored shards to homes no reader used after a membership change.
const REPAIR_NEEDS_REPLICA: &str = "the repair role places shards by the storage membership the log records, which its member learns by replaying the log: list `replica` too (with `listen`)";

/// The most threads a member's async runtime may run (`runtime_workers`):
/// more than any machine ordo runs on has cores, and each costs a stack.
///
/// Why a member may want fewer than its cores: each idle worker is woken
/// when a task is queued, and another worker may steal it, so a message
/// crossing a member costs a wake-up or two on top of its own work. When
/// seven or eight members share two cores (`scripts/cluster.sh`, the
/// cluster benchmark), those wake-ups are most of what the kernel does:
/// one worker per member took 16-client puts from 3.7-4.0 K/s to 4.4-5.2 K/s
/// on this project's two-core machine (docs/BENCHMARKS.md, "Clusters,
/// fourth round"). A member with a machine of its own keeps the default.
pub const MAX_RUNTIME_WORKERS: usize = 1024;

/// A role a cluster member can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A raft voter ordering entry headers.
    Sequencer,
    /// Keeps shards: verifies each against its commitment before storing
    /// it, and again before serving it.
    Storage,
    /// Restores shards missing from, or damaged at, their homes.
    Repair,
    /// Follows the log into state and serves reads, watch, SQL and status
    /// to clients (see [`crate::node::cluster_client`]).
    Replica,
    /// Takes commits from clients and writes them to the log; runs with
    /// `replica`, which tells it when a commit is applied.
    Gateway,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Sequencer => "sequencer",
            Role::Storage => "storage",
            Role::Repair => "repair",
            Role::Replica => "replica",
            Role::Gateway => "gateway",
        }
    }
}

/// `ordo node`'s file: every key required but `roles`' content.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The member's id: unique in the cluster, never reused.
    pub id: u64,
    /// Where the member keeps its files.
    pub data_dir: PathBuf,
    /// The address other members reach this one at (raft and forwarded
    /// appends).
    pub peer_listen: SocketAddr,
    /// The roles this process runs.
    pub roles: Vec<Role>,
    /// Directory with the cluster authority and this member's certificate.
    pub tls_dir: PathBuf,
    /// The name of this member's certificate files [default: node-ID].
    #[serde(default)]
    pub tls_name: Option<String>,
    /// Where to serve Prometheus metrics (`GET /metrics`) [default: none].
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The sequencer voters' peer addresses: roles that read the log use
    /// them, and every member reports to them for `ordo cluster status`.
    #[serde(default)]
    pub sequencers: Vec<String>,
    /// The storage members (roles that move shards), until the log records
    /// the storage membership (`ordo cluster storage add`), which gateways
    /// and replicas then follow.
    #[serde(default)]
    pub storage: Vec<StorageMember>,
    /// Where the gateway and replica roles serve clients (the same gRPC
    /// API as `ordo dev`) [required by those roles].
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Data shards per entry a gateway writes [default: the log's default].
    #[serde(default)]
    pub data_shards: Option<u16>,
    /// Parity shards per entry a gateway writes [default: the log's default].
    #[serde(default)]
    pub parity_shards: Option<u16>,
    /// Shards of an entry that must be durable on distinct storage members
    /// before a gateway orders it, `k + 1 ..= k + m` [default: `k + m - 1`].
    #[serde(default)]
    pub write_quorum: Option<usize>,
    /// Entries a gateway keeps in flight at once, 1..=64 [default: 1; more
    /// pays when members have disks of their own, see
    /// `commits::MAX_APPENDS_IN_FLIGHT`].
    #[serde(default)]
    pub appends_in_flight: Option<usize>,
    /// Threads of the member's async runtime, 1..=[`MAX_RUNTIME_WORKERS`]
    /// [default: one per core]. One suits members that share a machine's
    /// few cores with others, as a local cluster's do (see
    /// [`MAX_RUNTIME_WORKERS`] for why).
    #[serde(default)]
    pub runtime_workers: Option<usize>,
    /// What orders the log: the raft voters of `sequencers` (the default), or
    /// a contract on an EVM chain (the `[evm]` table).
    #[serde(default)]
    pub sequencer: SequencerKind,
    /// The chain and contract, with `sequencer = "evm"`.
    #[serde(default)]
    pub evm: Option<EvmConfig>,
    /// Mine with the shards this member stores (the `[mining]` table).
    #[serde(default)]
    pub mining: Option<MiningConfig>,
}

/// The `[mining]` table: a member that stores shards, and runs a gateway
/// with its replica, mines with them (docs/MINING.md).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiningConfig {
    /// Who is credited with the member's rewards (`0x` and 40 hex digits).
    pub beneficiary: String,
    /// The share of one core the search may take, 0.01..=1 [default: 0.25].
    #[serde(default)]
    pub cpu_share: Option<f64>,
    /// Another member's gateway (its client address) to submit proofs
    /// through, for a member that runs no gateway of its own.
    #[serde(default)]
    pub submit_to: Option<String>,
}

impl MiningConfig {
    /// The miner's settings, checked.
    pub fn settings(&self) -> Result<crate::node::miner::MinerSettings, String> {
        let settings = crate::node::miner::MinerSettings {
            beneficiary: crate::node::config::parse_address(&self.beneficiary)
                .map_err(|e| format!("[mining] beneficiary: {e}"))?,
            cpu_share: (self.cpu_share).unwrap_or(crate::node::miner::DEFAULT_CPU_SHARE),
        };
        settings.check().map_err(|e| format!("[mining] {e}"))?;
        Ok(settings)
    }
}

/// What orders the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SequencerKind {
    /// The raft voters named by `sequencers`.
    #[default]
    Raft,
    /// The contract named by the `[evm]` table.
    Evm,
}

/// The `[evm]` table: where the log's contract lives.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmConfig {
    /// The chain's JSON-RPC endpoint (`http://`).
    pub rpc_url: String,
    /// The `OrdoLog` contract's address (`0x` and 40 hex digits).
    pub contract: String,
    /// The chain id the endpoint must serve.
    pub chain_id: u64,
    /// The block the contract was deployed in [default: 0].
    #[serde(default)]
    pub from_block: u64,
    /// How deep a block must be before its headers are used, 1..=64
    /// [default: 1].
    #[serde(default = "one_confirmation")]
    pub confirmations: u64,
    /// How often the chain is polled, in milliseconds [default: 1000].
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Longest one JSON-RPC call may take, in milliseconds, 1..=60000
    /// [default: 10000].
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// A PEM file of extra certificates to trust for an `https` endpoint
    /// behind a private authority [default: the system's roots only].
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_rpc_timeout_ms() -> u64 {
    ordo_evm::sequencer::RPC_CALL_TIMEOUT.as_millis() as u64
}

fn one_confirmation() -> u64 {
    1
}

fn default_poll_ms() -> u64 {
    1000
}

impl EvmConfig {
    /// The sequencer's settings, checked.
    pub fn settings(&self) -> Result<ordo_evm::EvmSettings, String> {
        let contract = (self.contract.parse())
            .map_err(|e| format!("[evm] contract {:?}: {e}", self.contract))?;
        if !(1..=ordo_evm::MAX_CONFIRMATIONS).contains(&self.confirmations) {
            return Err(format!(
                "[evm] confirmations must be 1..={}, not {}",
                ordo_evm::MAX_CONFIRMATIONS,
                self.confirmations
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err("[evm] poll_interval_ms must not be 0".into());
        }
        let longest = ordo_evm::sequencer::MAX_RPC_TIMEOUT.as_millis() as u64;
        if !(1..=longest).contains(&self.rpc_timeout_ms) {
            return Err(format!(
                "[evm] rpc_timeout_ms must be 1..={longest}, not {}",
                self.rpc_timeout_ms
            ));
        }
        Ok(ordo_evm::EvmSettings {
            rpc_url: self.rpc_url.clone(),
            contract,
            chain_id: self.chain_id,
            from_block: self.from_block,
            confirmations: self.confirmations,
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms),
            rpc_timeout: std::time::Duration::from_millis(self.rpc_timeout_ms),
            ca_file: self.ca_file.clone(),
            // Set by the member, which knows its data directory.
            saved_dir: None,
        })
    }
}

/// A storage member as a config file names it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageMember {
    /// Its member id.
    pub id: u64,
    /// Its peer address.
    pub addr: String,
}

impl NodeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        load_with(path, Self::parse)
    }

    /// Parses TOML text and checks it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if config.roles.is_empty() {
            return Err("`roles` names no role; a member runs at least one".into());
        }
        if config.id == 0 {
            return Err("`id` 0 is reserved; ids start at 1".into());
        }
        if config.roles.contains(&Role::Repair) && !config.roles.contains(&Role::Replica) {
            return Err(REPAIR_NEEDS_REPLICA.into());
        }
        if let Some(workers) = config.runtime_workers
            && !(1..=MAX_RUNTIME_WORKERS).contains(&workers)
        {
            return Err(format!(
                "runtime_workers must be 1..={MAX_RUNTIME_WORKERS}, not {workers}"
            ));
        }
        config.check_sequencer()?;
        config.check_client_roles()?;
        config.check_mining()?;
        Ok(config)
    }

    /// Checks that a member that mines has what its miner uses.
    fn check_mining(&self) -> Result<(), String> {
        let Some(mining) = &self.mining else {
            return Ok(());
        };
        mining.settings()?;
        let has = |role| self.roles.contains(&role);
        if !(has(Role::Storage) && has(Role::Replica)) {
            return Err("a `[mining]` member mines the shards its storage role keeps and reads replay's recall index from its replica: list `storage` and `replica`".into());
        }
        match (has(Role::Gateway), &mining.submit_to) {
            (true, Some(_)) => Err("[mining] submit_to is for members without a gateway: this one submits through its own".into()),
            (false, None) => Err("[mining] needs `submit_to`, another member's gateway, on a member that runs none".into()),
            _ => Ok(()),
        }
    }

    /// Checks the `sequencer` choice against the roles and tables.
    fn check_sequencer(&self) -> Result<(), String> {
        match (self.sequencer, &self.evm) {
            (SequencerKind::Raft, Some(_)) => {
                Err("an `[evm]` table needs `sequencer = \"evm\"`".into())
            }
            (SequencerKind::Raft, None) => Ok(()),
            (SequencerKind::Evm, None) => {
                Err("`sequencer = \"evm\"` needs an `[evm]` table".into())
            }
            (SequencerKind::Evm, Some(evm)) => {
                evm.settings()?;
                let has = |role| self.roles.contains(&role);
                if has(Role::Sequencer) {
                    return Err("the sequencer role runs with the raft sequencer only, not with `sequencer = \"evm\"`: the chain orders the log".into());
                }
                Ok(())
            }
        }
    }

    /// Checks what the gateway and replica roles need.
    fn check_client_roles(&self) -> Result<(), String> {
        let has = |role| self.roles.contains(&role);
        if has(Role::Gateway) && !has(Role::Replica) {
            return Err("the gateway role acknowledges a commit once its own replica applied it: list `replica` too".into());
        }
        if !has(Role::Replica) {
            return Ok(());
        }
        if self.listen.is_none() {
            return Err("the replica role needs `listen`, the address it serves clients on".into());
        }
        let ordered = !self.sequencers.is_empty()
            || has(Role::Sequencer)
            || self.sequencer == SequencerKind::Evm;
        if self.storage.is_empty() || !ordered {
            return Err(
                "the replica role needs `storage`, and `sequencers` unless the member is a voter or the log is ordered on a chain"
                    .into(),
            );
        }
        let coding = self.coding();
        coding
            .validate()
            .map_err(|e| format!("data_shards/parity_shards: {e}"))?;
        let (k, total) = (
            usize::from(coding.data_shards),
            usize::from(coding.data_shards + coding.parity_shards),
        );
        if let Some(asked) = self.write_quorum.filter(|q| !(k + 1..=total).contains(q)) {
            return Err(format!(
                "write_quorum {asked} is outside {}..={total} for {k}+{} shards",
                k + 1,
                total - k
            ));
        }
        self.batch_limits().check()?;
        let quorum = crate::node::storage_set::write_quorum(
            coding.data_shards,
            coding.parity_shards,
            self.write_quorum,
        );
        if has(Role::Gateway) && self.storage.len() < quorum {
            return Err(format!(
                "write quorum {quorum} needs at least {quorum} storage members, `storage` names {}",
                self.storage.len()
            ));
        }
        Ok(())
    }

    /// How this member's gateway codes entries.
    pub fn coding(&self) -> ordo_log::CodingParams {
        let default = ordo_log::CodingParams::default();
        ordo_log::CodingParams {
            data_shards: self.data_shards.unwrap_or(default.data_shards),
            parity_shards: self.parity_shards.unwrap_or(default.parity_shards),
            ..default
        }
    }

    /// What the client roles take from the file (`None` without `replica`
    /// or `listen`, which `parse` refuses together).
    fn client_config(&self) -> Option<ClientConfig> {
        let listen = self
            .listen
            .filter(|_| self.roles.contains(&Role::Replica))?;
        Some(ClientConfig {
            data_dir: self.data_dir.clone(),
            listen,
            gateway: self.roles.contains(&Role::Gateway),
            sequencers: self.sequencers.clone(),
            storage: self.storage_members(),
            coding: self.coding(),
            write_quorum: self.write_quorum,
            batch: self.batch_limits(),
            // Checked by `parse`.
            evm: self.evm.as_ref().and_then(|evm| evm.settings().ok()),
        })
    }

    /// The gateway's batching: the defaults, with `appends_in_flight`.
    fn batch_limits(&self) -> crate::node::commits::BatchLimits {
        let defaults = crate::node::commits::BatchLimits::default();
        crate::node::commits::BatchLimits {
            appends_in_flight: self.appends_in_flight.unwrap_or(defaults.appends_in_flight),
            ..defaults
        }
    }

    /// The storage members by id.
    pub fn storage_members(&self) -> BTreeMap<u64, String> {
        (self.storage.iter())
            .map(|m| (m.id, m.addr.clone()))
            .collect()
    }
}

/// What a running member serves on its peer address.
struct PeerRoles {
    voter: Option<Arc<RaftSequencer>>,
    /// The voter's node key, which signs blob certificates' statements.
    attest_key: Option<crate::node::gateway::NodeKey>,
    shards: Option<Arc<RocksShardStore>>,
    shard_counters: Arc<ShardCounters>,
    repair: Option<Arc<RepairCounters>>,
}

impl PeerRoles {
    async fn open(config: &NodeConfig, tls: &Arc<PeerTls>) -> anyhow::Result<Self> {
        let voter = match config.roles.contains(&Role::Sequencer) {
            false => None,
            true => Some(
                RaftSequencer::start(VoterConfig {
                    id: config.id,
                    dir: config.data_dir.join(RAFT_DIR),
                    fault: None,
                    tls: tls.clone(),
                })
                .await
                .with_context(|| {
                    format!("opening the raft voter in {}", config.data_dir.display())
                })?,
            ),
        };
        let shards = match config.roles.contains(&Role::Storage) {
            false => None,
            true => Some(Arc::new(
                RocksShardStore::open(config.data_dir.join(SHARDS_DIR))
                    .context("opening the shard store")?,
            )),
        };
        let repair = config.roles.contains(&Role::Repair).then(Arc::default);
        let attest_key = match voter {
            Some(_) => Some(crate::node::gateway::NodeKey::load_or_create(
                &config.data_dir,
            )?),
            None => None,
        };
        Ok(Self {
            voter,
            attest_key,
            shards,
            shard_counters: Arc::default(),
            repair,
        })
    }

    /// The metrics page of the roles this member runs.
    fn metrics_page(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        let voter = self.voter.clone();
        let counters = self.shards.as_ref().map(|_| self.shard_counters.clone());
        let repair = self.repair.clone();
        Arc::new(move || {
            let mut out = String::new();
            if let Some(voter) = &voter {
                render_raft(&mut out, voter);
            }
            if let Some(counters) = &counters {
                counters.render(&mut out);
            }
            if let Some(repair) = &repair {
                repair.render(&mut out);
            }
            out
        })
    }

    fn router(&self, tls: &PeerTls) -> anyhow::Result<tonic::transport::server::Router> {
        let shards = self.shards.clone().map(|store| {
            ShardsServer::new(ShardService::new(store, self.shard_counters.clone()))
                .max_decoding_message_size(crate::node::services::MAX_REQUEST_BYTES)
                .max_encoding_message_size(crate::node::services::MAX_REQUEST_BYTES)
        });
        Ok(tonic::transport::Server::builder()
            .tls_config(tls.server())
            .context("configuring peer TLS")?
            .add_optional_service(self.voter.as_ref().map(|voter| voter.service()))
            .add_optional_service(self.attest())
            .add_optional_service(shards))
    }

    /// The voter's signatures on certificates' statements.
    fn attest(&self) -> Option<AttestServer<AttestService>> {
        let (voter, key) = (self.voter.clone()?, self.attest_key.clone()?);
        Some(AttestServer::new(AttestService::new(voter, key)))
    }
}

/// A voter's raft gauges in Prometheus' text format.
fn render_raft(out: &mut String, voter: &RaftSequencer) {
    use crate::node::metrics::gauge;
    let metrics = voter.raft().metrics().borrow().clone();
    let is_leader = metrics.current_leader == Some(metrics.id);
    gauge(
        out,
        "ordo_raft_term",
        "The voter's current raft term.",
        metrics.current_term,
    );
    gauge(
        out,
        "ordo_raft_is_leader",
        "1 while this voter leads.",
        u64::from(is_leader),
    );
    let last_log = metrics.last_log_index.unwrap_or(0);
    gauge(
        out,
        "ordo_raft_last_log_index",
        "Index of the voter's last raft log entry.",
        last_log,
    );
    let applied = metrics.last_applied.map_or(0, |id| id.index);
    gauge(
        out,
        "ordo_raft_applied_index",
        "Index of the last raft entry applied here.",
        applied,
    );
    let tail = ordo_log::Sequencer::tail(voter);
    gauge(
        out,
        "ordo_raft_header_tail",
        "Headers applied here: the next seq.",
        tail,
    );
}

/// The client roles' metrics page, once they have started.
type LatePage = Arc<std::sync::OnceLock<Arc<dyn Fn() -> String + Send + Sync>>>;

/// Starts the metrics exporter, if the file asks for one: the peer roles'
/// page, then the client roles' once `late` is set.
async fn start_exporter(
    config: &NodeConfig,
    roles: &PeerRoles,
    late: &LatePage,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = config.metrics_listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    let (peer, late) = (roles.metrics_page(), late.clone());
    let page = Arc::new(move || {
        let client = late.get().map(|page| page()).unwrap_or_default();
        peer() + &client
    });
    Ok(Some(tokio::spawn(crate::node::metrics::serve(
        listener, page,
    ))))
}

/// Runs the member until SIGINT or SIGTERM.
pub async fn run_node(config: NodeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.peer_listen)
        .await
        .with_context(|| format!("binding the peer address {}", config.peer_listen))?;
    let local = listener.local_addr()?;
    let name = (config.tls_name.clone()).unwrap_or_else(|| format!("node-{}", config.id));
    let tls = Arc::new(
        PeerTls::load(&config.tls_dir, &name)
            .with_context(|| format!("loading member certificate {name}"))?
            .dialing_from(config.peer_listen.ip()),
    );
    let roles = PeerRoles::open(&config, &tls).await?;
    let late = LatePage::default();
    let exporter = start_exporter(&config, &roles, &late).await?;
    let stopping = crate::node::run::shutdown_signal();
    let incoming = ordo_raft::network::peer_incoming(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = roles
        .router(&tls)?
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    let mut server = tokio::spawn(server);
    let names: Vec<&str> = config.roles.iter().map(|r| r.name()).collect();
    println!(
        "ordo node {} listening on {local} ({})",
        config.id,
        names.join(", ")
    );
    let outcome = serve_until_stopped(&config, &tls, &roles, &late, stopping, &mut server).await;
    // This member's own clients (its repair, which follows the log, ended
    // in `serve_until_stopped`) would hold the server's graceful stop open.
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    let _ = stop.send(());
    // Other members' follow streams end only when they go away: wait for
    // them a while, then close what is left.
    if tokio::time::timeout(crate::node::run::SHUTDOWN_GRACE, &mut server)
        .await
        .is_err()
    {
        tracing::warn!(
            "peer connections still open after {:?}; closing them",
            crate::node::run::SHUTDOWN_GRACE
        );
        server.abort();
    }
    if let Some(voter) = roles.voter {
        voter.shutdown().await;
    }
    outcome
}

/// Starts the client roles (if the member runs any) and serves until a
/// stop signal or a server failure; stops the client roles before it
/// returns.
async fn serve_until_stopped(
    config: &NodeConfig,
    tls: &Arc<PeerTls>,
    roles: &PeerRoles,
    late: &LatePage,
    stopping: impl std::future::Future<Output = ()>,
    server: &mut PeerServer,
) -> anyhow::Result<()> {
    tokio::pin!(stopping);
    let mut client = None;
    if let Some(client_config) = config.client_config() {
        // Starting waits for the sequencers and founds the log: a stop
        // signal or a failing peer server must still end it.
        let start = ClientSide::start(&client_config, tls, roles.voter.clone());
        tokio::select! {
            () = &mut stopping => return Ok(()),
            ended = &mut *server => return Err(server_ended(ended)),
            started = start => client = Some(started?),
        }
    }
    let miner = start_miner(config, roles, client.as_ref())?;
    if let Some(client) = &client {
        let page = client.metrics_page();
        let _ = late.set(match &miner {
            Some((_, mined)) => crate::node::miner::with_miner_page(page, mined.clone()),
            None => page,
        });
    }
    let mut member_tasks = start_member_tasks(config, tls, roles, client.as_ref());
    member_tasks.extend(miner.map(|(task, _)| task.abort_handle()));
    let outcome = tokio::select! {
        () = &mut stopping => Ok(()),
        ended = &mut *server => Err(server_ended(ended)),
        error = async {
            match client.as_mut() {
                Some(client) => client.ended().await,
                None => std::future::pending().await,
            }
        } => Err(error),
    };
    for task in member_tasks {
        task.abort();
    }
    if let Some(client) = client {
        client.stop().await;
    }
    outcome
}

/// Starts the tasks that run beside a member's client side until it stops:
/// the compactor and the blob expirer on a gateway, the sweeper and the
/// heads keeper on every replica, repair where the member has that role,
/// and the reporter. Each is aborted, not awaited, when the member stops.
fn start_member_tasks(
    config: &NodeConfig,
    tls: &Arc<PeerTls>,
    roles: &PeerRoles,
    client: Option<&ClientSide>,
) -> Vec<tokio::task::AbortHandle> {
    let mut tasks = Vec::new();
    if let Some(client) = client {
        if config.roles.contains(&Role::Gateway) {
            tasks.push(crate::node::compactor::spawn(client.handles()));
            tasks.push(crate::node::da::expirer::spawn(client.handles()));
        }
        tasks.push(crate::node::compactor::spawn_sweeper(client.handles().0));
        tasks.push(crate::node::heads_keeper::spawn(client.handles().0));
        // Repair follows what the replica follows: the storage members as
        // the log records them, ordered by the replica's own sequencer (the
        // file check puts a replica beside every repair role).
        if let Some(counters) = &roles.repair {
            let (set, sequencer) = (client.storage_set(), client.sequencer());
            tasks.push(tokio::spawn(crate::node::repair::run(
                sequencer,
                set,
                counters.clone(),
            )));
        }
    }
    let sources = report_sources(config, roles, client);
    tasks.push(tokio::spawn(crate::node::reporter::run(
        sources,
        config.sequencers.clone(),
        tls.clone(),
    )));
    tasks.iter().map(|task| task.abort_handle()).collect()
}

/// The member's miner, when its `[mining]` table asks for one (it needs
/// the storage and client roles), shown in the client's status.
fn start_miner(
    config: &NodeConfig,
    roles: &PeerRoles,
    client: Option<&ClientSide>,
) -> anyhow::Result<
    Option<(
        tokio::task::JoinHandle<()>,
        Arc<crate::node::miner::MinerStats>,
    )>,
> {
    let (Some(mining), Some(shards), Some(client)) = (&config.mining, &roles.shards, client) else {
        return Ok(None);
    };
    let (miner, mined) = crate::node::miner::spawn(
        mining.settings().map_err(anyhow::Error::msg)?,
        &config.data_dir,
        shards.clone(),
        client.handles(),
        (mining.submit_to.clone()).map(crate::node::miner::RemoteGateway::new),
    )?;
    client.show_miner(mined.clone());
    Ok(Some((miner, mined)))
}

/// What this member reports to the voters, and where the figures come from.
fn report_sources(
    config: &NodeConfig,
    roles: &PeerRoles,
    client: Option<&ClientSide>,
) -> crate::node::reporter::ReportSources {
    crate::node::reporter::ReportSources {
        id: config.id,
        roles: config.roles.iter().map(|r| r.name().to_string()).collect(),
        peer_addr: config.peer_listen.to_string(),
        client_addr: client.and(config.listen).map(|a| a.to_string()),
        voter: roles.voter.clone(),
        shards: roles.shards.clone(),
        repair: roles.repair.clone(),
        replica: client.map(ClientSide::position),
    }
}

/// The task serving the member's peer address.
type PeerServer = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

/// Why the peer server ended before the node was told to stop.
fn server_ended(
    ended: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> anyhow::Error {
    match ended {
        Ok(Ok(())) => anyhow::anyhow!("the peer server stopped unasked"),
        Ok(Err(e)) => anyhow::Error::new(e).context("serving the peer address"),
        Err(e) => anyhow::Error::new(e).context("the peer server task"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway's file over six storage members, with `extra` lines.
    fn gateway_file(extra: &str) -> String {
        let storage: Vec<String> = (1..=6)
            .map(|id| format!("{{ id = {id}, addr = \"127.0.0.1:75{id:02}\" }}"))
            .collect();
        format!(
            "id = 7\ndata_dir = \"d\"\npeer_listen = \"127.0.0.1:7537\"\ntls_dir = \"c\"\nsequencers = [\"127.0.0.1:7531\"]\nstorage = [{}]\n{extra}",
            storage.join(", ")
        )
    }

    #[test]
    fn the_example_cluster_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster");
        let mut parsed = 0;
        for entry in std::fs::read_dir(&dir).expect("examples/cluster exists") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("reads");
                NodeConfig::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                parsed += 1;
            }
        }
        assert!(parsed >= 5, "only {parsed} example files");
    }

    #[test]
    fn client_roles_need_an_address_a_log_and_a_quorum_the_storage_can_meet() {
        let ok = "roles = [\"gateway\", \"replica\"]\nlisten = \"127.0.0.1:7551\"\n";
        let config = NodeConfig::parse(&gateway_file(ok)).expect("a gateway parses");
        assert_eq!(config.coding().data_shards, 4);
        let refused = |extra: &str, says: &str| {
            let error = NodeConfig::parse(&gateway_file(extra)).expect_err(extra);
            assert!(error.contains(says), "{extra}: {error}");
        };
        refused(
            "roles = [\"gateway\"]\nlisten = \"127.0.0.1:7551\"\n",
            "list `replica` too",
        );
        refused("roles = [\"replica\"]\n", "needs `listen`");
        refused(
            "roles = [\"sequencer\", \"storage\", \"repair\"]\n",
            "list `replica` too (with `listen`)",
        );
        let repairing = ok.replace("\"replica\"]", "\"replica\", \"repair\"]");
        NodeConfig::parse(&gateway_file(&repairing)).expect("repair beside a replica");
        refused(&format!("{ok}write_quorum = 4\n"), "outside 5..=6");
        refused(&format!("{ok}write_quorum = 7\n"), "outside 5..=6");
        refused(&format!("{ok}data_shards = 0\n"), "data_shards");
        refused(&format!("{ok}appends_in_flight = 0\n"), "appends_in_flight");
        refused(
            &format!("{ok}data_shards = 8\nparity_shards = 4\n"),
            "needs at least 11 storage members",
        );
        let no_log = gateway_file(ok).replace("sequencers = [\"127.0.0.1:7531\"]\n", "");
        let error = NodeConfig::parse(&no_log).expect_err("no sequencers");
        assert!(error.contains("`sequencers`"), "{error}");
    }

    #[test]
    fn a_members_runtime_takes_one_to_the_most_workers_and_no_other_count() {
        let ok = "roles = [\"gateway\", \"replica\"]\nlisten = \"127.0.0.1:7551\"\n";
        let parse = |extra: &str| NodeConfig::parse(&gateway_file(&format!("{ok}{extra}")));
        assert_eq!(parse("").expect("default").runtime_workers, None);
        for workers in [1, MAX_RUNTIME_WORKERS] {
            let config = parse(&format!("runtime_workers = {workers}\n")).expect("in range");
            assert_eq!(config.runtime_workers, Some(workers));
        }
        for workers in [0, MAX_RUNTIME_WORKERS + 1] {
            let error = parse(&format!("runtime_workers = {workers}\n")).expect_err("out of range");
            assert!(
                error.contains("runtime_workers must be 1..=1024"),
                "{error}"
            );
        }
        let error = parse("runtime_workers = -1\n").expect_err("negative");
        assert!(error.contains("runtime_workers"), "{error}");
    }

    #[test]
    fn a_log_ordered_on_a_chain_needs_its_table_no_voter_role_and_repair_beside_a_replica() {
        let client = "roles = [\"gateway\", \"replica\"]\nlisten = \"127.0.0.1:7551\"\n";
        let table = "[evm]\nrpc_url = \"http://127.0.0.1:8545\"\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nchain_id = 31337\n";
        let ok = format!("{client}sequencer = \"evm\"\n{table}");
        let config = NodeConfig::parse(&gateway_file(&ok)).expect("a chain gateway parses");
        let settings = config
            .client_config()
            .expect("client roles")
            .evm
            .expect("the chain");
        assert_eq!((settings.chain_id, settings.confirmations), (31337, 1));
        assert_eq!(settings.poll_interval, std::time::Duration::from_secs(1));
        let refused = |text: String, says: &str| {
            let error = NodeConfig::parse(&gateway_file(&text)).expect_err(&text);
            assert!(error.contains(says), "{text}: {error}");
        };
        refused(
            format!("{client}sequencer = \"evm\"\n"),
            "needs an `[evm]` table",
        );
        refused(format!("{client}{table}"), "needs `sequencer = \"evm\"`");
        refused(
            format!("{client}sequencer = \"chain\"\n"),
            "unknown variant",
        );
        let voter = ok.replace("\"gateway\", \"replica\"", "\"sequencer\"");
        refused(voter, "raft sequencer only");
        let lone_repair = ok.replace("\"gateway\", \"replica\"", "\"repair\"");
        refused(lone_repair, "list `replica` too (with `listen`)");
        let repairing = ok.replace(
            "\"gateway\", \"replica\"",
            "\"gateway\", \"replica\", \"repair\"",
        );
        NodeConfig::parse(&gateway_file(&repairing))
            .expect("repair beside a replica over the chain");
        refused(
            ok.replace("0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x12"),
            "contract",
        );
        refused(
            format!("{ok}confirmations = 0\n"),
            "confirmations must be 1..=64",
        );
        refused(format!("{ok}poll_interval_ms = 0\n"), "poll_interval_ms");
        refused(
            format!("{ok}rpc_timeout_ms = 60001\n"),
            "rpc_timeout_ms must be",
        );
        refused(format!("{ok}gas = 1\n"), "unknown field");
    }

    #[test]
    fn a_miner_stores_shards_runs_a_replica_and_submits_through_its_own_gateway_or_another() {
        let roles =
            "roles = [\"storage\", \"gateway\", \"replica\"]\nlisten = \"127.0.0.1:7551\"\n";
        let mining = "[mining]\nbeneficiary = \"0xbebebebebebebebebebebebebebebebebebebebe\"\n";
        let config = NodeConfig::parse(&gateway_file(&format!("{roles}{mining}"))).expect("parses");
        let settings = config.mining.expect("mining").settings().expect("valid");
        assert_eq!(settings.cpu_share, crate::node::miner::DEFAULT_CPU_SHARE);
        let refused = |text: String, says: &str| {
            let error = NodeConfig::parse(&gateway_file(&text)).expect_err("refused");
            assert!(error.contains(says), "{error}");
        };
        let no_storage = roles.replace("\"storage\", ", "");
        refused(
            format!("{no_storage}{mining}"),
            "list `storage` and `replica`",
        );
        let no_gateway = roles.replace("\"gateway\", ", "");
        refused(format!("{no_gateway}{mining}"), "needs `submit_to`");
        let through = "submit_to = \"http://127.0.0.1:7552\"\n";
        NodeConfig::parse(&gateway_file(&format!("{no_gateway}{mining}{through}")))
            .expect("a member without a gateway submits through another's");
        refused(
            format!("{roles}{mining}{through}"),
            "submits through its own",
        );
        refused(format!("{roles}{mining}cpu_share = 0\n"), "cpu share");
        refused(format!("{roles}{mining}cpu_share = 1.5\n"), "cpu share");
        refused(
            format!("{roles}[mining]\nbeneficiary = \"0x12\"\n"),
            "beneficiary",
        );
    }

    #[test]
    fn a_member_file_parses_and_unknown_roles_or_keys_are_refused() {
        let file = concat!(
            "id = 2\ndata_dir = \"d\"\npeer_listen = \"127.0.0.1:7531\"\n",
            "roles = [\"sequencer\"]\ntls_dir = \"c\"\n"
        );
        let config = NodeConfig::parse(file).expect("parses");
        assert_eq!((config.id, config.roles), (2, vec![Role::Sequencer]));
        let unknown_role = file.replace("\"sequencer\"", "\"oracle\"");
        let refused = NodeConfig::parse(&unknown_role).expect_err("unknown role");
        assert!(refused.contains("oracle"), "{refused}");
        let typo = format!("{file}peer_lisen = \"x\"\n");
        assert!(
            NodeConfig::parse(&typo).is_err(),
            "unknown keys are refused"
        );
        let no_roles = file.replace("[\"sequencer\"]", "[]");
        assert!(
            NodeConfig::parse(&no_roles).is_err(),
            "a member runs a role"
        );
        let zero = file.replace("id = 2", "id = 0");
        let no_tls = file.replace("tls_dir = \"c\"\n", "");
        assert!(
            NodeConfig::parse(&no_tls).is_err(),
            "members always use TLS"
        );
        assert!(NodeConfig::parse(&zero).is_err(), "id 0 is reserved");
    }
}
