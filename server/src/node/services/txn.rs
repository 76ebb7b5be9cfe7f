//! `ordo.v1.Txn`: begin (a snapshot version), commit (a signed transaction)
//! and sessions (see [`super::session`]).

use super::decision::{commit_status, response};
use crate::node::handles::{Commits, Snapshots};
use crate::node::services::Stopping;
use ordo_proto::v1::{BeginRequest, BeginResponse, CommitRequest, CommitResponse, txn_server::Txn};
use ordo_txn::attest::CanonicalItem;
use tonic::{Request, Response, Status};

/// Serves transactions.
pub struct TxnService {
    snapshots: Snapshots,
    commits: Commits,
    stopping: Stopping,
}

impl TxnService {
    /// A transaction service that begins at `snapshots`' latest version and
    /// commits through `commits`.
    pub fn new(snapshots: Snapshots, commits: Commits) -> Self {
        Self {
            snapshots,
            commits,
            stopping: super::never_stopping(),
        }
    }

    /// Ends open sessions once `stopping` turns true (their commits in
    /// flight answered first), so that they do not hold the node's
    /// graceful shutdown open until its grace runs out.
    pub fn stopping_with(self, stopping: Stopping) -> Self {
        Self { stopping, ..self }
    }
}

/// Decodes and verifies a transaction at ingress, so that what reaches the
/// log is well-formed and signed by its sender.
fn check(bytes: Vec<u8>) -> Result<(CanonicalItem, [u8; 32]), Status> {
    let item = CanonicalItem::decode_signed(bytes)
        .map_err(|e| Status::invalid_argument(format!("malformed transaction: {e}")))?;
    let hash = match item.signed() {
        Some(signed) => ordo_txn::sign::verify_hash(signed)
            .map_err(|e| Status::invalid_argument(format!("bad signature: {e}")))?,
        None => return Err(Status::internal("a signed transaction decoded as unsigned")),
    };
    Ok((item, hash))
}

#[tonic::async_trait]
impl Txn for TxnService {
    type SessionStream = super::session::SessionStream;

    async fn session(
        &self,
        request: Request<tonic::Streaming<ordo_proto::v1::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let stream = super::session::start(
            request.into_inner(),
            &self.snapshots,
            self.commits.clone(),
            self.stopping.clone(),
        )?;
        Ok(Response::new(stream))
    }

    async fn begin(
        &self,
        _request: Request<BeginRequest>,
    ) -> Result<Response<BeginResponse>, Status> {
        Ok(Response::new(BeginResponse {
            version: self.snapshots.latest_version(),
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let started = std::time::Instant::now();
        let bytes = request.into_inner().transaction;
        // Signature recovery is CPU work: keep it off the async workers.
        let (item, hash) = tokio::task::spawn_blocking(move || check(bytes))
            .await
            .map_err(|e| Status::internal(format!("checking the transaction: {e}")))??;
        // Checked here: the replica need not recover it again.
        if let Some(signed) = item.signed() {
            self.commits.verified.remember(signed, hash);
        }
        let decided = self
            .commits
            .committer
            .commit(item)
            .await
            .map_err(commit_status)?;
        self.commits
            .metrics
            .record_decision(&decided.outcome, started.elapsed());
        Ok(Response::new(response(decided)))
    }
}
