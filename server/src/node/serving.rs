//! Serving lanes: gRPC connections spread over the node's runtime and
//! single-threaded runtimes of their own.
//!
//! # Why not more runtime workers
//!
//! A multi-threaded tokio runtime keeps its workers busy by waking an idle
//! one whenever a parked worker is woken with work, and by letting idle
//! workers steal queued tasks. A commit is woken from outside the runtime
//! (the log's writer thread says the entry is durable), so with two
//! workers every commit wakes one worker, which wakes the other, which
//! steals part of the answer's path onto the other core: on this project's
//! two-core machine a lone put's p50 was 10-40 µs longer with two workers
//! than with one (docs/BENCHMARKS.md, "Serving lanes"). With one worker
//! the lone put is fast, but point reads, which are nothing but gRPC work,
//! get one thread: at 16 clients a quarter fewer than with two workers.
//!
//! # What a lane is
//!
//! Lane 0 is the runtime the node runs on. Every further lane is a thread
//! with a single-threaded runtime of its own, serving the same services.
//! The listener is accepted on lane 0 only; each new connection goes to
//! the lane with the fewest open connections, ties to the lowest lane. A
//! connection then lives on its lane: its streams, handlers and the tasks
//! they spawn never move between threads, and a single-threaded runtime
//! has no second worker to wake. A lone client lands on lane 0, with the
//! node's own tasks, exactly as with one worker; many clients spread over
//! every lane, so reads use every core.
//!
//! One listener and a dealer, not `SO_REUSEPORT` listeners per lane: with
//! `SO_REUSEPORT` a second process of the same user could bind the same
//! port and silently take a share of the connections, and the kernel's
//! hash of the four-tuple may put several busy connections on one lane.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Most serving lanes past lane 0: one per core is all they can use, and
/// this bounds a mistyped count to something a machine can start.
pub const MAX_SERVING_THREADS: usize = 1024;

/// Accepted connections queued for one lane before the dealer waits for
/// that lane to take them (back-pressure on accepting, not a queue
/// without bound).
pub const LANE_QUEUE: usize = 1024;

/// How long the dealer waits after a failed accept (out of file
/// descriptors, say) before accepting again, so that a persistent error
/// is not a busy loop.
pub const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The connections a lane has open; shared by the dealer (which counts
/// them in) and the connections themselves (which count themselves out
/// when closed).
#[derive(Debug, Default, Clone)]
struct OpenCount(Arc<AtomicUsize>);

impl OpenCount {
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn count_in(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count_out(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The dealer's end of a lane.
struct LaneSender {
    open: OpenCount,
    connections: mpsc::Sender<std::net::TcpStream>,
}

/// A lane's end: the connections dealt to it, adopted by the runtime that
/// polls the stream.
pub struct LaneIncoming {
    open: OpenCount,
    connections: mpsc::Receiver<std::net::TcpStream>,
}

impl tokio_stream::Stream for LaneIncoming {
    type Item = std::io::Result<LaneConnection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.connections.poll_recv(cx).map(|next| {
            next.map(|stream| {
                // Registers the socket with the runtime polling this lane.
                let adopted = tokio::net::TcpStream::from_std(stream);
                if adopted.is_err() {
                    this.open.count_out();
                }
                let open = this.open.clone();
                adopted.map(|stream| LaneConnection { stream, open })
            })
        })
    }
}

/// `lanes` connected pairs: the dealer's ends and the lanes' ends.
fn lanes(lanes: usize) -> (Vec<LaneSender>, Vec<LaneIncoming>) {
    (0..lanes)
        .map(|_| {
            let (sender, receiver) = mpsc::channel(LANE_QUEUE);
            let open = OpenCount::default();
            let dealer_end = LaneSender {
                open: open.clone(),
                connections: sender,
            };
            let lane_end = LaneIncoming {
                open,
                connections: receiver,
            };
            (dealer_end, lane_end)
        })
        .unzip()
}

/// The lane with the fewest open connections, the lowest on a tie.
fn least_busy(lanes: &[LaneSender]) -> Option<&LaneSender> {
    lanes.iter().min_by_key(|lane| lane.open.get())
}

/// Accepts connections on `listener` and deals each to the least busy
/// lane, until a lane is gone (its server has stopped, so the node is
/// stopping); `serve` treats a dealer that ends before shutdown as a
/// failure.
async fn deal(listener: tokio::net::TcpListener, lanes: Vec<LaneSender>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // No Nagle: replies are small and latency-bound; with Nagle, a reply
        // written in pieces waits for the client's delayed ACK (about 40 ms).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot turn Nagle's algorithm off; closing the connection");
            continue;
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot hand a connection to a lane; closing it");
                continue;
            }
        };
        let Some(lane) = least_busy(&lanes) else {
            return;
        };
        lane.open.count_in();
        if lane.connections.send(stream).await.is_err() {
            lane.open.count_out();
            return;
        }
    }
}

