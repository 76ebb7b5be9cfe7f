//! The automatic compactor: keeps the log's retention policy by proposing
//! compactions through the log.
//!
//! Replay enforces the policy's `keep_versions` itself, but it reads no
//! clock, so `keep_secs` is kept here: every [`COMPACTOR_TICK`] the
//! compactor notes which version was applied when (on the monotonic
//! clock), and proposes `Compact { to }` with `to` the newest version that
//! both halves of the policy let go: at most `applied - keep_versions`, and
//! applied at least `keep_secs` ago by this node's own observation. A node
//! that just started has seen nothing that old, so it compacts nothing for
//! `keep_secs`: it errs on the side of keeping.
//!
//! Every gateway runs one (a compaction needs admin of the log or the
//! gateway role). Two gateways proposing the same step is harmless: replay
//! commits the first and refuses the second (`retention_refused`).

use crate::node::handles::{Commits, Snapshots};
use ordo_txn::retention::{KEEP_ALL_VERSIONS, Policy, Retention};
use ordo_txn::{AclOp, Outcome, RetentionOp};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the compactor looks: a compaction lags the policy by at most
/// this much.
pub const COMPACTOR_TICK: Duration = Duration::from_secs(5);

/// Most (time, version) observations kept: enough to find the version of
/// `keep_secs` ago to within 1/256 of `keep_secs`, for any `keep_secs`.
pub const MAX_SAMPLES: usize = 512;

/// Fewest versions one compaction moves the horizon. A compaction is
/// itself a version: a step of one would make the next one due at once,
/// and an idle log would compact forever.
pub const MIN_COMPACTION_STEP: u64 = 64;

/// When this node saw which versions applied, oldest first.
#[derive(Debug, Default)]
pub struct Samples {
    seen: VecDeque<(Instant, u64)>,
}

impl Samples {
    /// Notes that `version` was applied at `now`, keeping at most
    /// [`MAX_SAMPLES`] spread over `keep` and one sample older than `keep`.
    pub fn note(&mut self, now: Instant, version: u64, keep: Duration) {
        let spacing = keep / (MAX_SAMPLES as u32 / 2);
        if let Some(&(last, _)) = self.seen.back()
            && now.saturating_duration_since(last) < spacing
        {
            return;
        }
        self.seen.push_back((now, version));
        // Of the samples older than `keep`, only the newest is ever needed.
        while self.seen.len() > 1 && self.seen[1].0 + keep <= now {
            self.seen.pop_front();
        }
        if self.seen.len() > MAX_SAMPLES {
            self.seen.pop_front();
        }
    }

    /// The newest version seen applied at least `keep` before `now`.
    pub fn applied_before(&self, now: Instant, keep: Duration) -> Option<u64> {
        self.seen
            .iter()
            .rev()
            .find(|(at, _)| *at + keep <= now)
            .map(|&(_, version)| version)
    }
}

/// The horizon the policy lets go to now, if it is worth a compaction.
pub fn due(state: &Retention, applied: u64, samples: &Samples, now: Instant) -> Option<u64> {
    let Policy {
        keep_versions,
        keep_secs,
    } = state.policy;
    if keep_versions == KEEP_ALL_VERSIONS {
        return None;
    }
    let by_time = samples.applied_before(now, Duration::from_secs(keep_secs))?;
    let to = state.policy.floor(applied).min(by_time);
    (to >= state.horizon.saturating_add(MIN_COMPACTION_STEP)).then_some(to)
}

/// Deletes swept per [`COMPACTOR_TICK`] at most: a bound on the work one
/// tick adds beside replay (64 batches of `MAX_SWEEP_BATCH`).
pub const MAX_SWEPT_PER_TICK: usize = 64 * ordo_kv::mvcc::MAX_SWEEP_BATCH;

/// Starts the sweeper of a node that keeps state: every tick it removes
/// what the deletes the horizon passed shadow (`MvccStore::sweep_deletes`),
/// off the async threads.
pub fn spawn_sweeper(snapshots: Snapshots) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(COMPACTOR_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let state = snapshots.state.clone();
            let swept = tokio::task::spawn_blocking(move || sweep(&state)).await;
            if let Ok(Err(e)) = swept {
                tracing::warn!(error = %e, "sweeping deletes below the horizon");
            }
        }
    })
}

