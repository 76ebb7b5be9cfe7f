//! One `PutMany` stream to a storage member, shared by every shard put a
//! gateway sends it.
//!
//! A unary `Put` costs each shard a stream of its own on the connection:
//! request headers, response headers and trailers, each encoded, sent and
//! parsed on both sides, on top of the shard itself. On a long-lived
//! stream a put is one message each way. The member answers puts in the
//! order they came, so the pipe matches answers to callers by order. A
//! stream that ends (the member restarted, the connection broke) fails the
//! puts waiting on it at once, and the next put opens a new one.

use ordo_proto::cluster::v1::shards_client::ShardsClient;
use ordo_proto::cluster::v1::{PutShardAnswer, PutShardRequest};
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

/// Puts one pipe queues before callers wait for room. A gateway keeps a
/// put per entry in flight on each member, a few entries at most.
pub const MAX_PUTS_QUEUED: usize = 64;

/// What a put came to: `Ok` once the shard is durable on the member.
type Answer = Result<(), String>;
type Queued = (PutShardRequest, oneshot::Sender<Answer>);

/// The put stream to one member, opened at the first put and again after
/// it ends.
pub struct PutPipe {
    client: ShardsClient<Channel>,
    /// How long one put may wait for its answer.
    timeout: std::time::Duration,
    open: std::sync::Mutex<Option<mpsc::Sender<Queued>>>,
}

impl PutPipe {
    /// A pipe over `client`, which must not time its calls out: the
    /// stream lives as long as the member answers; each put waits at most
    /// `timeout` for its answer.
    pub fn new(client: ShardsClient<Channel>, timeout: std::time::Duration) -> Self {
        Self {
            client,
            timeout,
            open: std::sync::Mutex::new(None),
        }
    }

    /// Stores one shard on the member: durable when this returns `Ok`.
    pub async fn put(&self, request: PutShardRequest) -> Answer {
        let (tell, answer) = oneshot::channel();
        let closed = |_| "the put stream to the member closed".to_string();
        self.queue().send((request, tell)).await.map_err(closed)?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the put stream to the member ended".into()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    /// The open stream's queue, or a new stream's.
    fn queue(&self) -> mpsc::Sender<Queued> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = open.as_ref().filter(|queue| !queue.is_closed()) {
            return queue.clone();
        }
        let (queue, queued) = mpsc::channel(MAX_PUTS_QUEUED);
        tokio::spawn(drive(self.client.clone(), queued));
        *open = Some(queue.clone());
        queue
    }
}

/// Opens a stream, sends it what `queued` brings and hands each answer to
/// the put that waits for it, until the stream or the pipe ends; then
/// every put still waiting or queued fails.
async fn drive(mut client: ShardsClient<Channel>, mut queued: mpsc::Receiver<Queued>) {
    let (outgoing, requests) = mpsc::channel(MAX_PUTS_QUEUED);
    let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
    let mut answers = match client.put_many(stream).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            tracing::debug!(%status, "opening a put stream failed");
            return;
        }
    };
    let mut waiting: VecDeque<oneshot::Sender<Answer>> = VecDeque::new();
    loop {
        tokio::select! {
            put = queued.recv() => {
                let Some((request, tell)) = put else { return };
                waiting.push_back(tell);
                if outgoing.send(request).await.is_err() {
                    return;
                }
            }
            answer = answers.message() => {
                let (Ok(Some(answer)), Some(tell)) = (answer, waiting.pop_front()) else {
                    return;
                };
                let _ = tell.send(outcome(answer));
            }
        }
    }
}

/// A member's answer as the caller sees it.
fn outcome(answer: PutShardAnswer) -> Answer {
    match tonic::Code::from_i32(answer.code) {
        tonic::Code::Ok => Ok(()),
        code => Err(format!("{code:?}: {}", answer.message)),
    }
}
