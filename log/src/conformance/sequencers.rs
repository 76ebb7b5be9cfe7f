//! The conformance suite every [`Sequencer`] must pass: ordering, bounded
//! reads, durability across a restart, waiting, concurrent appenders, a
//! torn tail and a failed write.
//!
//! A backend runs it through a [`SequencerHarness`], which knows how to
//! open one over durable state, stop it, and damage it the ways a crash or
//! a failing disk would. [`MemHarness`] is the harness of [`MemSequencer`];
//! `log/tests/sequencer_conformance.rs` holds the file-backed one.

use crate::sequencer::{MemLog, MemSequencer};
use crate::{EntryDescriptor, LogError, Sequencer, SequencerError, stress};
use std::sync::Arc;
use std::time::Duration;

/// How long a check waits for something the sequencer promised (a commit,
/// a wake-up) before it calls the promise broken.
pub const PROMISE_TIMEOUT: Duration = Duration::from_secs(10);

/// Appending tasks in the concurrency check, and appends per task.
pub const CONCURRENT_APPENDERS: u64 = 16;
/// See [`CONCURRENT_APPENDERS`].
pub const APPENDS_PER_APPENDER: u64 = 10;

/// How the suite drives one backend.
#[async_trait::async_trait]
pub trait SequencerHarness: Send {
    /// Opens a sequencer over the harness's durable state: empty the first
    /// time, whatever survived after [`SequencerHarness::stop`].
    async fn open(&mut self) -> Arc<dyn Sequencer>;

    /// Stops the open sequencer as a restart would, so that the next
    /// `open` takes its state over.
    async fn stop(&mut self, sequencer: Arc<dyn Sequencer>);

    /// With no sequencer open: leaves an append cut short at the end of the
    /// durable state, as a crash in the middle of a write would.
    fn tear_tail(&mut self);

    /// With a sequencer open: makes its next durable write fail.
    fn fail_next_write(&mut self);

    /// `entry` as the sequencer records it. The identity, unless the
    /// backend authenticates submitters itself (a chain records the
    /// transaction's sender, whatever the descriptor names).
    fn recorded(&self, entry: EntryDescriptor) -> EntryDescriptor {
        entry
    }
}

/// Runs every check, each on a fresh harness made by `make`.
pub async fn sequencer<H: SequencerHarness>(make: impl Fn() -> H) {
    appends_get_consecutive_seqs_and_read_back(make()).await;
    invalid_descriptors_are_refused_before_ordering(make()).await;
    acknowledged_headers_survive_a_restart(make()).await;
    wait_beyond_wakes_when_the_entry_commits(make()).await;
    concurrent_appenders_get_distinct_gap_free_seqs(make()).await;
    a_torn_tail_is_dropped_and_appends_continue(make()).await;
    a_failed_write_stops_appends_until_reopened(make()).await;
}

/// The `i`-th descriptor of check number `check`.
fn descriptor(check: u64, i: u64) -> EntryDescriptor {
    stress::descriptor(check, 0, i)
}

async fn append(sequencer: &dyn Sequencer, entry: EntryDescriptor) -> u64 {
    let appended = tokio::time::timeout(PROMISE_TIMEOUT, sequencer.append(entry));
    let header = appended.await.expect("append must return").expect("append");
    header.seq
}

/// Seqs are 0, 1, 2, ... in append order; reads return what was appended,
/// at most `max`, and nothing at or past the tail.
pub async fn appends_get_consecutive_seqs_and_read_back(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    for i in 0..10 {
        assert_eq!(
            append(&*sequencer, descriptor(1, i)).await,
            i,
            "seqs must be consecutive from 0"
        );
    }
    assert_eq!(sequencer.tail(), 10, "the tail must count the appends");
    let headers = sequencer.read(3, 4).await.expect("read");
    let seqs: Vec<u64> = headers.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6], "read(3, 4) must return seqs 3 to 6");
    assert_eq!(
        headers[0].entry,
        harness.recorded(descriptor(1, 3)),
        "a read must return the appended descriptor"
    );
    let last = sequencer.read(9, 1).await.expect("read");
    assert_eq!(
        (last.len(), last[0].seq, &last[0].entry),
        (1, 9, &harness.recorded(descriptor(1, 9))),
        "read(9, 1) must return the last header alone (a follower at the tail reads so)"
    );
    assert!(
        sequencer.read(10, 5).await.expect("read").is_empty(),
        "nothing at the tail"
    );
    assert!(
        sequencer.read(10, 1).await.expect("read").is_empty(),
        "nothing at the tail, one at a time"
    );
    assert!(
        sequencer.read(u64::MAX, 5).await.expect("read").is_empty(),
        "nothing past the tail"
    );
    harness.stop(sequencer).await;
}

