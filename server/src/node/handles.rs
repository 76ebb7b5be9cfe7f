//! What the parts of a running node hand each other.
//!
//! A gRPC service receives only the handles it uses: the read services get
//! [`Snapshots`], the write services [`Commits`], the log service the
//! log's own writer and reader. None of them can reach the rest of the node.

use crate::node::commits::Committer;
use crate::node::metrics::Metrics;
use crate::node::verified::VerifiedSignatures;
use ordo_kv::{MvccStore, RocksEngine};
use ordo_txn::Applied;
use std::sync::Arc;
use tokio::sync::watch;

/// The replicated state as readers see it: the MVCC store and how far the
/// replica has applied the log. Cheap to clone.
#[derive(Clone)]
pub struct Snapshots {
    /// The replicated state.
    pub state: MvccStore<Arc<RocksEngine>>,
    /// How far the replica has applied the log, updated after each entry.
    pub applied: watch::Receiver<Applied>,
}

impl Snapshots {
    /// The newest applied version: reads at it see every decided commit
    /// this replica has applied.
    pub fn latest_version(&self) -> u64 {
        self.applied.borrow().version
    }

    /// The replica's current position.
    pub fn position(&self) -> Applied {
        *self.applied.borrow()
    }

    /// Waits until the replica has applied every entry before `seq`;
    /// `None` if the replica stopped first.
    pub async fn applied_through(&self, seq: u64) -> Option<Applied> {
        let mut applied = self.applied.clone();
        applied
            .wait_for(|a| a.next_seq >= seq)
            .await
            .ok()
            .map(|a| *a)
    }
}

/// The commit path as writers see it. Cheap to clone.
#[derive(Clone)]
pub struct Commits {
    /// Queues transactions into log entries and waits for their decisions.
    pub committer: Committer,
    /// Signatures checked at ingress or made here, which the replica need
    /// not recover again.
    pub verified: Arc<VerifiedSignatures>,
    /// What the commit path counts.
    pub metrics: Arc<Metrics>,
    /// The node's key, which attests session transactions.
    pub node: crate::node::gateway::NodeKey,
}
