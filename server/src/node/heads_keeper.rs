//! The keeper of the state's heads column (see `ordo_kv::heads`): every
//! [`HEADS_TICK`] it writes the rows of the keys replay wrote since the
//! last pass, or rebuilds the column when it went stale, off the async
//! threads. Scans stay right without it (they read what is pending from
//! the data column, or walk the data column while the heads are stale);
//! it keeps them fast.
//!
//! The heads cost a row per key written per pass, about a tenth of a
//! put-only workload's throughput on two cores, and only scans gain from
//! them. So they are kept only while scans ask for them: a node nobody
//! scanned for [`HEADS_IDLE`] retires them (no notes, no passes), and the
//! next scan walks the data column and brings them back (a rebuild, one
//! seek per key, on the next tick).

use crate::node::handles::Snapshots;
use ordo_kv::HeadsPhase;
use std::time::{Duration, Instant};

/// How often the keeper looks: the most a scan has to make up for is what
/// replay wrote in this long.
pub const HEADS_TICK: Duration = Duration::from_millis(ordo_kv::heads::HEADS_TICK_MS);

/// How long the heads are kept without a scan asking for them: long
/// enough that a client scanning every few minutes never meets them
/// retired, short enough that a node that only takes writes stops paying
/// for them soon.
pub const HEADS_IDLE: Duration = Duration::from_secs(300);

/// When scans last asked for the heads.
#[derive(Debug, Default)]
struct Demand {
    seen: u64,
    last: Option<Instant>,
}

impl Demand {
    /// Whether the heads are wanted at `now`, given the count of scans
    /// that asked for them so far.
    fn wanted(&mut self, scans: u64, now: Instant) -> bool {
        if scans != self.seen {
            self.seen = scans;
            self.last = Some(now);
        }
        self.last
            .is_some_and(|last| now.duration_since(last) < HEADS_IDLE)
    }
}

/// Starts the keeper of a node that keeps state.
pub fn spawn(snapshots: Snapshots) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HEADS_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut demand = Demand::default();
        loop {
            ticks.tick().await;
            let Some(heads) = snapshots.state.heads() else {
                return;
            };
            if !demand.wanted(heads.scans(), Instant::now()) {
                heads.retire();
                continue;
            }
            let stats = heads.stats();
            if stats.pending_keys == 0 && stats.phase != HeadsPhase::Stale {
                continue;
            }
            let state = snapshots.state.clone();
            let kept = tokio::task::spawn_blocking(move || state.maintain_heads()).await;
            if let Ok(Err(e)) = kept {
                tracing::warn!(error = %e, "keeping the heads column");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heads_are_wanted_from_a_scan_until_heads_idle_passes_without_one() {
        let mut demand = Demand::default();
        let start = Instant::now();
        assert!(!demand.wanted(0, start), "no scan yet");
        assert!(demand.wanted(1, start + HEADS_TICK));
        let quiet = start + HEADS_TICK + HEADS_IDLE - HEADS_TICK;
        assert!(demand.wanted(1, quiet), "still within the idle time");
        assert!(!demand.wanted(1, start + HEADS_TICK + HEADS_IDLE));
        assert!(demand.wanted(2, start + HEADS_IDLE * 3), "a new scan");
    }
}
