//! Sessions: prove the key once, then commit without a signature per
//! transaction.
//!
//! [`Client::open_session`] opens a `Txn.Session` stream, signs the node's
//! challenge and returns a [`Session`]. Its commits share the stream: any
//! number may be in flight, each answered by request id. The session ends
//! when the `Session` is dropped or the stream breaks; a broken session
//! fails its waiting commits with the stream's status.

use crate::{Client, ClientError};
use ordo_proto::v1::txn_client::TxnClient;
use ordo_proto::v1::{
    CommitResponse, SessionCommit, SessionOpen, SessionRequest, SessionResponse, session_request,
    session_response,
};
use ordo_txn::{Address, SigningKey, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How a client sends its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// On a session per key: the key signs once per session, not per
    /// transaction (falls back to [`CommitMode::Signed`] on a node that is
    /// not a gateway). Trusts the node to vouch for the sender.
    #[default]
    Session,
    /// Every transaction signed by its sender: trusts no node.
    Signed,
}

/// A client's open sessions, one per account, and its commit mode.
#[derive(Debug, Default)]
pub struct Sessions {
    mode: CommitMode,
    /// Set once the node refused a session for not being a gateway.
    refused: std::sync::atomic::AtomicBool,
    open: tokio::sync::Mutex<HashMap<Address, Arc<Session>>>,
}

impl Sessions {
    /// No sessions yet; commits go as `mode` says.
    pub fn new(mode: CommitMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }
}

/// Requests queued for the stream before `commit` waits for room.
const REQUEST_QUEUE: usize = 256;

type Reply = oneshot::Sender<Result<CommitResponse, ClientError>>;

/// Commits waiting for their answers, by request id; `None` once the
/// stream ended (with why).
type Waiting = Arc<Mutex<Result<HashMap<u64, Reply>, tonic::Status>>>;

/// An open session: see the module documentation.
#[derive(Debug)]
pub struct Session {
    account: Address,
    requests: mpsc::Sender<SessionRequest>,
    waiting: Waiting,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn protocol(message: &str) -> ClientError {
    ClientError::Status(tonic::Status::internal(format!(
        "session protocol: {message}"
    )))
}

impl Client {
    /// Commits `tx` as `key`'s account and waits for the log's decision:
    /// on the account's session (opened on first use, and again if its
    /// stream broke), or signed, as the client's [`CommitMode`] says.
    pub async fn commit(
        &self,
        tx: Transaction,
        key: &SigningKey,
    ) -> Result<CommitResponse, ClientError> {
        let sessions = &self.sessions;
        if sessions.mode == CommitMode::Signed || sessions.refused.load(Ordering::Relaxed) {
            return self.commit_signed(tx, key).await;
        }
        // A commit cut off by a broken stream may or may not have been
        // decided; resending the same transaction (same id) on a new session
        // is safe: it applies at most once, and a resend answers with the
        // original decision.
        for _ in 0..2 {
            let session = match self.session_for(key).await {
                Ok(session) => session,
                Err(ClientError::Status(s)) if s.code() == tonic::Code::FailedPrecondition => {
                    sessions.refused.store(true, Ordering::Relaxed);
                    return self.commit_signed(tx, key).await;
                }
                Err(other) => return Err(other),
            };
            match session.commit(tx.clone()).await {
                Err(_) if session.is_closed() => {
                    sessions.open.lock().await.remove(&session.account());
                }
                decided => return decided,
            }
        }
        Err(protocol("the session broke twice in a row"))
    }

    async fn session_for(&self, key: &SigningKey) -> Result<Arc<Session>, ClientError> {
        let account = ordo_txn::address_of(key);
        let mut open = self.sessions.open.lock().await;
        if let Some(session) = open.get(&account).filter(|s| !s.is_closed()) {
            return Ok(session.clone());
        }
        let session = Arc::new(self.open_session(key).await?);
        open.insert(account, session.clone());
        Ok(session)
    }

