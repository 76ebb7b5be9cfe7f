//! [`RemoteSequencer`]: the raft sequencer as a member that is not a voter
//! sees it (a gateway, a replica): ordo's `Sequencer` over the voters'
//! `ordo.cluster.v1.Sequencer` service.
//!
//! The tail is learnt by following one voter's `Follow` stream (another
//! when it goes away), and never moves back when the stream moves to a
//! voter that lags. Appends go to the leader, found by asking any voter and
//! following the leader it names; an append returns once its header is
//! committed and the followed tail has passed it, so `read` and `tail`
//! already include it.

use crate::network::{LEADER_METADATA, peer_client};
use crate::tls::PeerTls;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError};
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::{AppendRequest, FollowRequest, HeadersRequest, StatusRequest};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;

/// How long an append keeps looking for a leader before it fails.
pub const REMOTE_APPEND_DEADLINE: Duration = Duration::from_secs(10);

/// Pause before trying the next voter.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Why a remote sequencer could not be reached at all.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No voter address was given.
    #[error("no voter addresses")]
    NoVoters,
    /// No voter answered.
    #[error("no voter answered: {0}")]
    Unreachable(String),
}

/// The voters' sequencer, from outside.
pub struct RemoteSequencer {
    voters: Vec<String>,
    tls: Arc<PeerTls>,
    /// The voter that last took an append.
    leader: Mutex<Option<String>>,
    /// One client per voter, made on first use: a channel keeps its
    /// connection (and TLS session) across calls and reconnects by itself.
    clients: Mutex<std::collections::HashMap<String, SequencerClient<Channel>>>,
    tail: Arc<watch::Sender<u64>>,
    follower: tokio::task::JoinHandle<()>,
}

