//! `ordo.v1.Txn`: begin (a snapshot version) and commit (a signed transaction).

use crate::node::commits::{CommitError, Decided};
use crate::node::handles::{Commits, Snapshots};
use ordo_proto::v1::{BeginRequest, BeginResponse, CommitRequest, CommitResponse, txn_server::Txn};
use ordo_txn::{Outcome, SignedTransaction};
use tonic::{Request, Response, Status};

/// Serves transactions.
pub struct TxnService {
    snapshots: Snapshots,
    commits: Commits,
}

impl TxnService {
    /// A transaction service that begins at `snapshots`' latest version and
    /// commits through `commits`.
    pub fn new(snapshots: Snapshots, commits: Commits) -> Self {
        Self { snapshots, commits }
    }
}

/// Decodes and verifies a transaction at ingress, so that what reaches the
/// log is well-formed and signed by its sender.
fn check(bytes: &[u8]) -> Result<(SignedTransaction, [u8; 32]), Status> {
    let signed = SignedTransaction::decode(bytes)
        .map_err(|e| Status::invalid_argument(format!("malformed transaction: {e}")))?;
    let hash = ordo_txn::sign::verify_hash(&signed)
        .map_err(|e| Status::invalid_argument(format!("bad signature: {e}")))?;
    Ok((signed, hash))
}

fn commit_status(error: CommitError) -> Status {
    match error {
        CommitError::Overloaded => Status::resource_exhausted(error.to_string()),
        CommitError::Append(_) | CommitError::ShuttingDown => {
            Status::unavailable(error.to_string())
        }
        CommitError::TimedOut => Status::deadline_exceeded(error.to_string()),
    }
}

/// The wire form of a decision.
fn response(decided: Decided) -> CommitResponse {
    let seq = decided.seq;
    let kind = decided.outcome.kind().to_string();
    let message = format!("{:?}", decided.outcome);
    let (version, stream, key) = match decided.outcome {
        Outcome::Committed { version } => (version, vec![], vec![]),
        Outcome::Conflict { stream, key } => (0, stream.to_vec(), key),
        Outcome::PermissionDenied { stream, key, .. } => {
            (0, stream.to_vec(), key.unwrap_or_default())
        }
        Outcome::UnknownStream { stream } | Outcome::StreamExists { stream } => {
            (0, stream.to_vec(), vec![])
        }
        Outcome::Duplicate { original } => match *original {
            Outcome::Committed { version } => (version, vec![], vec![]),
            _ => (0, vec![], vec![]),
        },
        _ => (0, vec![], vec![]),
    };
    CommitResponse {
        outcome: kind,
        version,
        message,
        stream,
        key,
        seq,
    }
}

#[tonic::async_trait]
impl Txn for TxnService {
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
        // Decoding refuses trailing bytes, so this is the canonical length.
        let encoded_len = bytes.len();
        // Signature recovery is CPU work: keep it off the async workers.
        let (signed, hash) = tokio::task::spawn_blocking(move || check(&bytes))
            .await
            .map_err(|e| Status::internal(format!("checking the transaction: {e}")))??;
        // Checked here: the replica need not recover it again.
        self.commits.verified.remember(&signed, hash);
        let decided = self
            .commits
            .committer
            .commit(signed, encoded_len)
            .await
            .map_err(commit_status)?;
        self.commits
            .metrics
            .record_decision(decided.outcome.kind(), started.elapsed());
        Ok(Response::new(response(decided)))
    }
}