/// A descriptor over a limit is refused with a typed error and takes no seq.
pub async fn invalid_descriptors_are_refused_before_ordering(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    let mut bad = descriptor(2, 0);
    bad.tags = vec![[0; 32]; crate::limits::MAX_TAGS + 1];
    let refused = sequencer.append(bad).await;
    assert!(
        matches!(
            refused,
            Err(SequencerError::Invalid(LogError::TooManyTags { .. }))
        ),
        "too many tags must be refused as invalid: {refused:?}"
    );
    assert_eq!(
        sequencer.tail(),
        0,
        "a refused descriptor must not be ordered"
    );
    assert_eq!(
        append(&*sequencer, descriptor(2, 1)).await,
        0,
        "the next append gets seq 0"
    );
    harness.stop(sequencer).await;
}

/// Whatever `append` acknowledged is there, unchanged, after a restart.
pub async fn acknowledged_headers_survive_a_restart(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    for i in 0..5 {
        append(&*sequencer, descriptor(3, i)).await;
    }
    harness.stop(sequencer).await;
    let sequencer = harness.open().await;
    assert_eq!(
        sequencer.tail(),
        5,
        "acknowledged headers must survive a restart"
    );
    let headers = sequencer.read(0, 100).await.expect("read");
    let entries: Vec<_> = headers.into_iter().map(|h| h.entry).collect();
    let appended: Vec<_> = (0..5).map(|i| harness.recorded(descriptor(3, i))).collect();
    assert_eq!(
        entries, appended,
        "headers must read back unchanged after a restart"
    );
    assert_eq!(
        append(&*sequencer, descriptor(3, 5)).await,
        5,
        "appends continue at the tail"
    );
    harness.stop(sequencer).await;
}

/// `wait_beyond(seq)` returns once `seq` is committed, and at once if it is.
pub async fn wait_beyond_wakes_when_the_entry_commits(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    let waiter = {
        let sequencer = sequencer.clone();
        tokio::spawn(async move { sequencer.wait_beyond(2).await })
    };
    for i in 0..3 {
        append(&*sequencer, descriptor(4, i)).await;
    }
    let woken = tokio::time::timeout(PROMISE_TIMEOUT, waiter).await;
    let tail = woken.expect("wait_beyond must wake after the commit");
    assert!(
        tail.expect("task").expect("wait") >= 3,
        "the tail must be beyond seq 2"
    );
    let at_once = tokio::time::timeout(PROMISE_TIMEOUT, sequencer.wait_beyond(0)).await;
    assert_eq!(
        at_once
            .expect("an already committed seq must return")
            .expect("wait"),
        3
    );
    harness.stop(sequencer).await;
}

/// Concurrent appenders each get a distinct seq, the seqs have no gaps, and
/// each seq holds what its appender sent.
pub async fn concurrent_appenders_get_distinct_gap_free_seqs(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    let tasks: Vec<_> = (0..CONCURRENT_APPENDERS)
        .map(|task| {
            let sequencer = sequencer.clone();
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for i in 0..APPENDS_PER_APPENDER {
                    let entry = stress::descriptor(5, task, i);
                    sent.push((append(&*sequencer, entry.clone()).await, entry));
                }
                sent
            })
        })
        .collect();
    let mut sent = Vec::new();
    for task in tasks {
        sent.extend(task.await.expect("appender task"));
    }
    sent.sort_by_key(|(seq, _)| *seq);
    let total = CONCURRENT_APPENDERS * APPENDS_PER_APPENDER;
    let seqs: Vec<u64> = sent.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (0..total).collect::<Vec<_>>(),
        "seqs must be distinct and gap-free"
    );
    let stored = sequencer.read(0, total as usize).await.expect("read");
    for ((seq, entry), header) in sent.iter().zip(&stored) {
        assert_eq!(
            header.entry,
            harness.recorded(entry.clone()),
            "seq {seq} must hold what its appender sent"
        );
    }
    harness.stop(sequencer).await;
}

/// An append cut short by a crash was never acknowledged: the next open
/// drops it, and appends continue at the acknowledged tail.
pub async fn a_torn_tail_is_dropped_and_appends_continue(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    for i in 0..3 {
        append(&*sequencer, descriptor(6, i)).await;
    }
    harness.stop(sequencer).await;
    harness.tear_tail();
    let sequencer = harness.open().await;
    assert_eq!(
        sequencer.tail(),
        3,
        "a torn tail must be dropped, the rest kept"
    );
    assert_eq!(
        append(&*sequencer, descriptor(6, 3)).await,
        3,
        "appends continue after a torn tail"
    );
    harness.stop(sequencer).await;
}

