//! How a voter takes appends: the unary `Append` a follower forwards
//! batches through, the `AppendMany` stream a gateway sends its headers on,
//! and raft's own AppendEntries stream from the leader. Each stream answers
//! in the order its requests came (what [`ordo_proto::pipe`] on the other
//! side relies on) and ends when the voter stops, so that it does not hold
//! the voter's server open.

use crate::leader_queue::{Group, Refusal};
use crate::types::MAX_BATCH_DESCRIPTORS;
use crate::types::{HeaderBatch, TypeConfig};
use openraft::Raft;
use openraft::raft::AppendEntriesRequest;
use ordo_proto::cluster::v1::{AppendAnswer, AppendRequest, RaftMessage};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// The metadata key naming the leader in a refused forwarded append.
pub const LEADER_METADATA: &str = "ordo-leader";

/// The answers of an `AppendMany` stream.
pub type AppendAnswerStream = ReceiverStream<Result<AppendAnswer, Status>>;
/// The answers of raft's AppendEntries stream.
pub type RaftAppendStream = ReceiverStream<Result<RaftMessage, Status>>;

/// Serves one `AppendMany` stream: its appends go to the leader queue
/// `appends` in order and are answered in order, until the caller hangs up
/// or `stopping` turns true.
pub(crate) fn serve_append_many(
    appends: mpsc::Sender<Group>,
    requests: tonic::Streaming<AppendRequest>,
    stopping: watch::Receiver<bool>,
) -> AppendAnswerStream {
    let (pending, waiting) = mpsc::channel(MAX_APPENDS_PENDING);
    let (answers, stream) = mpsc::channel(MAX_APPENDS_PENDING);
    tokio::spawn(queue_appends(appends, requests, pending, stopping));
    tokio::spawn(answer_in_order(waiting, answers));
    ReceiverStream::new(stream)
}

/// Serves one AppendEntries stream from the leader into `raft`.
pub(crate) fn serve_raft_appends(
    raft: Raft<TypeConfig>,
    requests: tonic::Streaming<RaftMessage>,
    stopping: watch::Receiver<bool>,
) -> RaftAppendStream {
    let (answers, stream) = mpsc::channel(MAX_APPENDS_AHEAD);
    tokio::spawn(answer_raft_appends(raft, requests, answers, stopping));
    ReceiverStream::new(stream)
}

/// The status a refusal gets on the wire: ABORTED when raft stopped on
/// this voter (a failed write; it must be restarted), FAILED_PRECONDITION
/// naming the leader when this voter is not it (nothing was proposed),
/// otherwise UNAVAILABLE.
pub(crate) fn status_of(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Stopped(why) => Status::aborted(format!("raft stopped on this voter: {why}")),
        Refusal::Failed(why) => Status::unavailable(format!("raft refused: {why}")),
        Refusal::NotLeader(leader) => {
            let mut status = Status::failed_precondition("this voter is not the leader");
            if let Some(value) = leader.and_then(|addr| addr.parse().ok()) {
                status.metadata_mut().insert(LEADER_METADATA, value);
            }
            status
        }
    }
}

/// The refusal of an append to a voter that is stopping.
pub(crate) fn stopped() -> Status {
    Status::aborted("this voter is stopping")
}

