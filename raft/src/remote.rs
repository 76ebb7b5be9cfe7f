//! [`RemoteSequencer`]: the raft sequencer as a member that is not a voter
//! sees it (a gateway, a replica): ordo's `Sequencer` over the voters'
//! `ordo.cluster.v1.Sequencer` service.
//!
//! The tail is learnt by following one voter's `Follow` stream (another
//! when it goes away), and never moves back when the stream moves to a
//! voter that lags. Appends go to the leader, found by asking any voter and
//! following the leader it names, on one `AppendMany` stream per voter
//! ([`ordo_proto::pipe`]: a message each way per entry instead of a call);
//! an append returns once its header is committed and the followed tail
//! has passed it, so `read` and `tail` already include it.

use crate::network::peer_client;
use crate::tls::PeerTls;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError};
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::{
    AppendAnswer, AppendRequest, FollowRequest, HeadersRequest, StatusRequest,
};
use ordo_proto::pipe::{Pipe, PipeError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;

/// How long an append keeps looking for a leader before it fails.
pub const REMOTE_APPEND_DEADLINE: Duration = Duration::from_secs(10);

/// Pause before trying the next voter.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Longest one append to one voter may take. A healthy leader answers once
/// the batch is committed (milliseconds); a leader cut off from the other
/// voters never answers, and the append must move on. Past it the outcome
/// is unknown: the append fails, and the next one starts at another voter.
pub const APPEND_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the voters' tails are compared. The followed voter may be cut
/// off from the others (its stream stays open but stops moving); another
/// voter that is further ahead then becomes the one followed.
pub const TAIL_PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Headers the follow stream brought that are kept for `read`. A replica
/// reads each new header right after the tail moves past it; keeping the
/// ones the stream already carried spares that read a round trip to a
/// voter on every entry's way to being applied. 4,096 headers are about
/// 0.5 MiB, and more than a replica falls behind between two reads.
pub const FOLLOWED_HEADERS_KEPT: usize = 4096;

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

type AppendPipe = Pipe<AppendRequest, AppendAnswer>;

/// How one voter is reached: a client for calls, and the append stream
/// over it (opened on the first append).
#[derive(Clone)]
struct VoterLink {
    client: SequencerClient<Channel>,
    appends: Arc<AppendPipe>,
}

impl VoterLink {
    fn to(addr: &str, tls: &PeerTls) -> Result<Self, SequencerError> {
        let client = client(addr, tls)?;
        let for_appends = client.clone();
        let appends = Arc::new(Pipe::new(move |requests| {
            let mut client = for_appends.clone();
            async move { Ok(client.append_many(requests).await?.into_inner()) }
        }));
        Ok(Self { client, appends })
    }
}

/// The voters' sequencer, from outside.
pub struct RemoteSequencer {
    voters: Vec<String>,
    tls: Arc<PeerTls>,
    /// The voter that last took an append.
    leader: Mutex<Option<String>>,
    /// One link per voter, made on first use: a channel keeps its
    /// connection (and TLS session) across calls and reconnects by itself,
    /// and the voter's append stream rides on it.
    links: Mutex<std::collections::HashMap<String, VoterLink>>,
    /// Where the search for the leader starts when none is known: moved
    /// on past a voter whose append failed.
    rotation: std::sync::atomic::AtomicUsize,
    tail: Arc<watch::Sender<u64>>,
    /// The latest headers the follow stream brought, in seq order.
    followed: Arc<Mutex<FollowedHeaders>>,
    /// The voter the tail is followed from, when chosen: the leader that
    /// last took an append (it learns of a commit first; a follower only at
    /// the leader's next message, up to a heartbeat later), or the voter
    /// furthest ahead when the followed one stalls.
    prefer: Arc<watch::Sender<Option<String>>>,
    follower: tokio::task::JoinHandle<()>,
    prober: tokio::task::JoinHandle<()>,
}

impl Drop for RemoteSequencer {
    fn drop(&mut self) {
        self.follower.abort();
        self.prober.abort();
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
        let (prefer, preferred) = watch::channel(None);
        let prefer = Arc::new(prefer);
        let followed = Arc::new(Mutex::new(FollowedHeaders::default()));
        let follower = tokio::spawn(follow(
            Followed {
                voters: voters.clone(),
                tls: tls.clone(),
                tail: tail.clone(),
                headers: followed.clone(),
            },
            preferred,
        ));
        let prober = tokio::spawn(probe(
            voters.clone(),
            tls.clone(),
            tail.clone(),
            prefer.clone(),
        ));
        Ok(Self {
            voters,
            tls,
            leader: Mutex::new(None),
            rotation: Default::default(),
            links: Mutex::default(),
            tail,
            followed,
            prefer,
            follower,
            prober,
        })
    }

    /// The link to the voter at `addr`, kept for later calls.
    fn link_to(&self, addr: &str) -> Result<VoterLink, SequencerError> {
        let mut links = self.links.lock().expect("links lock");
        if let Some(link) = links.get(addr) {
            return Ok(link.clone());
        }
        let made = VoterLink::to(addr, &self.tls)?;
        links.insert(addr.to_string(), made.clone());
        Ok(made)
    }

    /// The voter to try on attempt `attempt`: the last leader first.
    fn target(&self, attempt: usize) -> String {
        let leader = self.leader.lock().expect("leader lock").clone();
        let start = self.rotation.load(std::sync::atomic::Ordering::Relaxed);
        match (attempt, leader) {
            (0, Some(leader)) => leader,
            _ => self.voters[(start + attempt) % self.voters.len()].clone(),
        }
    }

    /// After an append whose outcome is unknown: forget the leader and
    /// start the next search at another voter, so a leader cut off from
    /// the others is not asked first again.
    fn suspect(&self, target: &str) {
        let mut leader = self.leader.lock().expect("leader lock");
        if leader.as_deref() == Some(target) {
            *leader = None;
        }
        self.rotation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends `request` to the leader; returns its first seq.
    async fn append_on_leader(&self, request: AppendRequest) -> Result<u64, SequencerError> {
        let deadline = tokio::time::Instant::now() + REMOTE_APPEND_DEADLINE;
        let mut target = self.target(0);
        for attempt in 1.. {
            let pipe = self.link_to(&target)?.appends;
            target = match pipe.call(request.clone(), APPEND_ATTEMPT_TIMEOUT).await {
                Ok(answer) if answer.code == tonic::Code::Ok as i32 => {
                    prefer_voter(&self.prefer, &target);
                    *self.leader.lock().expect("leader lock") = Some(target);
                    return Ok(answer.first_seq);
                }
                Ok(refused) => self.after_refusal(&target, refused, attempt)?,
                // The stream never opened, so nothing was sent: another
                // voter may be up.
                Err(PipeError::Open(_)) => self.target(attempt),
                Err(e @ (PipeError::TimedOut(_) | PipeError::Ended(_))) => {
                    self.suspect(&target);
                    return Err(SequencerError::Io(format!(
                        "append to {target}: {e}; outcome unknown"
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

    /// The voter to try after `target` refused an append: the leader it
    /// named, or the next voter when it named none. Raft stopped there, or
    /// a refusal that may have proposed the append, ends the attempts.
    fn after_refusal(
        &self,
        target: &str,
        refused: AppendAnswer,
        attempt: usize,
    ) -> Result<String, SequencerError> {
        match tonic::Code::from_i32(refused.code) {
            tonic::Code::Aborted => Err(SequencerError::Poisoned(refused.message)),
            tonic::Code::FailedPrecondition if refused.leader.is_empty() => {
                Ok(self.target(attempt))
            }
            tonic::Code::FailedPrecondition => Ok(refused.leader),
            code => {
                self.suspect(target);
                Err(SequencerError::Io(format!(
                    "append to {target} ended unknown: {code:?}: {}",
                    refused.message
                )))
            }
        }
    }
}

/// Follows the voters' tail into `tail`, moving to the next voter when a
/// stream ends or fails, and to the voter `preferred` names when it
/// changes; the tail never moves back.
async fn follow(followed: Followed, mut preferred: watch::Receiver<Option<String>>) {
    let Followed {
        voters,
        tls,
        tail,
        headers,
    } = followed;
    let mut next = 0;
    loop {
        let addr = match preferred.borrow_and_update().clone() {
            Some(addr) => addr,
            None => {
                next += 1;
                voters[next % voters.len()].clone()
            }
        };
        let from = *tail.borrow();
        if let Ok(mut voter) = client(&addr, &tls)
            && let Ok(stream) = voter.follow(FollowRequest { from_seq: from }).await
        {
            let mut stream = stream.into_inner();
            loop {
                tokio::select! {
                    message = stream.message() => match message {
                        Ok(Some(batch)) => {
                            if keep_followed(&headers, &batch.headers).is_err() {
                                break;
                            }
                            raise(&tail, batch.tail);
                        }
                        _ => break,
                    },
                    changed = preferred.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// What the follow task feeds: the tail, and the headers kept for `read`.
struct Followed {
    voters: Vec<String>,
    tls: Arc<PeerTls>,
    tail: Arc<watch::Sender<u64>>,
    headers: Arc<Mutex<FollowedHeaders>>,
}

/// The last [`FOLLOWED_HEADERS_KEPT`] headers the follow stream brought,
/// with no gap: seqs `first..first + headers.len()`.
#[derive(Default)]
struct FollowedHeaders {
    first: u64,
    headers: std::collections::VecDeque<EntryHeader>,
}

impl FollowedHeaders {
    /// Appends `header`; a header that does not follow the last one kept
    /// (the stream moved to another voter, from another seq) starts over.
    fn push(&mut self, header: EntryHeader) {
        if header.seq != self.first + self.headers.len() as u64 {
            self.headers.clear();
            self.first = header.seq;
        }
        self.headers.push_back(header);
        if self.headers.len() > FOLLOWED_HEADERS_KEPT {
            self.headers.pop_front();
            self.first += 1;
        }
    }

    /// Up to `max` headers from `from`, if `from` is kept.
    fn read(&self, from: u64, max: usize) -> Option<Vec<EntryHeader>> {
        let offset = usize::try_from(from.checked_sub(self.first)?).ok()?;
        if offset >= self.headers.len() {
            return None;
        }
        Some(self.headers.range(offset..).take(max).cloned().collect())
    }
}

/// Keeps the headers of one follow frame; a header that does not decode
/// fails the frame (the stream is dropped and followed again).
fn keep_followed(
    kept: &Mutex<FollowedHeaders>,
    encoded: &[Vec<u8>],
) -> Result<(), ordo_log::LogError> {
    let decoded = encoded
        .iter()
        .map(|bytes| EntryHeader::decode(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kept = kept.lock().expect("followed headers lock");
    decoded.into_iter().for_each(|header| kept.push(header));
    Ok(())
}

/// Follows `addr` from now on (a no-op when it is already followed).
fn prefer_voter(prefer: &watch::Sender<Option<String>>, addr: &str) {
    prefer.send_if_modified(|now| {
        let moved = now.as_deref() != Some(addr);
        *now = Some(addr.to_string());
        moved
    });
}

/// Moves `tail` up to `seen`, never down.
fn raise(tail: &watch::Sender<u64>, seen: u64) {
    tail.send_if_modified(|known| {
        let moved = seen > *known;
        *known = (*known).max(seen);
        moved
    });
}

/// Every [`TAIL_PROBE_INTERVAL`], asks each voter for its header tail; when
/// one is ahead of the tail the stream brought, the tail moves up to it
/// (its headers below that are committed), and if the stream brought
/// nothing since the last probe, that voter is followed instead.
async fn probe(
    voters: Vec<String>,
    tls: Arc<PeerTls>,
    tail: Arc<watch::Sender<u64>>,
    prefer: Arc<watch::Sender<Option<String>>>,
) {
    let clients: Vec<(String, SequencerClient<Channel>)> = voters
        .iter()
        .filter_map(|addr| Some((addr.clone(), client(addr, &tls).ok()?)))
        .collect();
    let mut last = *tail.borrow();
    loop {
        tokio::time::sleep(TAIL_PROBE_INTERVAL).await;
        let mut best: Option<(u64, &String)> = None;
        for (addr, client) in &clients {
            let mut client = client.clone();
            let asked = client.status(StatusRequest {});
            let Ok(Ok(status)) = tokio::time::timeout(TAIL_PROBE_INTERVAL, asked).await else {
                continue;
            };
            let seen = status.into_inner().header_tail;
            if best.is_none_or(|(most, _)| seen > most) {
                best = Some((seen, addr));
            }
        }
        let before = *tail.borrow();
        if let Some((seen, addr)) = best
            && seen > before
        {
            raise(&tail, seen);
            // Only a stream that brought nothing since the last probe is
            // left: under load the stream trails the probe a little, and
            // moving it then would only cost a reconnection.
            if before == last {
                prefer_voter(&prefer, addr);
            }
        }
        last = *tail.borrow();
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
        let kept = (self.followed.lock().expect("followed headers lock")).read(from, max);
        if let Some(headers) = kept {
            return Ok(headers);
        }
        let request = HeadersRequest {
            from_seq: from,
            max: max as u32,
        };
        let mut last_error = String::new();
        for attempt in 0..self.voters.len() + 1 {
            let target = self.target(attempt);
            match self.link_to(&target)?.client.headers(request).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64) -> EntryHeader {
        EntryHeader {
            seq,
            entry: ordo_log::stress::descriptor(0, 0, seq),
        }
    }

    fn seqs(headers: Option<Vec<EntryHeader>>) -> Option<Vec<u64>> {
        headers.map(|h| h.iter().map(|header| header.seq).collect())
    }

    #[test]
    fn followed_headers_serve_reads_from_the_first_kept_seq_on() {
        let mut kept = FollowedHeaders::default();
        (10..20).for_each(|seq| kept.push(header(seq)));
        assert_eq!(seqs(kept.read(12, 3)), Some(vec![12, 13, 14]));
        assert_eq!(seqs(kept.read(18, 10)), Some(vec![18, 19]));
        assert_eq!(seqs(kept.read(9, 1)), None, "below the first kept");
        assert_eq!(seqs(kept.read(20, 1)), None, "beyond the last kept");
    }

    #[test]
    fn a_gap_in_the_followed_headers_starts_the_kept_run_over() {
        let mut kept = FollowedHeaders::default();
        (0..5).for_each(|seq| kept.push(header(seq)));
        kept.push(header(9));
        assert_eq!(seqs(kept.read(0, 10)), None);
        assert_eq!(seqs(kept.read(9, 10)), Some(vec![9]));
    }

    #[test]
    fn followed_headers_keep_only_the_latest_ones() {
        let mut kept = FollowedHeaders::default();
        let total = FOLLOWED_HEADERS_KEPT as u64 + 10;
        (0..total).for_each(|seq| kept.push(header(seq)));
        assert_eq!(kept.headers.len(), FOLLOWED_HEADERS_KEPT);
        assert_eq!(seqs(kept.read(9, 1)), None);
        assert_eq!(seqs(kept.read(10, 1)), Some(vec![10]));
        assert_eq!(seqs(kept.read(total - 1, 5)), Some(vec![total - 1]));
    }
}