    /// Opens a session as `key`'s account: answers the node's challenge
    /// with a signature. Fails with FAILED_PRECONDITION when the node is
    /// not a gateway (commit signed transactions there instead).
    pub async fn open_session(&self, key: &SigningKey) -> Result<Session, ClientError> {
        let (requests, outbound) = mpsc::channel(REQUEST_QUEUE);
        let stream = tokio_stream::wrappers::ReceiverStream::new(outbound);
        let mut inbound = TxnClient::new(self.channel.clone())
            .session(stream)
            .await?
            .into_inner();
        let Some(session_response::Response::Challenge(challenge)) =
            inbound.message().await?.and_then(|m| m.response)
        else {
            return Err(protocol("the node sent no challenge"));
        };
        let node: Address = challenge
            .node
            .as_slice()
            .try_into()
            .map_err(|_| protocol("node address is not 20 bytes"))?;
        let nonce: [u8; 32] = challenge
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| protocol("nonce is not 32 bytes"))?;
        let hash = ordo_txn::sign::session_proof_hash(&node, &nonce, challenge.expires_unix_ms);
        let signature = ordo_txn::sign::sign_hash(hash, key)
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        let account = ordo_txn::address_of(key);
        let open = SessionOpen {
            account: account.to_vec(),
            signature: signature.to_vec(),
        };
        let open = SessionRequest {
            request: Some(session_request::Request::Open(open)),
        };
        requests
            .send(open)
            .await
            .map_err(|_| protocol("the stream closed"))?;
        match inbound.message().await?.and_then(|m| m.response) {
            Some(session_response::Response::Opened(_)) => {}
            _ => return Err(protocol("the node did not confirm the session")),
        }
        let waiting: Waiting = Arc::new(Mutex::new(Ok(HashMap::new())));
        let reader = tokio::spawn(read_answers(inbound, waiting.clone()));
        Ok(Session {
            account,
            requests,
            waiting,
            next_id: AtomicU64::new(0),
            reader,
        })
    }
}

/// Hands each answer to its commit; when the stream ends, fails the rest.
async fn read_answers(mut inbound: tonic::Streaming<SessionResponse>, waiting: Waiting) {
    let ended = loop {
        let committed = match inbound.message().await {
            Ok(Some(SessionResponse {
                response: Some(session_response::Response::Committed(c)),
            })) => c,
            Ok(Some(_)) => continue,
            Ok(None) => break tonic::Status::unavailable("the node ended the session"),
            Err(status) => break status,
        };
        let reply = match &mut *lock(&waiting) {
            Ok(map) => map.remove(&committed.request_id),
            Err(_) => None,
        };
        let Some(reply) = reply else { continue };
        let answer = match committed.response {
            Some(response) if committed.error_code == 0 => Ok(response),
            _ => Err(ClientError::Status(tonic::Status::new(
                tonic::Code::from(committed.error_code as i32),
                committed.error,
            ))),
        };
        let _ = reply.send(answer);
    };
    let previous = std::mem::replace(&mut *lock(&waiting), Err(ended.clone()));
    for (_, reply) in previous.into_iter().flatten() {
        let _ = reply.send(Err(ClientError::Status(ended.clone())));
    }
}

impl Session {
    /// The account this session commits as.
    pub fn account(&self) -> Address {
        self.account
    }

    /// Commits `tx` as the session's account (its sender is set here) and
    /// waits for the log's decision.
    pub async fn commit(&self, mut tx: Transaction) -> Result<CommitResponse, ClientError> {
        tx.sender = self.account;
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        match &mut *lock(&self.waiting) {
            Ok(map) => map.insert(request_id, reply),
            Err(status) => return Err(ClientError::Status(status.clone())),
        };
        let commit = SessionCommit {
            request_id,
            transaction: tx.encode(),
        };
        let request = SessionRequest {
            request: Some(session_request::Request::Commit(commit)),
        };
        if self.requests.send(request).await.is_err() {
            return Err(protocol("the session's stream closed"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(protocol("the session ended")))
    }

    /// Whether the stream has ended (a new session is needed).
    pub fn is_closed(&self) -> bool {
        lock(&self.waiting).is_err() || self.requests.is_closed()
    }
}