/// After a failed write the sequencer refuses appends (the state of its
/// storage is unknown) until reopened; reopening keeps every acknowledged
/// header, and the failed append is either wholly there or absent.
pub async fn a_failed_write_stops_appends_until_reopened(mut harness: impl SequencerHarness) {
    let sequencer = harness.open().await;
    for i in 0..2 {
        append(&*sequencer, descriptor(7, i)).await;
    }
    harness.fail_next_write();
    let failed = sequencer.append(descriptor(7, 2)).await;
    assert!(
        matches!(failed, Err(SequencerError::Poisoned(_))),
        "a failed write must be reported: {failed:?}"
    );
    let after = sequencer.append(descriptor(7, 3)).await;
    assert!(
        matches!(after, Err(SequencerError::Poisoned(_))),
        "appends after a failed write must be refused until reopened: {after:?}"
    );
    harness.stop(sequencer).await;
    let sequencer = harness.open().await;
    let tail = sequencer.tail();
    assert!(
        (2..=3).contains(&tail),
        "reopening must keep the acknowledged headers: tail {tail}"
    );
    let headers = sequencer.read(0, 3).await.expect("read");
    assert_eq!(
        headers[0].entry,
        harness.recorded(descriptor(7, 0)),
        "acknowledged headers must be unchanged"
    );
    assert_eq!(
        headers[1].entry,
        harness.recorded(descriptor(7, 1)),
        "acknowledged headers must be unchanged"
    );
    if tail == 3 {
        assert_eq!(
            headers[2].entry,
            harness.recorded(descriptor(7, 2)),
            "a failed append is whole or absent"
        );
    }
    assert_eq!(
        append(&*sequencer, descriptor(7, 4)).await,
        tail,
        "a reopened sequencer appends again"
    );
    harness.stop(sequencer).await;
}

/// The harness of [`MemSequencer`]: its durable state is one [`MemLog`].
#[derive(Debug, Default)]
pub struct MemHarness {
    log: Arc<MemLog>,
    open: Option<Arc<MemSequencer>>,
}

#[async_trait::async_trait]
impl SequencerHarness for MemHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        let sequencer = Arc::new(MemSequencer::open(self.log.clone()).expect("opens"));
        self.open = Some(sequencer.clone());
        sequencer
    }

    async fn stop(&mut self, _sequencer: Arc<dyn Sequencer>) {
        if let Some(sequencer) = self.open.take() {
            sequencer.close();
        }
    }

    fn tear_tail(&mut self) {
        self.log.tear_tail(stress::descriptor(u64::MAX, 0, 0));
    }

    fn fail_next_write(&mut self) {
        self.log.fail_next_write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_memory_sequencer_passes() {
        sequencer(MemHarness::default).await;
    }

    /// A backend that forgets everything when it restarts.
    #[derive(Default)]
    struct Amnesiac(MemHarness);

    #[async_trait::async_trait]
    impl SequencerHarness for Amnesiac {
        async fn open(&mut self) -> Arc<dyn Sequencer> {
            self.0.log = MemLog::new();
            self.0.open().await
        }
        async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
            self.0.stop(sequencer).await
        }
        fn tear_tail(&mut self) {
            self.0.tear_tail()
        }
        fn fail_next_write(&mut self) {
            self.0.fail_next_write()
        }
    }

    #[tokio::test]
    #[should_panic(expected = "acknowledged headers must survive a restart")]
    async fn a_sequencer_that_forgets_on_restart_fails_the_suite() {
        sequencer(Amnesiac::default).await;
    }

    /// A backend whose storage errors go unnoticed.
    #[derive(Default)]
    struct DeafToFailures(MemHarness);

    #[async_trait::async_trait]
    impl SequencerHarness for DeafToFailures {
        async fn open(&mut self) -> Arc<dyn Sequencer> {
            self.0.open().await
        }
        async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
            self.0.stop(sequencer).await
        }
        fn tear_tail(&mut self) {
            self.0.tear_tail()
        }
        fn fail_next_write(&mut self) {}
    }

    #[tokio::test]
    #[should_panic(expected = "a failed write must be reported")]
    async fn a_sequencer_that_ignores_a_failed_write_fails_the_suite() {
        sequencer(DeafToFailures::default).await;
    }
}
