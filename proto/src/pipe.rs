//! Many calls on one bidirectional stream: [`Pipe`].
//!
//! A unary gRPC call costs a stream of its own on the connection: request
//! headers, response headers and trailers, each encoded, sent and parsed
//! on both sides, besides the message itself. Members of a cluster say
//! small things to each other several times per log entry (a shard to
//! store, raft's AppendEntries and the commit that follows it), so they
//! say them on one long-lived stream instead, where a call is one message
//! each way. The serving side answers in the order the requests came (its
//! half of the contract); the pipe matches answers to callers by order.
//!
//! A stream that ends (the peer restarted, the connection broke) fails the
//! calls waiting on it at once, and the next call opens another. A call
//! that gets no answer in time also retires its stream: later calls go out
//! on a new one instead of queueing behind a request the peer may never
//! answer, which is what unary calls would have done.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// Calls a pipe holds before callers wait for room: queued for the stream
/// and, separately, written to it and not yet taken by the transport. A
/// cluster member keeps a few calls in flight on each peer, never dozens;
/// past this, callers wait (their timeout still runs) instead of piling up
/// memory behind a slow peer.
pub const MAX_CALLS_QUEUED: usize = 64;

/// Why a call through a [`Pipe`] has no answer. The request may or may not
/// have reached the peer: callers retry only what is safe to repeat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    /// The peer refused to open the stream (or could not be reached).
    #[error("opening the stream failed: {0}")]
    Open(String),
    /// The stream ended, or broke, before this call's answer came.
    #[error("the stream ended before the answer came: {0}")]
    Ended(String),
    /// No answer within the caller's bound; the stream is retired.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// The answers of an opened stream.
type Answers<Ans> = Pin<Box<dyn Stream<Item = Result<Ans, tonic::Status>> + Send>>;
type Opening<Ans> = Pin<Box<dyn Future<Output = Result<Answers<Ans>, tonic::Status>> + Send>>;
type Opener<Req, Ans> = Arc<dyn Fn(ReceiverStream<Req>) -> Opening<Ans> + Send + Sync>;
type Reply<Ans> = oneshot::Sender<Result<Ans, PipeError>>;
type Queued<Req, Ans> = (Req, Reply<Ans>);

/// Calls to one peer on one stream, opened at the first call and again
/// after it ends. Dropping the pipe closes its stream once the calls in
/// flight are answered or given up.
pub struct Pipe<Req, Ans> {
    open: Opener<Req, Ans>,
    current: Mutex<Option<mpsc::Sender<Queued<Req, Ans>>>>,
}

impl<Req: Send + 'static, Ans: Send + 'static> Pipe<Req, Ans> {
    /// A pipe whose streams `open` starts: given the requests to send, it
    /// makes the call (for example `client.put_many(requests)`) and
    /// returns the answers. The client it uses must not put a deadline on
    /// calls: a stream lives as long as the peer answers.
    pub fn new<F, Fut, S>(open: F) -> Self
    where
        F: Fn(ReceiverStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, tonic::Status>> + Send + 'static,
        S: Stream<Item = Result<Ans, tonic::Status>> + Send + 'static,
    {
        let open: Opener<Req, Ans> = Arc::new(move |requests| {
            let opening = open(requests);
            Box::pin(async move { Ok(Box::pin(opening.await?) as Answers<Ans>) })
        });
        Self {
            open,
            current: Mutex::new(None),
        }
    }

    /// Sends `request` and waits at most `timeout` for its answer,
    /// including any wait for room in the queue.
    pub async fn call(&self, request: Req, timeout: Duration) -> Result<Ans, PipeError> {
        let queue = self.queue(timeout);
        let (reply, answer) = oneshot::channel();
        let asked = async {
            let ended = || PipeError::Ended("the stream to the peer closed".into());
            queue.send((request, reply)).await.map_err(|_| ended())?;
            answer.await.map_err(|_| ended())?
        };
        match tokio::time::timeout(timeout, asked).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.retire(&queue);
                Err(PipeError::TimedOut(timeout))
            }
        }
    }

    /// The open stream's queue, or that of a new stream, which gets
    /// `opening` to open (the bound of the call that asks for it).
    fn queue(&self, opening: Duration) -> mpsc::Sender<Queued<Req, Ans>> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = current.as_ref().filter(|queue| !queue.is_closed()) {
            return queue.clone();
        }
        let (queue, queued) = mpsc::channel(MAX_CALLS_QUEUED);
        tokio::spawn(drive(self.open.clone(), queued, opening));
        *current = Some(queue.clone());
        queue
    }

    /// Stops sending new calls on the stream `queue` feeds. It ends once
    /// the calls already on it are answered or given up.
    fn retire(&self, queue: &mpsc::Sender<Queued<Req, Ans>>) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current
            .as_ref()
            .is_some_and(|open| open.same_channel(queue))
        {
            *current = None;
        }
    }
}

