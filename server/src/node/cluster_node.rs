//! `ordo node --config FILE`: one member of a cluster, running the roles
//! its file names.
//!
//! ```toml
//! id = 1                           # unique in the cluster, never reused
//! data_dir = "./ordo-cluster/n1"
//! peer_listen = "127.0.0.1:7531"   # what the other members dial
//! roles = ["sequencer"]
//! ```
//!
//! Roles today: `sequencer`, a raft voter ordering entry headers (its state
//! under `DATA_DIR/raft`). A new cluster is formed once with `ordo cluster
//! init`; members join with `ordo cluster add-node` and `promote`.

use crate::node::config::{ConfigError, load_with};
use anyhow::Context;
use ordo_raft::{RaftSequencer, VoterConfig, VoterServer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Directory of the raft voter's store inside a data directory.
pub const RAFT_DIR: &str = "raft";

/// A role a cluster member can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A raft voter ordering entry headers.
    Sequencer,
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
        Ok(config)
    }
}

/// Runs the member until SIGINT or SIGTERM.
pub async fn run_node(config: NodeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.peer_listen)
        .await
        .with_context(|| format!("binding the peer address {}", config.peer_listen))?;
    let local = listener.local_addr()?;
    let voter = RaftSequencer::start(VoterConfig {
        id: config.id,
        dir: config.data_dir.join(RAFT_DIR),
        fault: None,
    })
    .await
    .with_context(|| format!("opening the raft voter in {}", config.data_dir.display()))?;
    let stopping = crate::node::run::shutdown_signal();
    let server = VoterServer::spawn(voter.service(), listener);
    println!("ordo node {} sequencer listening on {local}", config.id);
    stopping.await;
    voter.shutdown().await;
    server.stop().await.context("stopping the peer server")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_file_parses_and_unknown_roles_or_keys_are_refused() {
        let file =
            "id = 2\ndata_dir = \"d\"\npeer_listen = \"127.0.0.1:7531\"\nroles = [\"sequencer\"]\n";
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
        assert!(NodeConfig::parse(&zero).is_err(), "id 0 is reserved");
    }
}
