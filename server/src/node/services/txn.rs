//! `ordo.v1.Txn`: begin (a snapshot version) and commit (a signed transaction).

use crate::node::commits::{CommitError, Decided};
use crate::node::handles::{Commits, Snapshots};
use ordo_proto::v1::{
    BeginRequest, BeginResponse, CommitRequest, CommitResponse, Decision, OutcomeKind,
    txn_server::Txn,
};
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

/// The typed wire form of one outcome.
fn decision(outcome: &Outcome) -> Decision {
    let kind = |kind: OutcomeKind| Decision {
        kind: kind.into(),
        ..Decision::default()
    };
    match outcome {
        Outcome::Committed { version } => Decision {
            version: *version,
            ..kind(OutcomeKind::Committed)
        },
        Outcome::Conflict { stream, key } => Decision {
            stream: stream.to_vec(),
            key: Some(key.clone()),
            ..kind(OutcomeKind::Conflict)
        },
        Outcome::TooOld {
            read_version,
            oldest,
        } => Decision {
            read_version: *read_version,
            oldest_version: *oldest,
            ..kind(OutcomeKind::TooOld)
        },
        Outcome::FutureVersion {
            read_version,
            applied,
        } => Decision {
            read_version: *read_version,
            applied_version: *applied,
            ..kind(OutcomeKind::FutureVersion)
        },
        Outcome::PermissionDenied { op, stream, key } => Decision {
            operation: op.clone(),
            stream: stream.to_vec(),
            key: key.clone(),
            ..kind(OutcomeKind::PermissionDenied)
        },
        Outcome::UnknownStream { stream } => Decision {
            stream: stream.to_vec(),
            ..kind(OutcomeKind::UnknownStream)
        },
        Outcome::StreamExists { stream } => Decision {
            stream: stream.to_vec(),
            ..kind(OutcomeKind::StreamExists)
        },
        Outcome::Duplicate { .. } => kind(OutcomeKind::Duplicate),
        Outcome::IdReused => kind(OutcomeKind::IdReused),
        Outcome::BadSignature { .. } => kind(OutcomeKind::BadSignature),
        Outcome::Malformed { .. } => kind(OutcomeKind::Malformed),
        Outcome::NotAGateway { gateway } => Decision {
            gateway: gateway.to_vec(),
            ..kind(OutcomeKind::NotAGateway)
        },
    }
}

/// The wire form of a decision: typed, plus the flat fields and the text.
fn response(decided: Decided) -> CommitResponse {
    let outcome = &decided.outcome;
    let typed = decision(outcome);
    let original = match outcome {
        Outcome::Duplicate { original } => Some(decision(original)),
        _ => None,
    };
    // A duplicate of a committed transaction is committed: its version
    // stands. Nothing else carries a version.
    let version = match (&typed, &original) {
        (d, _) if d.kind() == OutcomeKind::Committed => d.version,
        (_, Some(o)) if o.kind() == OutcomeKind::Committed => o.version,
        _ => 0,
    };
    let about = original.as_ref().unwrap_or(&typed);
    CommitResponse {
        outcome: outcome.kind().to_string(),
        version,
        message: outcome.to_string(),
        stream: about.stream.clone(),
        key: about.key.clone().unwrap_or_default(),
        seq: decided.seq,
        decision: Some(typed),
        original,
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
            .record_decision(&decided.outcome, started.elapsed());
        Ok(Response::new(response(decided)))
    }
}