impl Drop for RemoteSequencer {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn client(addr: &str, tls: &PeerTls) -> Result<SequencerClient<Channel>, SequencerError> {
    peer_client(addr, tls).map_err(|e| SequencerError::Io(format!("voter {addr}: {e}")))
}

impl RemoteSequencer {
    /// Connects to the voters at `voters` with the member credentials
    /// `tls`, learning the current tail before it returns.
    pub async fn connect(voters: Vec<String>, tls: Arc<PeerTls>) -> Result<Self, ConnectError> {
        if voters.is_empty() {
            return Err(ConnectError::NoVoters);
        }
        let mut last_error = String::new();
        let mut start = None;
        for addr in &voters {
            let asked = match client(addr, &tls) {
                Ok(mut c) => c.status(StatusRequest {}).await.map_err(|s| s.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match asked {
                Ok(status) => {
                    start = Some(status.into_inner().header_tail);
                    break;
                }
                Err(e) => last_error = format!("{addr}: {e}"),
            }
        }
        let start = start.ok_or(ConnectError::Unreachable(last_error))?;
        let tail = Arc::new(watch::Sender::new(start));
        let follower = tokio::spawn(follow(voters.clone(), tls.clone(), tail.clone()));
        Ok(Self {
            voters,
            tls,
            leader: Mutex::new(None),
            clients: Mutex::default(),
            tail,
            follower,
        })
    }

    /// The client for the voter at `addr`, kept for later calls.
    fn client_of(&self, addr: &str) -> Result<SequencerClient<Channel>, SequencerError> {
        let mut clients = self.clients.lock().expect("clients lock");
        if let Some(client) = clients.get(addr) {
            return Ok(client.clone());
        }
        let made = client(addr, &self.tls)?;
        clients.insert(addr.to_string(), made.clone());
        Ok(made)
    }

    /// The voter to try on attempt `attempt`: the last leader first.
    fn target(&self, attempt: usize) -> String {
        let leader = self.leader.lock().expect("leader lock").clone();
        match (attempt, leader) {
            (0, Some(leader)) => leader,
            _ => self.voters[attempt % self.voters.len()].clone(),
        }
    }

    /// Sends `request` to the leader; returns its first seq.
    async fn append_on_leader(&self, request: AppendRequest) -> Result<u64, SequencerError> {
        let deadline = tokio::time::Instant::now() + REMOTE_APPEND_DEADLINE;
        let mut target = self.target(0);
        for attempt in 1.. {
            let answer = self.client_of(&target)?.append(request.clone()).await;
            let status = match answer {
                Ok(reply) => {
                    *self.leader.lock().expect("leader lock") = Some(target);
                    return Ok(reply.into_inner().first_seq);
                }
                Err(status) => status,
            };
            let named = status
                .metadata()
                .get(LEADER_METADATA)
                .and_then(|v| v.to_str().ok());
            target = match status.code() {
                tonic::Code::Aborted => {
                    return Err(SequencerError::Poisoned(status.message().into()));
                }
                tonic::Code::FailedPrecondition => named
                    .map(str::to_string)
                    .unwrap_or_else(|| self.target(attempt)),
                tonic::Code::Unavailable if status.message().contains("connect") => {
                    self.target(attempt)
                }
                _ => {
                    return Err(SequencerError::Io(format!(
                        "append to {target} ended unknown: {status}"
                    )));
                }
            };
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        Err(SequencerError::Io(format!(
            "no leader took the append within {REMOTE_APPEND_DEADLINE:?}"
        )))
    }
}

/// Follows the voters' tail into `tail`, moving to the next voter when a
/// stream ends or fails; the tail never moves back.
async fn follow(voters: Vec<String>, tls: Arc<PeerTls>, tail: Arc<watch::Sender<u64>>) {
    for addr in voters.iter().cycle() {
        let from = *tail.borrow();
        if let Ok(mut voter) = client(addr, &tls)
            && let Ok(stream) = voter.follow(FollowRequest { from_seq: from }).await
        {
            let mut stream = stream.into_inner();
            while let Ok(Some(batch)) = stream.message().await {
                tail.send_if_modified(|known| {
                    let moved = batch.tail > *known;
                    *known = (*known).max(batch.tail);
                    moved
                });
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

#[async_trait::async_trait]
impl Sequencer for RemoteSequencer {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        let header = EntryHeader { seq: 0, entry };
        let request = AppendRequest {
            descriptors: vec![header.encode()],
        };
        let seq = self.append_on_leader(request).await?;
        let applied = tokio::time::timeout(REMOTE_APPEND_DEADLINE, self.wait_beyond(seq)).await;
        match applied {
            Ok(result) => result?,
            Err(_) => {
                return Err(SequencerError::Io(format!(
                    "entry {seq} committed but not seen by the followed voter in time"
                )));
            }
        };
        Ok(EntryHeader {
            seq,
            entry: header.entry,
        })
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        let max = max
            .min(MAX_READ_BATCH)
            .min(self.tail().saturating_sub(from) as usize);
        if max == 0 {
            return Ok(Vec::new());
        }
        let request = HeadersRequest {
            from_seq: from,
            max: max as u32,
        };
        let mut last_error = String::new();
        for attempt in 0..self.voters.len() + 1 {
            let target = self.target(attempt);
            match self.client_of(&target)?.headers(request).await {
                // The followed tail may be ahead of this voter (it lags, or
                // has just restarted): another voter has the headers.
                Ok(reply) if reply.get_ref().headers.is_empty() => {
                    last_error = format!("{target}: has not applied seq {from} yet");
                }
                Ok(reply) => {
                    return reply
                        .into_inner()
                        .headers
                        .iter()
                        .map(|bytes| EntryHeader::decode(bytes).map_err(SequencerError::Invalid))
                        .collect();
                }
                Err(status) => last_error = format!("{target}: {status}"),
            }
        }
        Err(SequencerError::Io(format!(
            "no voter served headers: {last_error}"
        )))
    }

    fn tail(&self) -> u64 {
        *self.tail.borrow()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        let mut tail = self.tail.subscribe();
        let reached = tail
            .wait_for(|&tail| tail > seq)
            .await
            .map_err(|_| SequencerError::Closed)?;
        Ok(*reached)
    }
}