/// Opens a stream (giving up after `opening`: a peer that takes the
/// connection and never answers would otherwise keep one waiting drive per
/// retired stream), sends it what `queued` brings and hands each answer to
/// the call that waits for it, until the stream or every sender ends; then
/// the calls still waiting fail with the reason.
async fn drive<Req, Ans>(
    open: Opener<Req, Ans>,
    mut queued: mpsc::Receiver<Queued<Req, Ans>>,
    opening: Duration,
) {
    let (outgoing, requests) = mpsc::channel(MAX_CALLS_QUEUED);
    let opened = tokio::time::timeout(opening, open(ReceiverStream::new(requests))).await;
    let mut answers = match opened {
        Ok(Ok(answers)) => answers,
        Ok(Err(status)) => {
            return refuse_queued(queued, PipeError::Open(status.to_string())).await;
        }
        Err(_) => {
            let why = format!("the peer did not open the stream within {opening:?}");
            return refuse_queued(queued, PipeError::Open(why)).await;
        }
    };
    let mut waiting: VecDeque<Reply<Ans>> = VecDeque::new();
    let why = loop {
        tokio::select! {
            call = queued.recv() => {
                let Some((request, reply)) = call else { return };
                waiting.push_back(reply);
                if outgoing.send(request).await.is_err() {
                    break "the stream stopped taking requests".to_string();
                }
            }
            answer = answers.next() => match answer {
                Some(Ok(answer)) => match waiting.pop_front() {
                    Some(reply) => { let _ = reply.send(Ok(answer)); }
                    None => break "the peer answered a call never made".to_string(),
                },
                Some(Err(status)) => break status.to_string(),
                None => break "the peer closed the stream".to_string(),
            }
        }
    };
    // Closed before anyone hears of the end, so that a caller told of it
    // finds the queue closed and opens a new stream.
    queued.close();
    for reply in waiting {
        let _ = reply.send(Err(PipeError::Ended(why.clone())));
    }
    refuse_queued(queued, PipeError::Ended(why)).await;
}

/// Fails every call queued for a stream that will not carry it.
async fn refuse_queued<Req, Ans>(mut queued: mpsc::Receiver<Queued<Req, Ans>>, error: PipeError) {
    queued.close();
    while let Some((_, reply)) = queued.recv().await {
        let _ = reply.send(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const BOUND: Duration = Duration::from_secs(10);

    /// A peer that answers each request with `answer(request)`, or ends
    /// the stream when that is None; counts the streams opened.
    fn peer(answer: fn(u32) -> Option<u32>, opened: Arc<AtomicUsize>) -> Pipe<u32, u32> {
        Pipe::new(move |mut requests: ReceiverStream<u32>| {
            opened.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = mpsc::channel(MAX_CALLS_QUEUED);
            tokio::spawn(async move {
                while let Some(request) = requests.next().await {
                    let Some(reply) = answer(request) else { return };
                    if tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
            });
            async move { Ok::<_, tonic::Status>(ReceiverStream::new(rx)) }
        })
    }

    #[tokio::test]
    async fn each_caller_gets_the_answer_to_its_own_request_on_one_stream() {
        let opened = Arc::new(AtomicUsize::new(0));
        let pipe = Arc::new(peer(|n| Some(n * 10), opened.clone()));
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..200u32 {
            let pipe = pipe.clone();
            calls.spawn(async move { (n, pipe.call(n, BOUND).await) });
        }
        while let Some(done) = calls.join_next().await {
            let (n, answer) = done.expect("call task");
            assert_eq!(answer, Ok(n * 10));
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stream_that_ends_fails_its_call_and_the_next_call_opens_another() {
        let opened = Arc::new(AtomicUsize::new(0));
        let pipe = peer(|n| (n != 7).then_some(n), opened.clone());
        assert_eq!(pipe.call(1, BOUND).await, Ok(1));
        assert!(matches!(
            pipe.call(7, BOUND).await,
            Err(PipeError::Ended(_))
        ));
        assert_eq!(pipe.call(2, BOUND).await, Ok(2));
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_call_left_unanswered_times_out_and_retires_its_stream() {
        let opened = Arc::new(AtomicUsize::new(0));
        // Request 0 is taken and never answered; the peer stays connected.
        let pipe: Pipe<u32, u32> = Pipe::new({
            let opened = opened.clone();
            move |mut requests: ReceiverStream<u32>| {
                opened.fetch_add(1, Ordering::SeqCst);
                let (tx, rx) = mpsc::channel(MAX_CALLS_QUEUED);
                tokio::spawn(async move {
                    while let Some(n) = requests.next().await {
                        if n == 0 {
                            std::future::pending::<()>().await;
                        }
                        let _ = tx.send(Ok(n)).await;
                    }
                });
                async move { Ok::<_, tonic::Status>(ReceiverStream::new(rx)) }
            }
        });
        let short = Duration::from_millis(50);
        assert_eq!(pipe.call(0, short).await, Err(PipeError::TimedOut(short)));
        assert_eq!(pipe.call(5, BOUND).await, Ok(5));
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_peer_that_never_opens_the_stream_is_given_up_on_after_the_call_s_bound() {
        // Held by this test, by the pipe's opener, and by each opening
        // until it is dropped.
        let token = Arc::new(());
        let pipe: Pipe<u32, u32> = Pipe::new({
            let token = token.clone();
            move |_requests: ReceiverStream<u32>| {
                let held = token.clone();
                async move {
                    let _held = held;
                    std::future::pending::<Result<ReceiverStream<Result<u32, tonic::Status>>, _>>()
                        .await
                }
            }
        });
        let short = Duration::from_millis(50);
        assert!(pipe.call(1, short).await.is_err());
        let deadline = tokio::time::Instant::now() + BOUND;
        while Arc::strong_count(&token) > 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stuck opening is still held"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_refused_open_fails_the_call_with_the_peer_s_reason() {
        let pipe: Pipe<u32, u32> = Pipe::new(|_requests: ReceiverStream<u32>| async {
            Err::<ReceiverStream<Result<u32, tonic::Status>>, _>(tonic::Status::unauthenticated(
                "no certificate",
            ))
        });
        match pipe.call(1, BOUND).await {
            Err(PipeError::Open(why)) => assert!(why.contains("no certificate"), "{why}"),
            other => panic!("expected a refused open, got {other:?}"),
        }
    }
}
