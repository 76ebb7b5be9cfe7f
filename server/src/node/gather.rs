//! Gathering: how long the batcher of a local log waits for the commits it
//! expects before it appends.
//!
//! On one machine an entry's sync takes tens of microseconds, and clients
//! that wait for their answers before committing again arrive together:
//! the answers to one entry go out at once and the next commits come back
//! spread over the following hundred microseconds or so. A batcher that
//! appends whatever is queued the moment it is free takes the first one or
//! two of them alone, and the rest form the next entry. Under 64 such
//! clients a fifth of the entries carried one transaction and the mean was
//! 11, while every entry costs its own coding, signature nonce, sync and
//! apply: most of the server's CPU per transaction beyond gRPC at that
//! load (docs/BENCHMARKS.md, "Gathering").
//!
//! So the [`Gatherer`] keeps a moving average of the batches it has made
//! and, when fewer than nine tenths of that are queued, waits in short
//! sleeps for the rest, up to a bound ([`DEFAULT_GATHER_WAIT`]). A lone
//! client's batches hold one transaction, which puts the share below one:
//! its commit never waits. A load whose commits stop coming costs at most
//! the bound once, and the average falls as the batches shrink.
//!
//! The wait blocks the batcher's own thread (see
//! [`crate::node::own_thread`]), which has nothing else to run: a tokio
//! timer ticks in milliseconds, a hundred times too coarse.

use std::time::{Duration, Instant};

/// How long a batch waits for the commits its predecessors suggest are
/// coming, unless the node's file says otherwise: about two syncs and a
/// client's turnaround on loopback. Alternated at 16, 64 and 256 clients
/// this was never slower than appending at once (docs/BENCHMARKS.md).
pub const DEFAULT_GATHER_WAIT: Duration = Duration::from_micros(200);

/// The longest gathering wait a node may be told to use: past it, a
/// commit's latency goes mostly to waiting (use `batch_linger_ms` instead).
pub const MAX_GATHER_WAIT: Duration = Duration::from_millis(1);

/// How long each sleep of the wait lasts: short against the wait, long
/// enough that the sleeping thread leaves the core to the commits' senders.
const GATHER_POLL: Duration = Duration::from_micros(10);

/// The timer slack, in nanoseconds, for the thread that gathers: Linux
/// lets a sleep overrun by 50 µs unless a thread asks for less.
const GATHER_TIMER_SLACK_NS: u64 = 1_000;

/// The average is kept in sixteenths of a transaction.
const SCALE: u32 = 16;

/// What one pull from the queue found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// A commit, now in the batch.
    Took,
    /// Nothing queued.
    Empty,
    /// The batch is at a limit (count or bytes): append it now.
    Full,
}

/// Decides how long each batch waits; see the module documentation.
#[derive(Debug)]
pub struct Gatherer {
    wait: Duration,
    /// Moving average of batch sizes, in sixteenths (weight 1/8 per batch).
    typical: u32,
}

impl Gatherer {
    /// A gatherer that waits at most `wait` per batch (zero: never).
    pub fn new(wait: Duration) -> Self {
        Self {
            wait,
            typical: SCALE,
        }
    }

    /// Asks for sleeps as short as [`GATHER_POLL`] on the calling thread;
    /// call it on the thread that will gather. Without it each sleep may
    /// last up to 50 µs longer, which shortens the wait's use but breaks
    /// nothing, so a refusal is only logged.
    pub fn tune_this_thread(&self) {
        if self.wait.is_zero() {
            return;
        }
        let slack = std::num::NonZeroU64::new(GATHER_TIMER_SLACK_NS);
        if let Err(error) = rustix::thread::set_current_timer_slack(slack) {
            tracing::warn!(%error, "could not shorten the batcher's timer slack");
        }
    }

    /// How many transactions a batch should hold before it is appended
    /// without waiting: nine tenths of the typical batch, rounded down.
    pub fn target(&self) -> usize {
        (self.typical as usize * 9) / (SCALE as usize * 10)
    }

