//! `Txn.Session`: a client proves its key once, then commits unsigned
//! transactions that this node attests.
//!
//! The session is the gRPC stream: the node sends a challenge bound to its
//! own address, a fresh nonce and an expiry; the client's signature over it
//! proves the account; every later commit on the stream must be that
//! account's. Nothing outlives the stream, so there is no token to steal,
//! and a proof captured from one stream is worthless on another (its nonce
//! is not that stream's) or on another node (its address is not that
//! node's).

use crate::node::gateway::NodeKey;
use crate::node::handles::{Commits, Snapshots};
use crate::node::services::{Stopping, stop_signalled};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use ordo_proto::v1::{
    SessionChallenge, SessionCommit, SessionCommitted, SessionOpen, SessionOpened, SessionRequest,
    SessionResponse, session_request, session_response,
};
use ordo_txn::Address;
use ordo_txn::attest::CanonicalItem;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

/// How long a client has to answer the challenge.
pub const CHALLENGE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Most commits one session may have in flight; further commits wait for
/// one to be decided (back-pressure on the stream, not a queue without
/// bound).
pub const MAX_SESSION_IN_FLIGHT: usize = 1024;

/// Answers queued for one session's stream.
const RESPONSE_QUEUE: usize = 256;

/// The response stream of a session.
pub type SessionStream = tokio_stream::wrappers::ReceiverStream<Result<SessionResponse, Status>>;

/// A challenge as issued.
#[derive(Debug, Clone, Copy)]
pub struct Challenge {
    node: Address,
    nonce: [u8; 32],
    expires_unix_ms: u64,
}

/// Milliseconds since the Unix epoch on this node's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Challenge {
    /// A fresh challenge from `node`, expiring [`CHALLENGE_TTL`] from now.
    pub fn issue(node: Address) -> Self {
        let ttl = u64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(u64::MAX);
        Self {
            node,
            nonce: rand::random(),
            expires_unix_ms: unix_ms().saturating_add(ttl),
        }
    }

    fn message(&self) -> SessionResponse {
        let challenge = SessionChallenge {
            node: self.node.to_vec(),
            nonce: self.nonce.to_vec(),
            expires_unix_ms: self.expires_unix_ms,
        };
        SessionResponse {
            response: Some(session_response::Response::Challenge(challenge)),
        }
    }

    /// The account `open` proves, if its signature is over this challenge,
    /// by that account, before `now_unix_ms` passed the expiry.
    pub fn verify(&self, open: &SessionOpen, now_unix_ms: u64) -> Result<Address, Status> {
        if now_unix_ms > self.expires_unix_ms {
            return Err(Status::unauthenticated(
                "the session challenge expired before it was answered; open a new session",
            ));
        }
        let account: Address = open.account.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!("account is {} bytes, not 20", open.account.len()))
        })?;
        let signature: [u8; 65] = open.signature.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "signature is {} bytes, not 65",
                open.signature.len()
            ))
        })?;
        let hash =
            ordo_txn::sign::session_proof_hash(&self.node, &self.nonce, self.expires_unix_ms);
        let signer = ordo_txn::sign::recover_canonical(&signature, hash)
            .map_err(|e| Status::unauthenticated(format!("session proof: {e}")))?;
        if signer != account {
            return Err(Status::unauthenticated(format!(
                "the session proof was signed by 0x{}, not by 0x{}; sign this stream's challenge with the account's key",
                ordo_txn::ids::hex(&signer),
                ordo_txn::ids::hex(&account)
            )));
        }
        Ok(account)
    }
}

/// Starts a session on `inbound`: refuses at once unless this node is a
/// gateway, else sends the challenge and serves the stream on a task,
/// which ends when the client closes its side or `stopping` turns true.
pub fn start(
    inbound: Streaming<SessionRequest>,
    snapshots: &Snapshots,
    commits: Commits,
    stopping: Stopping,
) -> Result<SessionStream, Status> {
    let node: &NodeKey = &commits.node;
    let gateway = node
        .is_gateway(&snapshots.state, snapshots.latest_version())
        .map_err(|e| Status::internal(format!("reading the gateway role: {e}")))?;
    if !gateway {
        return Err(Status::failed_precondition(format!(
            "this node (0x{}) is not a gateway of its log, so it cannot vouch for unsigned transactions; commit signed transactions with Txn.Commit",
            ordo_txn::ids::hex(&node.address)
        )));
    }
    let challenge = Challenge::issue(node.address);
    let (answers, stream) = mpsc::channel(RESPONSE_QUEUE);
    tokio::spawn(serve(inbound, challenge, commits, answers, stopping));
    Ok(SessionStream::new(stream))
}

type Answers = mpsc::Sender<Result<SessionResponse, Status>>;

/// Runs one session until the client closes its side or breaks a rule.
async fn serve(
    mut inbound: Streaming<SessionRequest>,
    challenge: Challenge,
    commits: Commits,
    answers: Answers,
    stopping: Stopping,
) {
    if answers.send(Ok(challenge.message())).await.is_err() {
        return;
    }
    let account = match open(&mut inbound, &challenge).await {
        Ok(account) => account,
        Err(status) => {
            let _ = answers.send(Err(status)).await;
            return;
        }
    };
    let opened = session_response::Response::Opened(SessionOpened {
        account: account.to_vec(),
    });
    if answers
        .send(Ok(SessionResponse {
            response: Some(opened),
        }))
        .await
        .is_err()
    {
        return;
    }
    decide_commits(inbound, account, &commits, &answers, stopping).await;
}

