//! The one thread that writes a durable log, and the queue that feeds it:
//! what the file-backed sequencer and the RocksDB log share.

use super::api::SequencerError;
use crate::limits::APPEND_QUEUE_CAPACITY;
use std::sync::Mutex;
use tokio::sync::{mpsc, watch};

/// A writer thread fed by a bounded queue ([`APPEND_QUEUE_CAPACITY`]);
/// appenders beyond it wait for a place.
pub(crate) struct WriterThread<R> {
    queue: Mutex<Option<mpsc::Sender<R>>>,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Send + 'static> WriterThread<R> {
    /// Starts thread `name` running `run` over the queue's receiving end.
    pub(crate) fn spawn(
        name: &str,
        run: impl FnOnce(mpsc::Receiver<R>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (queue, requests) = mpsc::channel(APPEND_QUEUE_CAPACITY);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(requests))?;
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Queues a request; `Closed` once [`WriterThread::close`] ran.
    pub(crate) async fn send(&self, request: R) -> Result<(), SequencerError> {
        let queue = lock(&self.queue).clone().ok_or(SequencerError::Closed)?;
        queue
            .send(request)
            .await
            .map_err(|_| SequencerError::Closed)
    }

    /// Stops taking requests, lets the thread finish what it has, and waits
    /// for it.
    pub(crate) fn close(&self) {
        lock(&self.queue).take();
        if let Some(handle) = lock(&self.handle).take() {
            // The writer exits only by finishing its loop; a panic there is
            // a bug already reported on stderr.
            let _ = handle.join();
        }
    }
}

/// Waits until `tail` is beyond `seq` and returns it (the shared body of
/// `Sequencer::wait_beyond`).
pub(crate) async fn wait_beyond(
    tail: &watch::Sender<u64>,
    seq: u64,
) -> Result<u64, SequencerError> {
    let mut tail = tail.subscribe();
    let reached = tail
        .wait_for(|t| *t > seq)
        .await
        .map_err(|_| SequencerError::Closed)?;
    Ok(*reached)
}
