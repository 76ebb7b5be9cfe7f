//! Placement: distinct homes, purity, and how few shards a membership
//! change moves.

use ordo_log::placement::{MAX_STORAGE_MEMBERS, MemberId, PlacementError, place, spares};
use std::collections::BTreeSet;

const ENTRIES: u64 = 3_000;
const SHARDS: u16 = 6;

fn commitment(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

fn members(ids: impl IntoIterator<Item = MemberId>) -> BTreeSet<MemberId> {
    ids.into_iter().collect()
}

/// Mean shards per entry whose home differs between the two memberships.
fn mean_moved(before: &BTreeSet<MemberId>, after: &BTreeSet<MemberId>) -> f64 {
    let moved: usize = (0..ENTRIES)
        .map(|i| {
            let a = place(&commitment(i), SHARDS, before).expect("placed");
            let b = place(&commitment(i), SHARDS, after).expect("placed");
            a.iter().zip(&b).filter(|(x, y)| x != y).count()
        })
        .sum();
    moved as f64 / ENTRIES as f64
}

#[test]
fn an_entrys_shards_land_on_distinct_members_whenever_there_are_enough() {
    for n in [6u64, 7, 9, 40] {
        let all = members(1..=n);
        for i in 0..500 {
            let homes = place(&commitment(i), SHARDS, &all).expect("placed");
            assert_eq!(homes.len(), usize::from(SHARDS));
            let distinct: BTreeSet<_> = homes.iter().collect();
            assert_eq!(
                distinct.len(),
                usize::from(SHARDS),
                "entry {i} over {n} members: {homes:?}"
            );
            assert!(homes.iter().all(|m| all.contains(m)));
        }
    }
}

#[test]
fn with_fewer_members_than_shards_every_shard_still_has_a_home() {
    let three = members([10, 20, 30]);
    for i in 0..200 {
        let homes = place(&commitment(i), SHARDS, &three).expect("placed");
        assert_eq!(homes.len(), usize::from(SHARDS));
        for member in &three {
            let held = homes.iter().filter(|m| *m == member).count();
            assert_eq!(
                held, 2,
                "six shards over three members: two each: {homes:?}"
            );
        }
    }
}

#[test]
fn placement_is_a_function_of_the_commitment_and_the_member_set() {
    let a = place(&commitment(1), SHARDS, &members([5, 1, 9, 3, 7, 2])).expect("placed");
    let b = place(&commitment(1), SHARDS, &members([1, 2, 3, 5, 7, 9])).expect("placed");
    assert_eq!(a, b);
    let other = place(&commitment(2), SHARDS, &members([1, 2, 3, 5, 7, 9])).expect("placed");
    assert_ne!(a, other, "different entries spread differently");
}

#[test]
fn placement_moves_few_shards_when_a_member_joins() {
    let moved = mean_moved(&members(1..=6), &members(1..=7));
    // The newcomer's fair share is 6/7 = 0.86 shards per entry.
    assert!(
        (0.86..1.4).contains(&moved),
        "adding a seventh member moved {moved}"
    );
}

#[test]
fn placement_moves_few_shards_when_a_member_leaves() {
    let moved = mean_moved(&members(1..=9), &members(1..=8));
    // The leaver held 6/9 = 0.67 shards per entry; those must move.
    assert!(
        (0.66..1.0).contains(&moved),
        "removing one of nine moved {moved}"
    );
}

#[test]
fn no_members_and_too_many_members_are_typed_errors() {
    assert_eq!(
        place(&commitment(0), SHARDS, &BTreeSet::new()),
        Err(PlacementError::NoMembers)
    );
    let crowd = members(0..=MAX_STORAGE_MEMBERS as u64);
    assert!(matches!(
        place(&commitment(0), SHARDS, &crowd),
        Err(PlacementError::TooManyMembers { .. })
    ));
}

#[test]
fn spares_are_every_other_member_in_an_order_that_varies_by_entry() {
    let all = members(1..=9);
    let mut first_spares = BTreeSet::new();
    for i in 0..200 {
        let homes = place(&commitment(i), SHARDS, &all).expect("placed");
        let order = spares(&commitment(i), &homes, &all);
        assert_eq!(order, spares(&commitment(i), &homes, &all), "pure");
        let mut everyone: Vec<MemberId> = homes.iter().chain(&order).copied().collect();
        everyone.sort_unstable();
        assert_eq!(
            everyone,
            (1..=9).collect::<Vec<_>>(),
            "homes and spares are all members, once"
        );
        first_spares.insert(order[0]);
    }
    assert_eq!(
        first_spares, all,
        "every member is some entry's first spare"
    );
    let homes = place(&commitment(0), SHARDS, &members(1..=6)).expect("placed");
    assert!(spares(&commitment(0), &homes, &members(1..=6)).is_empty());
}