/// Decides the open session's commits, on this one task: a commit's
/// decision wakes this task, not a task of its own, and every decision
/// ready when it runs is queued for the stream before the stream's writer
/// runs, so the answers to one log entry's commits leave in one write
/// rather than one write each. Reading stops while
/// [`MAX_SESSION_IN_FLIGHT`] commits wait, which holds the client back
/// through the stream's flow control. When the node starts to stop,
/// reading stops too: the commits already read are answered and the
/// stream ends, so an open session does not hold the node's graceful
/// shutdown open (the client opens a new one where it commits next).
async fn decide_commits(
    mut inbound: Streaming<SessionRequest>,
    account: Address,
    commits: &Commits,
    answers: &Answers,
    stopping: Stopping,
) {
    let stop = stop_signalled(stopping);
    tokio::pin!(stop);
    let mut deciding = FuturesUnordered::new();
    let mut reading = true;
    while reading || !deciding.is_empty() {
        tokio::select! {
            biased;
            Some(answer) = deciding.next(), if !deciding.is_empty() => {
                if answers.send(Ok(answer)).await.is_err() {
                    return;
                }
            }
            () = &mut stop, if reading => reading = false,
            // `Streaming::message` is cancel safe: a message half read
            // stays in the stream for the next call.
            request = inbound.message(), if reading && deciding.len() < MAX_SESSION_IN_FLIGHT => {
                match request {
                    Ok(Some(SessionRequest { request: Some(session_request::Request::Commit(commit)) })) => {
                        deciding.push(commit_one(commit, account, commits));
                    }
                    Ok(Some(_)) => {
                        let refused = Status::failed_precondition("the session is already open");
                        let _ = answers.send(Err(refused)).await;
                        return;
                    }
                    // The client closed its side (or the stream broke):
                    // answer what it already sent, then end.
                    Ok(None) | Err(_) => reading = false,
                }
            }
        }
    }
}

/// Waits for the client's answer to the challenge.
async fn open(
    inbound: &mut Streaming<SessionRequest>,
    challenge: &Challenge,
) -> Result<Address, Status> {
    let first = tokio::time::timeout(CHALLENGE_TTL, inbound.message())
        .await
        .map_err(|_| Status::unauthenticated("no answer to the session challenge in time"))??;
    match first.and_then(|r| r.request) {
        Some(session_request::Request::Open(open)) => challenge.verify(&open, unix_ms()),
        Some(session_request::Request::Commit(_)) => Err(Status::unauthenticated(
            "commit before the session was opened: answer the challenge first",
        )),
        None => Err(Status::unauthenticated(
            "the stream ended before the session opened",
        )),
    }
}

/// Checks and commits one session transaction, answering with its decision
/// or with why it was refused.
async fn commit_one(commit: SessionCommit, account: Address, commits: &Commits) -> SessionResponse {
    let (request_id, started) = (commit.request_id, std::time::Instant::now());
    let result = async {
        let item = CanonicalItem::decode_attested(commit.transaction)
            .map_err(|e| Status::invalid_argument(format!("malformed transaction: {e}")))?;
        let tx = item.item().tx();
        if tx.sender != account {
            return Err(Status::permission_denied(format!(
                "this session commits as 0x{}; the transaction names sender 0x{}",
                ordo_txn::ids::hex(&account),
                ordo_txn::ids::hex(&tx.sender)
            )));
        }
        commits
            .committer
            .commit(item)
            .await
            .map_err(super::decision::commit_status)
    }
    .await;
    let committed = match result {
        Ok(decided) => {
            let elapsed = started.elapsed();
            commits.metrics.record_decision(&decided.outcome, elapsed);
            SessionCommitted {
                request_id,
                response: Some(super::decision::response(decided)),
                ..SessionCommitted::default()
            }
        }
        Err(status) => SessionCommitted {
            request_id,
            error_code: status.code() as u32,
            error: status.message().to_string(),
            ..SessionCommitted::default()
        },
    };
    SessionResponse {
        response: Some(session_response::Response::Committed(committed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_txn::testkit::signing_key;

    fn answer(challenge: &Challenge, key: &ordo_txn::SigningKey) -> SessionOpen {
        let hash = ordo_txn::sign::session_proof_hash(
            &challenge.node,
            &challenge.nonce,
            challenge.expires_unix_ms,
        );
        SessionOpen {
            account: ordo_txn::address_of(key).to_vec(),
            signature: ordo_txn::sign::sign_hash(hash, key).unwrap().to_vec(),
        }
    }

    #[test]
    fn an_answer_to_this_challenge_by_its_account_opens_the_session() {
        let challenge = Challenge::issue([1; 20]);
        let key = signing_key(5);
        let opened = challenge.verify(&answer(&challenge, &key), unix_ms());
        assert_eq!(opened.unwrap(), ordo_txn::address_of(&key));
    }

    #[test]
    fn an_expired_answer_is_refused() {
        let challenge = Challenge::issue([1; 20]);
        let late = challenge.expires_unix_ms + 1;
        let refused = challenge.verify(&answer(&challenge, &signing_key(5)), late);
        assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_proof_for_another_stream_or_node_is_refused() {
        let key = signing_key(5);
        let first = Challenge::issue([1; 20]);
        let second = Challenge::issue([1; 20]);
        let replayed = second.verify(&answer(&first, &key), unix_ms());
        assert_eq!(replayed.unwrap_err().code(), tonic::Code::Unauthenticated);
        let other_node = Challenge {
            node: [2; 20],
            ..first
        };
        let moved = other_node.verify(&answer(&first, &key), unix_ms());
        assert_eq!(moved.unwrap_err().code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_proof_claiming_another_account_is_refused() {
        let challenge = Challenge::issue([1; 20]);
        let mut forged = answer(&challenge, &signing_key(5));
        forged.account = ordo_txn::address_of(&signing_key(6)).to_vec();
        let refused = challenge.verify(&forged, unix_ms());
        assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