/// Sweeps until nothing is due or [`MAX_SWEPT_PER_TICK`] went.
fn sweep<E: ordo_kv::Engine>(state: &ordo_kv::MvccStore<E>) -> Result<usize, ordo_kv::MvccError> {
    let mut swept = 0;
    while swept < MAX_SWEPT_PER_TICK {
        match state.sweep_deletes(ordo_kv::mvcc::MAX_SWEEP_BATCH)? {
            0 => break,
            n => swept += n,
        }
    }
    Ok(swept)
}

/// Starts the compactor of a gateway node.
pub fn spawn((snapshots, commits): (Snapshots, Commits)) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(snapshots, commits))
}

async fn run(snapshots: Snapshots, commits: Commits) {
    let mut samples = Samples::default();
    let mut ticks = tokio::time::interval(COMPACTOR_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = match Retention::load(snapshots.state.engine()) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "compactor: reading the retention state");
                continue;
            }
        };
        let (now, applied) = (Instant::now(), snapshots.latest_version());
        samples.note(now, applied, Duration::from_secs(state.policy.keep_secs));
        let Some(to) = due(&state, applied, &samples, now) else {
            continue;
        };
        if !propose(&commits, to, applied).await {
            return;
        }
    }
}

/// Proposes a compaction to `to`; false when this node may not compact
/// (it is no gateway of this log), which stops the compactor.
async fn propose(commits: &Commits, to: u64, applied: u64) -> bool {
    let tx = ordo_txn::Transaction {
        acl: vec![AclOp::Retention(RetentionOp::Compact { to })],
        ..ordo_txn::Transaction::new(ordo_client::txn::fresh_id(), applied)
    };
    match commits.commit_signed(tx, &commits.node.key).await {
        Ok(decided) => match decided.outcome {
            Outcome::Committed { .. } => {
                tracing::info!(
                    horizon = to,
                    "compacted: reads below version {to} are refused from now on"
                );
                true
            }
            Outcome::PermissionDenied { .. } => {
                tracing::warn!("compactor stopped: this node holds no gateway role on the log");
                false
            }
            other => {
                tracing::info!(outcome = %other, "compaction to {to} not applied");
                true
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "compactor: proposing a compaction");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(keep_versions: u64, keep_secs: u64, horizon: u64) -> Retention {
        Retention {
            policy: Policy {
                keep_versions,
                keep_secs,
            },
            horizon,
        }
    }

    #[test]
    fn nothing_is_due_before_the_node_saw_keep_secs_pass() {
        let start = Instant::now();
        let mut samples = Samples::default();
        let keep = Duration::from_secs(60);
        samples.note(start, 1_000, keep);
        let policy = state(10, 60, 0);
        assert_eq!(
            due(&policy, 5_000, &samples, start + Duration::from_secs(59)),
            None
        );
        samples.note(start + Duration::from_secs(30), 3_000, keep);
        let later = start + Duration::from_secs(95);
        assert_eq!(
            due(&policy, 5_000, &samples, later),
            Some(3_000),
            "applied 65 s ago"
        );
    }

    #[test]
    fn the_version_floor_and_the_step_bound_what_is_due() {
        let now = Instant::now();
        let mut samples = Samples::default();
        samples.note(now, 10_000, Duration::ZERO);
        assert_eq!(due(&state(100, 0, 0), 10_000, &samples, now), Some(9_900));
        let step = MIN_COMPACTION_STEP;
        assert_eq!(
            due(&state(100, 0, 9_900 - step + 1), 10_000, &samples, now),
            None
        );
        let all = state(KEEP_ALL_VERSIONS, 0, 0);
        assert_eq!(due(&all, 10_000, &samples, now), None);
    }

    #[test]
    fn samples_stay_bounded_and_keep_one_older_than_the_window() {
        let start = Instant::now();
        let keep = Duration::from_secs(512);
        let mut samples = Samples::default();
        for s in 0..5_000u64 {
            samples.note(start + Duration::from_secs(s), s, keep);
        }
        assert!(samples.seen.len() <= MAX_SAMPLES);
        let now = start + Duration::from_secs(4_999);
        let found = samples
            .applied_before(now, keep)
            .expect("an old enough sample");
        assert!((4_480..=4_487).contains(&found), "{found}");
    }
}