/// An accepted connection, counted in its lane while open.
pub struct LaneConnection {
    stream: tokio::net::TcpStream,
    open: OpenCount,
}

impl Drop for LaneConnection {
    fn drop(&mut self) {
        self.open.count_out();
    }
}

impl Connected for LaneConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LaneConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LaneConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The lanes of one listener: lane 0's incoming connections for the
/// caller's runtime, and the dealer feeding every lane.
pub struct Lanes {
    /// Lane 0: serve it on the node's runtime.
    pub first: LaneIncoming,
    /// Lanes 1..: one for each serving thread.
    pub others: Vec<LaneIncoming>,
    /// The task accepting and dealing connections; abort it to stop
    /// accepting.
    pub dealer: tokio::task::JoinHandle<()>,
}

/// Starts dealing `listener`'s connections over `1 + threads` lanes (at
/// most [`MAX_SERVING_THREADS`] threads); the dealer runs on the caller's
/// runtime.
pub fn deal_over(listener: tokio::net::TcpListener, threads: usize) -> Lanes {
    let (senders, mut incomings) = lanes(1 + threads.min(MAX_SERVING_THREADS));
    let others = incomings.split_off(1);
    let first = incomings.pop().expect("lane 0 exists");
    Lanes {
        first,
        others,
        dealer: tokio::spawn(deal(listener, senders)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    /// The next connection dealt to `lane`, adopted.
    async fn next_on(lane: &mut LaneIncoming) -> LaneConnection {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), lane.next());
        next.await
            .expect("a connection is dealt in time")
            .expect("the dealer is running")
            .expect("the connection is adopted")
    }

    fn open_counts(lanes: &Lanes) -> Vec<usize> {
        std::iter::once(&lanes.first)
            .chain(&lanes.others)
            .map(|lane| lane.open.get())
            .collect()
    }

    #[tokio::test]
    async fn connections_go_to_the_lane_with_fewest_open_and_count_out_when_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut lanes = deal_over(listener, 2);
        let mut clients = Vec::new();
        let mut dealt = Vec::new();
        for expected_lane in [0, 1, 2, 0] {
            clients.push(tokio::net::TcpStream::connect(address).await.unwrap());
            let lane = match expected_lane {
                0 => &mut lanes.first,
                n => &mut lanes.others[n - 1],
            };
            dealt.push(next_on(lane).await);
        }
        assert_eq!(open_counts(&lanes), [2, 1, 1]);
        // Lane 1's only connection closes: it is the least busy again.
        drop(dealt.remove(1));
        assert_eq!(open_counts(&lanes), [2, 0, 1]);
        clients.push(tokio::net::TcpStream::connect(address).await.unwrap());
        let again = next_on(&mut lanes.others[0]).await;
        assert_eq!(open_counts(&lanes), [2, 1, 1]);
        assert!(
            again.stream.nodelay().unwrap(),
            "Nagle is off on every lane"
        );
        lanes.dealer.abort();
    }

    #[tokio::test]
    async fn a_lone_connection_is_served_on_lane_zero() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut lanes = deal_over(listener, 3);
        for _ in 0..3 {
            let client = tokio::net::TcpStream::connect(address).await.unwrap();
            let dealt = next_on(&mut lanes.first).await;
            assert_eq!(open_counts(&lanes), [1, 0, 0, 0]);
            drop((client, dealt));
            assert_eq!(open_counts(&lanes), [0, 0, 0, 0]);
        }
        lanes.dealer.abort();
    }

    #[tokio::test]
    async fn the_count_of_lanes_is_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lanes = deal_over(listener, MAX_SERVING_THREADS + 5);
        assert_eq!(lanes.others.len(), MAX_SERVING_THREADS);
        lanes.dealer.abort();
    }
}