    /// Waits for `batch` to reach [`Gatherer::target`], pulling queued
    /// commits with `pull` after each short sleep, until the target, a
    /// full batch or the bound; then counts the batch in the average.
    pub fn gather<T>(&mut self, batch: &mut Vec<T>, mut pull: impl FnMut(&mut Vec<T>) -> Pulled) {
        let (target, started) = (self.target(), Instant::now());
        'waiting: while batch.len() < target && started.elapsed() < self.wait {
            std::thread::sleep(GATHER_POLL);
            loop {
                match pull(batch) {
                    Pulled::Took => {}
                    Pulled::Empty => continue 'waiting,
                    Pulled::Full => break 'waiting,
                }
            }
        }
        self.remember(batch.len());
    }

    fn remember(&mut self, size: usize) {
        let size = u32::try_from(size).unwrap_or(u32::MAX / SCALE);
        let added = size.saturating_mul(SCALE) / 8;
        self.typical = self.typical - self.typical / 8 + added;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gatherer whose batches have held `size` transactions for a while.
    fn used_to(size: usize, wait: Duration) -> Gatherer {
        let mut gatherer = Gatherer::new(wait);
        for _ in 0..64 {
            gatherer.remember(size);
        }
        gatherer
    }

    #[test]
    fn a_lone_clients_commit_never_waits() {
        let mut gatherer = used_to(1, DEFAULT_GATHER_WAIT);
        assert_eq!(gatherer.target(), 0);
        let mut batch = vec![()];
        gatherer.gather(&mut batch, |_| panic!("a lone commit pulled for more"));
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn two_clients_whose_commits_alternate_never_wait() {
        let mut gatherer = Gatherer::new(DEFAULT_GATHER_WAIT);
        for size in [1, 2].repeat(32) {
            gatherer.remember(size);
        }
        assert!(gatherer.target() <= 1, "target {}", gatherer.target());
    }

    #[test]
    fn after_large_batches_a_small_one_waits_for_nine_tenths_of_them() {
        let mut gatherer = used_to(20, Duration::from_secs(60));
        assert_eq!(gatherer.target(), 18);
        let (mut batch, mut pulls) = (vec![0], 0);
        gatherer.gather(&mut batch, |batch| {
            pulls += 1;
            match pulls % 2 {
                0 => Pulled::Empty,
                _ => {
                    batch.push(pulls);
                    Pulled::Took
                }
            }
        });
        assert_eq!(batch.len(), 18, "stops at the target, not at the bound");
    }

    #[test]
    fn the_wait_ends_at_its_bound_when_nothing_comes() {
        let wait = Duration::from_millis(2);
        let mut gatherer = used_to(20, wait);
        let (mut batch, started) = (vec![()], Instant::now());
        gatherer.gather(&mut batch, |_| Pulled::Empty);
        assert!(started.elapsed() >= wait);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_full_batch_is_appended_without_waiting_further() {
        let mut gatherer = used_to(20, Duration::from_secs(60));
        let (mut batch, mut pulls) = (vec![()], 0);
        gatherer.gather(&mut batch, |_| {
            pulls += 1;
            Pulled::Full
        });
        assert_eq!(pulls, 1);
    }

    #[test]
    fn a_zero_wait_never_pulls() {
        let mut gatherer = used_to(20, Duration::ZERO);
        let mut batch = vec![()];
        gatherer.gather(&mut batch, |_| panic!("pulled with gathering off"));
    }

    #[test]
    fn the_average_follows_the_batches_down() {
        let mut gatherer = used_to(64, DEFAULT_GATHER_WAIT);
        assert!(gatherer.target() >= 50);
        for _ in 0..64 {
            gatherer.remember(1);
        }
        assert!(gatherer.target() <= 1, "target {}", gatherer.target());
    }
}
