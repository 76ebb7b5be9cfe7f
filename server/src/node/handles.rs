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
    /// Streams known to exist, and from which version.
    pub streams: Arc<KnownStreams>,
}

/// Most streams [`KnownStreams`] remembers; past it, it starts over (a miss
/// costs one state read).
pub const MAX_KNOWN_STREAMS: usize = 65_536;

/// Streams seen to exist, each with the lowest version it was seen to exist
/// at. Nothing deletes a stream, so a stream that exists at version `v`
/// exists at every later version: a read at or above the remembered
/// version needs no state read to know the stream is there. Older reads,
/// and streams not seen yet, ask the state.
#[derive(Debug, Default)]
pub struct KnownStreams {
    since: std::sync::Mutex<std::collections::HashMap<ordo_kv::StreamId, u64>>,
}

impl KnownStreams {
    fn since(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<ordo_kv::StreamId, u64>> {
        // Each change is one insert or clear: a panic elsewhere cannot
        // leave the map half-changed.
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `stream` is known to exist at version `at`.
    pub fn exists_at(&self, stream: &ordo_kv::StreamId, at: u64) -> bool {
        self.since().get(stream).is_some_and(|since| at >= *since)
    }

    /// Records that `stream` exists at version `at`.
    pub fn saw(&self, stream: &ordo_kv::StreamId, at: u64) {
        let mut since = self.since();
        if since.len() >= MAX_KNOWN_STREAMS {
            since.clear();
        }
        let known = since.entry(*stream).or_insert(at);
        *known = (*known).min(at);
    }
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

impl Commits {
    /// Signs `tx` with `key` here, remembers the signature (so the replica
    /// need not recover it) and commits it: how the node sends transactions
    /// of its own making (its streams, its miner's operations).
    pub async fn commit_signed(
        &self,
        tx: ordo_txn::Transaction,
        key: &ordo_txn::SigningKey,
    ) -> anyhow::Result<crate::node::commits::Decided> {
        let signed = ordo_txn::sign(tx, key)?;
        let hash = ordo_txn::sign::signing_hash(&signed.tx);
        self.verified.remember(&signed, hash);
        let item = ordo_txn::attest::CanonicalItem::new(ordo_txn::attest::Item::Signed(signed))?;
        Ok(self.committer.commit(item).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_seen_at_a_version_is_known_from_it_on_and_not_before() {
        let known = KnownStreams::default();
        assert!(!known.exists_at(&[1; 32], 10));
        known.saw(&[1; 32], 10);
        assert!(known.exists_at(&[1; 32], 10) && known.exists_at(&[1; 32], 11));
        assert!(!known.exists_at(&[1; 32], 9), "older reads ask the state");
        known.saw(&[1; 32], 7);
        assert!(known.exists_at(&[1; 32], 7), "the lowest sighting counts");
        assert!(
            !known.exists_at(&[2; 32], 10),
            "other streams are not known"
        );
    }
}
