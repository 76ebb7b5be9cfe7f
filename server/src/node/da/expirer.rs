//! The gateway's expirer: blob records whose expiry this node's clock has
//! reached are expired through the log (`DaOp::Expire`, signed with the
//! node's key), so every replica drops them at the same position. Replay
//! reads no clock: the time is this gateway's statement, which replay
//! checks against the record's expiry.

use crate::node::handles::{Commits, Snapshots};
use ordo_txn::attest::SYSTEM_STREAM;
use ordo_txn::da::{BLOB_PREFIX, BlobRecord, DaOp, parse_record_key};
use ordo_txn::{AclOp, Outcome, Transaction};
use std::time::Duration;

/// How often the expirer looks: a record outlives its expiry by about
/// this much at most (when fewer than [`MAX_SCANNED_PER_TICK`] records
/// exist).
pub const EXPIRER_TICK: Duration = Duration::from_secs(5);

/// Records looked at per tick: a bound on the work of one tick; the next
/// tick goes on from where this one stopped.
pub const MAX_SCANNED_PER_TICK: usize = 4096;

/// Starts the expirer of a gateway node.
pub fn spawn((snapshots, commits): (Snapshots, Commits)) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EXPIRER_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursor = BLOB_PREFIX.to_vec();
        loop {
            ticks.tick().await;
            match expire_due(&snapshots, &commits, &cursor).await {
                Ok(Some(next)) => cursor = next,
                Ok(None) => cursor = BLOB_PREFIX.to_vec(),
                Err(Stop) => return,
            }
        }
    })
}

/// The expirer stops: this node may not expire records.
struct Stop;

/// Expires the due records among those from `cursor` on; returns where
/// the next tick goes on (None: from the start).
async fn expire_due(
    snapshots: &Snapshots,
    commits: &Commits,
    cursor: &[u8],
) -> Result<Option<Vec<u8>>, Stop> {
    let at = snapshots.latest_version();
    let end = prefix_end(BLOB_PREFIX);
    let page = match snapshots.state.scan_for_upkeep(
        &SYSTEM_STREAM,
        cursor,
        Some(&end),
        at,
        MAX_SCANNED_PER_TICK,
        usize::MAX,
    ) {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, "expirer: reading blob records");
            return Ok(None);
        }
    };
    let now = super::unix_secs();
    for row in &page.rows {
        let (Some((id, owner)), Ok(record)) =
            (parse_record_key(&row.key), BlobRecord::decode(&row.value))
        else {
            continue;
        };
        if record.expires_at <= now && !expire(commits, id, owner, now, at).await {
            return Err(Stop);
        }
    }
    Ok(page.resume_from)
}

/// Proposes the expiry of `owner`'s record of `id`; false when this node
/// holds no gateway role.
async fn expire(
    commits: &Commits,
    id: [u8; 32],
    owner: ordo_txn::Address,
    now: u64,
    at: u64,
) -> bool {
    let tx = Transaction {
        acl: vec![AclOp::Da(DaOp::Expire { id, owner, now })],
        ..Transaction::new(ordo_client::txn::fresh_id(), at)
    };
    match commits.commit_signed(tx, &commits.node.key).await {
        Ok(decided) => match decided.outcome {
            Outcome::Committed { .. } => {
                tracing::info!(blob = %ordo_log::hex(&id), "expired a blob record");
                true
            }
            Outcome::PermissionDenied { .. } => {
                tracing::warn!("expirer stopped: this node holds no gateway role on the log");
                false
            }
            other => {
                tracing::info!(outcome = %other, "blob expiry not applied");
                true
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "expirer: proposing an expiry");
            true
        }
    }
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}
