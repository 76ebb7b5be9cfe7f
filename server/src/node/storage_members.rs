//! The storage membership recorded in the log.
//!
//! Keys `cluster/storage/ID` (the id as 20 decimal digits, so keys sort by
//! id) in the log's system stream, each valued with the member's peer
//! address. The log's admin writes them with ordinary transactions (`ordo
//! cluster storage add|remove`): replay already lets only the system
//! stream's admins and writers write there, and every replica reads the
//! same membership at the same version. No directory service, and no
//! protocol beyond the log.
//!
//! Gateways and replicas place shards by the membership their replica has
//! applied, checked each time it applies entries (at most every
//! [`MEMBERSHIP_CHECK_INTERVAL`]); until the log records one, the members
//! their file names are used. A gateway whose replica trails a change by a
//! few entries places them by the membership before it; readers of such
//! entries, and of every entry written before a change, find the shards
//! that are not at their new homes through the spares (every other
//! member), and repair copies them home.

use crate::node::handles::Snapshots;
use crate::node::storage_set::StorageSet;
use ordo_txn::attest::SYSTEM_STREAM;
use std::collections::BTreeMap;
use std::time::Duration;

pub use ordo_txn::attest::{
    STORAGE_MEMBER_PREFIX as STORAGE_PREFIX, storage_member_key as storage_key,
};

/// Most recorded storage members read (placement's own limit).
pub const MAX_RECORDED_STORAGE_MEMBERS: usize = ordo_log::placement::MAX_STORAGE_MEMBERS;

/// Longest a replica's applied entries go unchecked for a membership change.
pub const MEMBERSHIP_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// The member id a storage key names, if it is one.
fn member_of(key: &[u8]) -> Option<u64> {
    let digits = key.strip_prefix(STORAGE_PREFIX)?;
    if digits.len() != 20 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The end of the storage keys' range: the prefix with its last byte
/// raised.
fn prefix_end() -> Vec<u8> {
    let mut end = STORAGE_PREFIX.to_vec();
    let last = end.len() - 1;
    end[last] += 1;
    end
}

/// The storage members the state records at `version` (empty: none
/// recorded). Keys or addresses that do not parse are skipped with a
/// warning: they name no member.
pub fn recorded<E: ordo_kv::Engine>(
    state: &ordo_kv::MvccStore<E>,
    version: u64,
) -> Result<BTreeMap<u64, String>, ordo_kv::MvccError> {
    let end = prefix_end();
    let page = state.scan_for_upkeep(
        &SYSTEM_STREAM,
        STORAGE_PREFIX,
        Some(&end),
        version,
        MAX_RECORDED_STORAGE_MEMBERS,
        usize::MAX,
    )?;
    let mut members = BTreeMap::new();
    for row in page.rows {
        let (key, address) = (row.key, String::from_utf8(row.value).ok());
        match (member_of(&key), address) {
            (Some(id), Some(addr)) => {
                members.insert(id, addr);
            }
            _ => tracing::warn!(
                key = %String::from_utf8_lossy(&key),
                "a storage membership key that names no member; skipped"
            ),
        }
    }
    Ok(members)
}

/// Keeps `set`'s members those the replica behind `snapshots` has applied
/// (or `configured`, while the log records none), until aborted. A
/// recorded membership of fewer than `fewest` members (the write quorum:
/// shards must land on that many distinct members) is not taken: an
/// operator recording members one by one passes through such sets, and
/// placing every shard on one or two members would lose the durability
/// the quorum promises; the previous membership stays until the record
/// is large enough.
pub async fn follow(
    snapshots: Snapshots,
    set: StorageSet,
    configured: BTreeMap<u64, String>,
    fewest: usize,
) {
    let mut applied = snapshots.applied.clone();
    loop {
        let version = snapshots.latest_version();
        let wanted = match recorded(&snapshots.state, version) {
            Ok(members) if members.is_empty() => configured.clone(),
            Ok(members) if members.len() < fewest => {
                tracing::warn!(
                    recorded = members.len(),
                    fewest,
                    "the recorded storage membership is smaller than the write quorum; keeping the previous one"
                );
                set.addresses()
            }
            Ok(members) => members,
            Err(e) => {
                tracing::warn!(error = %e, "reading the storage membership");
                tokio::time::sleep(MEMBERSHIP_CHECK_INTERVAL).await;
                continue;
            }
        };
        match set.replace_members(&wanted) {
            Ok(true) => tracing::info!(members = ?wanted, version, "storage membership changed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "a recorded storage member cannot be reached"),
        }
        if applied.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(MEMBERSHIP_CHECK_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_sort_by_id_and_name_their_member_alone() {
        assert!(storage_key(9) < storage_key(10));
        assert_eq!(member_of(&storage_key(42)), Some(42));
        assert_eq!(member_of(b"cluster/storage/42"), None, "not 20 digits");
        assert_eq!(member_of(b"cluster/other/00000000000000000042"), None);
        assert!(storage_key(u64::MAX) < prefix_end());
        assert!(STORAGE_PREFIX < prefix_end().as_slice());
    }
}
