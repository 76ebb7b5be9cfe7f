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
//! # for roles that read the log or move shards (repair):
//! sequencers = ["127.0.0.1:7531"]
//! storage = [{ id = 1, addr = "127.0.0.1:7531" }, { id = 2, addr = "127.0.0.1:7532" }]
//! ```
//!
//! Members talk only over mutual TLS (see `ordo_raft::tls`): `ordo cluster
//! certs` makes the authority and one certificate per member, named
//! `node-ID` unless `tls_name` says otherwise. `repair` restores shards
//! missing from, or damaged at, their placement homes (see
//! [`crate::node::repair`]).
//!
//! Roles today: `sequencer`, a raft voter ordering entry headers (its state
//! under `DATA_DIR/raft`), and `storage`, a shard store that verifies every
//! shard it takes and serves (under `DATA_DIR/shards`). A new cluster is formed once with `ordo cluster
//! init`; members join with `ordo cluster add-node` and `promote`.

use crate::node::config::{ConfigError, load_with};
use crate::node::repair::RepairCounters;
use crate::node::services::shards::{ShardCounters, ShardService};
use crate::node::storage_set::StorageSet;
use anyhow::Context;
use ordo_log::RocksShardStore;
use ordo_proto::cluster::v1::shards_server::ShardsServer;
use ordo_raft::RemoteSequencer;
use ordo_raft::{PeerTls, RaftSequencer, VoterConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directory of the raft voter's store inside a data directory.
pub const RAFT_DIR: &str = "raft";

/// Directory of a storage node's shards inside a data directory.
pub const SHARDS_DIR: &str = "shards";

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
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Sequencer => "sequencer",
            Role::Storage => "storage",
            Role::Repair => "repair",
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
    /// The sequencer voters' peer addresses (roles that read the log).
    #[serde(default)]
    pub sequencers: Vec<String>,
    /// The storage members (roles that move shards). Named here until the
    /// storage membership is recorded in the log.
    #[serde(default)]
    pub storage: Vec<StorageMember>,
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
        let repairs = config.roles.contains(&Role::Repair);
        if repairs && (config.sequencers.is_empty() || config.storage.is_empty()) {
            return Err("the repair role needs `sequencers` and `storage`".into());
        }
        Ok(config)
    }
}

/// What a running member serves on its peer address.
struct PeerRoles {
    voter: Option<Arc<RaftSequencer>>,
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
        Ok(Self {
            voter,
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
            .add_optional_service(shards))
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

/// Starts the repair role: connects to the sequencers (retrying while none
/// answers, as they may start after this member) and runs passes.
fn start_repair(
    config: &NodeConfig,
    tls: &Arc<PeerTls>,
    counters: Arc<RepairCounters>,
) -> tokio::task::JoinHandle<()> {
    let storage: BTreeMap<u64, String> = config
        .storage
        .iter()
        .map(|m| (m.id, m.addr.clone()))
        .collect();
    let (voters, tls) = (config.sequencers.clone(), tls.clone());
    tokio::spawn(async move {
        let set = match StorageSet::connect(&storage, &tls) {
            Ok(set) => set,
            Err(e) => {
                tracing::error!(error = %e, "repair cannot reach the storage members");
                return;
            }
        };
        let sequencer = loop {
            match RemoteSequencer::connect(voters.clone(), tls.clone()).await {
                Ok(sequencer) => break Arc::new(sequencer),
                Err(e) => tracing::warn!(error = %e, "repair waits for the sequencers"),
            }
            tokio::time::sleep(crate::node::repair::REPAIR_PAUSE).await;
        };
        crate::node::repair::run(sequencer, set, counters).await;
    })
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
            .with_context(|| format!("loading member certificate {name}"))?,
    );
    let roles = PeerRoles::open(&config, &tls).await?;
    let exporter = match config.metrics_listen {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics address {addr}"))?;
            let page = roles.metrics_page();
            Some(tokio::spawn(crate::node::metrics::serve(listener, page)))
        }
    };
    let stopping = crate::node::run::shutdown_signal();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = roles
        .router(&tls)?
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    let mut server = tokio::spawn(server);
    let repairer =
        (roles.repair.as_ref()).map(|counters| start_repair(&config, &tls, counters.clone()));
    let names: Vec<&str> = config.roles.iter().map(|r| r.name()).collect();
    println!(
        "ordo node {} listening on {local} ({})",
        config.id,
        names.join(", ")
    );
    tokio::select! {
        () = stopping => {}
        ended = &mut server => return Err(server_ended(ended)),
    }
    // This member's own clients (repair follows the log) would hold the
    // server's graceful stop open: end them first.
    for task in [exporter, repairer].into_iter().flatten() {
        task.abort();
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
    Ok(())
}

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
