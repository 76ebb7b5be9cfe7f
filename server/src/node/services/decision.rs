//! How a decision travels: the typed wire form of an outcome, and the
//! status of a commit that got none. Shared by `Txn.Commit` and sessions.

use crate::node::commits::{CommitError, Decided};
use ordo_proto::v1::{CommitResponse, Decision, OutcomeKind};
use ordo_txn::Outcome;
use tonic::Status;

/// The status of a commit that got no decision.
pub fn commit_status(error: CommitError) -> Status {
    match error {
        CommitError::Overloaded => Status::resource_exhausted(error.to_string()),
        CommitError::Append(_) | CommitError::ShuttingDown => {
            Status::unavailable(error.to_string())
        }
        CommitError::TimedOut => Status::deadline_exceeded(error.to_string()),
        CommitError::ReadOnly | CommitError::NotAWriter { .. } => {
            Status::failed_precondition(error.to_string())
        }
        CommitError::State(_) => Status::internal(error.to_string()),
    }
}

/// The typed wire form of one outcome.
pub fn decision(outcome: &Outcome) -> Decision {
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
        Outcome::MiningRefused { .. } => kind(OutcomeKind::MiningRefused),
        Outcome::RetentionRefused { .. } => kind(OutcomeKind::RetentionRefused),
        Outcome::DaRefused { .. } => kind(OutcomeKind::DaRefused),
    }
}

/// The wire form of a decision: typed, plus the flat fields and the text.
pub fn response(decided: Decided) -> CommitResponse {
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
