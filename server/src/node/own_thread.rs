//! A future that runs on a thread of its own.
//!
//! The batcher paces the log: from the moment one entry is durable until
//! it hands the log the next, the disk idles and every queued commit
//! waits. It is woken by the log's writer thread, from outside the tokio
//! runtime, and the runtime puts a task woken from outside in its shared
//! queue, which a worker serves only after its own local queue. Under 16
//! SQL clients the log idled 360-730 µs on average between writes waiting
//! for the batcher task, with few gaps under 100 µs; on a thread of its
//! own the mean gap fell to 170-300 µs, most of the gaps under 100 µs
//! while commits were waiting (docs/BENCHMARKS.md, "Fast writes, fourth
//! round").
//!
//! The replica's follower is woken the same way, and a thread of its own
//! did not shorten its wake-up (a mean of 110-230 µs after the tail moved,
//! either way, in the same runs). On a local log it now runs as a task on
//! the batcher's thread instead (`Committer::start`'s companion): the
//! append that moves the tail wakes it on the same thread, with no
//! wake-up to wait for.

use tokio::sync::oneshot;

/// A future running on its own thread, on a single-threaded runtime (so
/// its `spawn_blocking` calls and timers work as on the node's runtime).
/// Stopping (or dropping) it drops the future at its next await and joins
/// the thread.
pub struct OwnThread {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnThread {
    /// Starts `work` on a new thread named `name`.
    pub fn spawn(
        name: &'static str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        () = work => {}
                    }
                });
            })?;
        Ok(Self {
            name,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the work at its next await (work in flight is abandoned, as a
    /// task's would be when aborted) and waits for the thread to end.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    /// Waits for the work to end on its own.
    pub fn join(mut self) -> std::thread::Result<()> {
        match self.thread.take() {
            Some(thread) => thread.join(),
            None => Ok(()),
        }
    }

    fn stop_and_join(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The stop signal wakes the runtime from any await, so the join
            // waits at most for the synchronous step in progress. A panic
            // there was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for OwnThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnThread")
            .field("name", &self.name)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_ends_work_that_would_wait_forever() {
        let (_never, waits) = oneshot::channel::<()>();
        let (reached, reached_here) = std::sync::mpsc::channel();
        let thread = OwnThread::spawn("test-waits", async move {
            reached.send(()).expect("the test listens");
            let _ = waits.await;
        })
        .expect("spawns");
        reached_here.recv().expect("the work started");
        thread.stop();
    }

    #[test]
    fn finished_work_can_be_joined_and_timers_and_blocking_calls_work() {
        let (done, done_here) = std::sync::mpsc::channel();
        let thread = OwnThread::spawn("test-finishes", async move {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let answer = tokio::task::spawn_blocking(|| 42)
                .await
                .expect("blocking call");
            done.send(answer).expect("the test listens");
        })
        .expect("spawns");
        thread.join().expect("no panic");
        assert_eq!(done_here.recv().expect("sent"), 42);
    }
}
