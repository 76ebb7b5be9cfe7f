//! The storage membership recorded in the log.
//!
//! Keys `cluster/storage/ID` (the id as 20 decimal digits, so keys sort by
//! id) in the log's system stream, each valued with the member's peer
//! address, followed by ` draining` while the member is being
//! emptied. The log's admin writes them with ordinary transactions (`ordo
//! cluster storage add|drain|remove`): replay already lets only the
//! system stream's admins and writers write there, and every replica reads
//! the same membership at the same version. No directory service, and no
//! protocol beyond the log.
//!
//! A member leaves in two steps, so that no entry is ever left with a
//! shard fewer than it was acknowledged with: *drain* (placement leaves it
//! out; repair stores each of its shards at its new home, reading them
//! from it among others; readers still ask it last), then, once repair
//! reports every entry at home without it, *remove* (the key is deleted
//! and nobody asks the member again). `ordo cluster storage remove`
//! checks that report before it records the removal.
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
use crate::node::storage_set::{Membership, StorageSet};
use ordo_txn::attest::SYSTEM_STREAM;
use std::collections::BTreeMap;
use std::time::Duration;

pub use ordo_txn::attest::{
    STORAGE_MEMBER_PREFIX as STORAGE_PREFIX, parse_storage_member_value as parse_value,
    storage_member_key as storage_key,
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
/// recorded). Keys or values that do not parse are skipped with a
/// warning: they name no member.
pub fn recorded<E: ordo_kv::Engine>(
    state: &ordo_kv::MvccStore<E>,
    version: u64,
) -> Result<Membership, ordo_kv::MvccError> {
    let end = prefix_end();
    let page = state.scan_for_upkeep(
        &SYSTEM_STREAM,
        STORAGE_PREFIX,
        Some(&end),
        version,
        MAX_RECORDED_STORAGE_MEMBERS,
        usize::MAX,
    )?;
    let mut members = Membership::default();
    for row in page.rows {
        let value = String::from_utf8(row.value).ok();
        match (member_of(&row.key), value.as_deref().and_then(parse_value)) {
            (Some(id), Some((addr, false))) => {
                members.active.insert(id, addr);
            }
            (Some(id), Some((addr, true))) => {
                members.draining.insert(id, addr);
            }
            _ => tracing::warn!(
                key = %String::from_utf8_lossy(&row.key),
                "a storage membership key that names no member; skipped"
            ),
        }
    }
    Ok(members)
}

/// The membership to take, given what the log records, what the member's
/// file names and what the set holds now. A record whose members placement
/// would use are fewer than `fewest` (the write quorum: shards must land on
/// that many distinct members) is not taken: an operator recording members
/// one by one passes through such sets, and placing every shard on one or
/// two members would lose the durability the quorum promises; the present
/// membership stays until the record is large enough.
pub fn wanted(
    recorded: Membership,
    configured: &BTreeMap<u64, String>,
    present: Membership,
    fewest: usize,
) -> Membership {
    if recorded.is_empty() {
        return Membership::active(configured.clone());
    }
    if too_small(&recorded, fewest) {
        return present;
    }
    recorded
}

/// Whether `recorded` names members but places on fewer than `fewest`.
fn too_small(recorded: &Membership, fewest: usize) -> bool {
    !recorded.is_empty() && recorded.active.len() < fewest
}

/// Keeps `set`'s members those the replica behind `snapshots` has applied
/// (or `configured`, while the log records none), until aborted; see
/// [`wanted`].
pub async fn follow(
    snapshots: Snapshots,
    set: StorageSet,
    configured: BTreeMap<u64, String>,
    fewest: usize,
) {
    let mut applied = snapshots.applied.clone();
    // The last record not taken, so that it is reported once, not on every
    // check while it stands.
    let mut passed_over: Option<Membership> = None;
    loop {
        let version = snapshots.latest_version();
        let wanted = match recorded(&snapshots.state, version) {
            Ok(members) => {
                if too_small(&members, fewest) && passed_over.as_ref() != Some(&members) {
                    tracing::warn!(
                        recorded = members.active.len(),
                        draining = members.draining.len(),
                        fewest,
                        version,
                        "the recorded storage membership places on fewer members than the write quorum; keeping the present one"
                    );
                    passed_over = Some(members.clone());
                }
                wanted(members, &configured, set.membership(), fewest)
            }
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

    fn members(ids: &[u64]) -> BTreeMap<u64, String> {
        ids.iter()
            .map(|&id| (id, format!("10.0.0.{id}:1")))
            .collect()
    }

    #[test]
    fn a_record_placing_on_fewer_members_than_the_quorum_is_not_taken() {
        let present = Membership::active(members(&[1, 2, 3, 4, 5, 6]));
        let file = members(&[1, 2, 3]);
        let none = Membership::default();
        assert_eq!(
            wanted(none, &file, present.clone(), 5),
            Membership::active(file.clone())
        );
        let mut draining_two = Membership::active(members(&[1, 2, 3, 4]));
        draining_two.draining = members(&[5, 6]);
        assert_eq!(wanted(draining_two, &file, present.clone(), 5), present);
        let mut draining_one = Membership::active(members(&[1, 2, 3, 4, 5]));
        draining_one.draining = members(&[6]);
        assert_eq!(
            wanted(draining_one.clone(), &file, present, 5),
            draining_one
        );
    }

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