/// The group an append asks to order, and where its answer will come,
/// if the request is well formed.
pub(crate) fn group_of(request: AppendRequest) -> Result<(Group, Answer), Status> {
    let encoded = request.descriptors;
    if encoded.len() > MAX_BATCH_DESCRIPTORS {
        return Err(Status::invalid_argument(format!(
            "{} descriptors in one append; at most {MAX_BATCH_DESCRIPTORS}",
            encoded.len()
        )));
    }
    let batch =
        HeaderBatch::try_from(encoded).map_err(|e| Status::invalid_argument(e.to_string()))?;
    for descriptor in &batch.descriptors {
        descriptor
            .validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let group = Group {
        descriptors: batch.descriptors,
        reply,
    };
    Ok((group, answer))
}

/// Where a queued group's first seq, or its refusal, comes.
pub(crate) type Answer = tokio::sync::oneshot::Receiver<Result<u64, Refusal>>;

/// The first seq raft gave a queued group, or the refusal as a status.
pub(crate) async fn ordered(answer: Answer) -> Result<u64, Status> {
    match answer.await.map_err(|_| stopped())? {
        Ok(first_seq) => Ok(first_seq),
        Err(refusal) => Err(status_of(refusal)),
    }
}

/// Appends one `AppendMany` stream may have queued and unanswered before
/// it stops reading requests. A gateway keeps at most
/// `appends_in_flight` entries in flight (64 at most), one by default.
pub const MAX_APPENDS_PENDING: usize = 64;

/// An append taken from a stream: refused at once, or queued for raft.
enum Pending {
    Refused(Status),
    Queued(Answer),
}

/// The next message of `requests`, or None once the caller hangs up, the
/// stream breaks or this voter stops.
async fn next_request<T>(
    requests: &mut tonic::Streaming<T>,
    stopping: &mut watch::Receiver<bool>,
) -> Option<T> {
    tokio::select! {
        message = requests.message() => message.ok().flatten(),
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }
}

/// Queues each append an `AppendMany` stream brings on the leader queue,
/// in the order they come, and passes each on to be answered in that
/// order, until the caller hangs up or this voter stops.
async fn queue_appends(
    appends: mpsc::Sender<Group>,
    mut requests: tonic::Streaming<AppendRequest>,
    pending: mpsc::Sender<Pending>,
    mut stopping: watch::Receiver<bool>,
) {
    while let Some(request) = next_request(&mut requests, &mut stopping).await {
        let next = match group_of(request) {
            Ok((group, answer)) => match appends.send(group).await {
                Ok(()) => Pending::Queued(answer),
                Err(_) => Pending::Refused(stopped()),
            },
            Err(status) => Pending::Refused(status),
        };
        if pending.send(next).await.is_err() {
            return;
        }
    }
}

/// Answers each append `queue_appends` passed on, in order.
async fn answer_in_order(
    mut waiting: mpsc::Receiver<Pending>,
    answers: mpsc::Sender<Result<AppendAnswer, Status>>,
) {
    while let Some(next) = waiting.recv().await {
        let outcome = match next {
            Pending::Refused(status) => Err(status),
            Pending::Queued(answer) => ordered(answer).await,
        };
        if answers.send(Ok(answer_of(outcome))).await.is_err() {
            return;
        }
    }
}

/// An append's outcome as its stream answers it: what `Append` would have
/// answered, the leader's name in a field instead of metadata.
fn answer_of(outcome: Result<u64, Status>) -> AppendAnswer {
    match outcome {
        Ok(first_seq) => AppendAnswer {
            first_seq,
            ..AppendAnswer::default()
        },
        Err(status) => AppendAnswer {
            first_seq: 0,
            code: status.code() as i32,
            message: status.message().to_string(),
            leader: (status.metadata().get(LEADER_METADATA))
                .and_then(|leader| leader.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        },
    }
}

pub(crate) fn encode_message<T: Serialize>(result: &T) -> Result<RaftMessage, Status> {
    postcard::to_allocvec(result)
        .map(|body| RaftMessage { body })
        .map_err(|e| Status::internal(format!("encoding a raft reply: {e}")))
}

/// Answers unread before an AppendEntries stream stops reading requests.
/// The leader waits for each answer before it sends the next append, so
/// one would do; the rest is slack for heartbeats.
pub const MAX_APPENDS_AHEAD: usize = 8;

/// Hands each AppendEntries the stream brings to `raft`, one at a time,
/// and answers each in order, until the leader hangs up, a request does
/// not decode (the stream ends with INVALID_ARGUMENT) or this voter stops
/// (raft refusing an append means that too: the answer says so and the
/// stream ends).
async fn answer_raft_appends(
    raft: Raft<TypeConfig>,
    mut requests: tonic::Streaming<RaftMessage>,
    answers: mpsc::Sender<Result<RaftMessage, Status>>,
    mut stopping: watch::Receiver<bool>,
) {
    while let Some(message) = next_request(&mut requests, &mut stopping).await {
        let (answer, last) =
            match postcard::from_bytes::<AppendEntriesRequest<TypeConfig>>(&message.body) {
                Ok(rpc) => {
                    let result = raft.append_entries(rpc).await;
                    (encode_message(&result), result.is_err())
                }
                Err(e) => (
                    Err(Status::invalid_argument(format!(
                        "undecodable raft message: {e}"
                    ))),
                    true,
                ),
            };
        if answers.send(answer).await.is_err() || last {
            return;
        }
    }
}
