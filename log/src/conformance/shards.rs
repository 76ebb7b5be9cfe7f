//! The conformance suite every [`ShardStore`] must pass.
//!
//! Implementations call [`shard_store`] from their tests with a factory that
//! makes an empty store.

use crate::{Coder, Hash, Shard, ShardStore};

/// Runs every check against fresh stores made by `make`.
pub fn shard_store<S: ShardStore>(make: impl Fn() -> S) {
    put_then_get_returns_the_same_shard(&make());
    missing_shards_are_absent(&make());
    put_replaces_an_existing_shard(&make());
    delete_forgets_and_is_idempotent(&make());
    list_is_sorted_and_scoped_to_one_entry(&make());
    put_entry_stores_every_shard(&make());
    stored_shards_still_verify(&make());
}

fn entry(seed: u8) -> (Hash, Vec<Shard>) {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let encoded = Coder::new()
        .encode(&payload, 256, 4, 2)
        .expect("valid geometry");
    (encoded.commitment, encoded.shards)
}

/// A shard read back equals the shard written, bytes and proof.
pub fn put_then_get_returns_the_same_shard(store: &impl ShardStore) {
    let (c, shards) = entry(3);
    store.put(&c, &shards[1]).expect("put");
    assert_eq!(
        store.get(&c, 1).expect("get"),
        Some(shards[1].clone()),
        "get must return what put stored"
    );
    assert!(
        store.has(&c, 1).expect("has"),
        "has must see a stored shard"
    );
}

/// Nothing is found that was not stored.
pub fn missing_shards_are_absent(store: &impl ShardStore) {
    let (c, _) = entry(5);
    assert_eq!(
        store.get(&c, 0).expect("get"),
        None,
        "get of a missing shard must be None"
    );
    assert!(
        !store.has(&c, 0).expect("has"),
        "has of a missing shard must be false"
    );
    assert!(
        store.list(&c).expect("list").is_empty(),
        "list of an unknown entry must be empty"
    );
}

/// A second put under the same key replaces the first.
pub fn put_replaces_an_existing_shard(store: &impl ShardStore) {
    let (c, shards) = entry(7);
    let mut altered = shards[0].clone();
    altered.bytes[0] ^= 0xff;
    store.put(&c, &altered).expect("put");
    store.put(&c, &shards[0]).expect("put");
    assert_eq!(
        store.get(&c, 0).expect("get"),
        Some(shards[0].clone()),
        "the last put must win"
    );
    assert_eq!(
        store.list(&c).expect("list"),
        vec![0],
        "a replaced shard is listed once"
    );
}

/// Delete removes a shard, leaves its neighbours, and may be repeated.
pub fn delete_forgets_and_is_idempotent(store: &impl ShardStore) {
    let (c, shards) = entry(9);
    store.put_entry(&c, &shards).expect("put_entry");
    store.delete(&c, 2).expect("delete");
    store.delete(&c, 2).expect("deleting twice is not an error");
    store
        .delete(&c, 40)
        .expect("deleting a shard never stored is not an error");
    assert!(
        !store.has(&c, 2).expect("has"),
        "a deleted shard must be gone"
    );
    assert_eq!(
        store.list(&c).expect("list"),
        vec![0, 1, 3, 4, 5],
        "delete must leave other shards"
    );
}

/// List returns ascending indices of one entry only, even for neighbouring keys.
pub fn list_is_sorted_and_scoped_to_one_entry(store: &impl ShardStore) {
    let (a, shards) = entry(11);
    let mut b = a;
    b[31] = b[31].wrapping_add(1);
    let mut before = a;
    before[31] = before[31].wrapping_sub(1);
    for i in [5, 0, 3] {
        store.put(&a, &shards[i]).expect("put");
    }
    store.put(&b, &shards[1]).expect("put");
    store.put(&before, &shards[4]).expect("put");
    assert_eq!(
        store.list(&a).expect("list"),
        vec![0, 3, 5],
        "list must be ascending and scoped"
    );
    assert_eq!(
        store.list(&b).expect("list"),
        vec![1],
        "list must not leak into the next entry"
    );
}

/// put_entry stores all shards it is given.
pub fn put_entry_stores_every_shard(store: &impl ShardStore) {
    let (c, shards) = entry(13);
    store.put_entry(&c, &shards).expect("put_entry");
    assert_eq!(store.list(&c).expect("list"), (0..6).collect::<Vec<u16>>());
    for shard in &shards {
        assert_eq!(
            store.get(&c, shard.index).expect("get").as_ref(),
            Some(shard)
        );
    }
}

/// What comes back still verifies against the commitment.
pub fn stored_shards_still_verify(store: &impl ShardStore) {
    let payload = vec![42u8; 70_000];
    let encoded = Coder::new()
        .encode(&payload, 4096, 4, 2)
        .expect("valid geometry");
    store
        .put_entry(&encoded.commitment, &encoded.shards)
        .expect("put_entry");
    for index in 0..6 {
        let shard = store
            .get(&encoded.commitment, index)
            .expect("get")
            .expect("stored");
        crate::verify_shard(&encoded.commitment, &encoded.geometry, &shard)
            .expect("a stored shard must verify");
    }
}
