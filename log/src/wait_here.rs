//! Waiting for a future on the calling thread, with no runtime: for the
//! blocking appends of callers that own their thread.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Wakes the thread that waits.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread, parking between polls, until it is ready.
/// The future must not need a runtime's timers or I/O driver (channels are
/// fine): nothing here drives them.
pub(crate) fn wait_here<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // A wake between the poll and the park leaves the token set, so
        // park returns at once; a spurious return only polls again.
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_completed_by_another_thread_is_waited_for_here() {
        let (send, receive) = tokio::sync::oneshot::channel();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            send.send(7).expect("receiver waits")
        });
        assert_eq!(wait_here(receive), Ok(7));
        sender.join().expect("sender thread");
    }

    #[test]
    fn a_ready_future_returns_at_once() {
        assert_eq!(wait_here(std::future::ready(3)), 3);
    }
}
