//! The keeper of the state's heads column (see `ordo_kv::heads`): every
//! [`HEADS_TICK`] it writes the rows of the keys replay wrote since the
//! last pass, or rebuilds the column when it went stale, off the async
//! threads. Scans stay right without it (they read what is pending from
//! the data column, or walk the data column while the heads are stale);
//! it keeps them fast.

use crate::node::handles::Snapshots;
use ordo_kv::HeadsPhase;
use std::time::Duration;

/// How often the keeper looks: the most a scan has to make up for is what
/// replay wrote in this long.
pub const HEADS_TICK: Duration = Duration::from_millis(ordo_kv::heads::HEADS_TICK_MS);

/// Starts the keeper of a node that keeps state.
pub fn spawn(snapshots: Snapshots) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HEADS_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !has_work(&snapshots) {
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

/// Whether a pass or a rebuild has anything to do.
fn has_work(snapshots: &Snapshots) -> bool {
    let Some(heads) = snapshots.state.heads() else {
        return false;
    };
    let stats = heads.stats();
    stats.pending_keys > 0 || stats.phase == HeadsPhase::Stale
}
