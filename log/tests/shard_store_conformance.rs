//! Both shard stores pass the same conformance suite.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::{MemShardStore, RocksShardStore, conformance};

#[test]
fn in_memory_store_conforms() {
    conformance::shard_store(MemShardStore::new);
}

#[test]
fn rocksdb_store_conforms() {
    let root = tempfile::tempdir().expect("temp dir");
    let counter = std::cell::Cell::new(0);
    conformance::shard_store(|| {
        counter.set(counter.get() + 1);
        RocksShardStore::open(root.path().join(counter.get().to_string())).expect("opens")
    });
}

#[test]
fn rocksdb_store_keeps_shards_across_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let encoded = ordo_log::Coder::new()
        .encode(b"survives a restart", 256, 2, 1)
        .expect("encodes");
    {
        let store = RocksShardStore::open(dir.path()).expect("opens");
        ordo_log::ShardStore::put_entry(&store, &encoded.commitment, &encoded.shards)
            .expect("stores");
    }
    let store = RocksShardStore::open(dir.path()).expect("reopens");
    assert_eq!(
        ordo_log::ShardStore::list(&store, &encoded.commitment).expect("lists"),
        vec![0, 1, 2]
    );
}
