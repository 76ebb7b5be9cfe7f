//! Both shard stores pass the same conformance suite.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::limits::MIN_JOURNAL_SEGMENT_BYTES;
use ordo_log::{MemShardStore, RocksShardStore, ShardStore, conformance};

#[test]
fn in_memory_store_conforms() {
    conformance::shard_store(MemShardStore::new);
}

/// Runs the suite over RocksDB stores with journal segments of
/// `segment_bytes`, each in a fresh directory.
fn rocksdb_conforms_with(segment_bytes: u64) {
    let root = tempfile::tempdir().expect("temp dir");
    let counter = std::cell::Cell::new(0);
    conformance::shard_store(|| {
        counter.set(counter.get() + 1);
        let path = root.path().join(counter.get().to_string());
        RocksShardStore::open_with(path, segment_bytes).expect("opens")
    });
}

#[test]
fn rocksdb_store_conforms() {
    rocksdb_conforms_with(ordo_log::limits::MEMBER_JOURNAL_SEGMENT_BYTES);
}

#[test]
fn rocksdb_store_keeps_shards_across_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let encoded = ordo_log::Coder::new()
        .encode(b"survives a restart", 256, 2, 1)
        .expect("encodes");
    {
        let store = RocksShardStore::open(dir.path()).expect("opens");
        store
            .put_entry(&encoded.commitment, &encoded.shards)
            .expect("stores");
    }
    let store = RocksShardStore::open(dir.path()).expect("reopens");
    assert_eq!(
        store.list(&encoded.commitment).expect("lists"),
        vec![0, 1, 2]
    );
}

#[test]
fn rocksdb_store_conforms_while_its_journal_rotates() {
    rocksdb_conforms_with(MIN_JOURNAL_SEGMENT_BYTES);
}

/// Entries of three shards from 2+1 coding, each about `len` bytes.
fn entries(count: u8, len: usize) -> Vec<ordo_log::EncodedEntry> {
    (0..count)
        .map(|i| {
            let payload = vec![i; len];
            ordo_log::Coder::new()
                .encode(&payload, 256, 2, 1)
                .expect("encodes")
        })
        .collect()
}

/// Opens the store in `dir` with the smallest journal segments.
fn open_small(dir: &std::path::Path) -> RocksShardStore {
    RocksShardStore::open_with(dir, MIN_JOURNAL_SEGMENT_BYTES).expect("opens")
}

/// Stores every shard of `entries`.
fn store_all(store: &RocksShardStore, entries: &[ordo_log::EncodedEntry]) {
    for entry in entries {
        store
            .put_entry(&entry.commitment, &entry.shards)
            .expect("stores");
    }
}

/// Every shard of every entry, read back and verified against its commitment.
fn assert_all_held(store: &RocksShardStore, written: &[ordo_log::EncodedEntry]) {
    for entry in written {
        for shard in &entry.shards {
            let held = store.get(&entry.commitment, shard.index).expect("reads");
            let held = held.expect("every acknowledged shard is held");
            assert_eq!(held.bytes, shard.bytes, "shard {} intact", shard.index);
            ordo_log::verify_shard(&entry.commitment, &entry.geometry, &held).expect("verifies");
        }
    }
}

#[test]
fn shards_written_over_many_journal_segments_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = entries(200, 3000);
    {
        let store = open_small(dir.path());
        store_all(&store, &written);
        store.delete(&written[0].commitment, 0).expect("deletes");
    }
    // Retired segments are gone: the one left is numbered after them.
    let segments = ordo_log::journal::inspect(&dir.path().join("journal")).expect("inspects");
    let newest = segments.last().expect("a segment");
    let stem = newest.path.file_stem().expect("a name").to_string_lossy();
    let number = u64::from_str_radix(&stem, 16).expect("a hex segment number");
    assert!(number >= 2, "the journal rotated: {segments:?}");
    let store = open_small(dir.path());
    assert_all_held(&store, &written[1..]);
    assert_eq!(
        store.list(&written[0].commitment).expect("lists"),
        vec![1, 2]
    );
}

#[test]
fn a_torn_last_journal_record_is_dropped_and_damage_before_it_refused() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let written = entries(3, 500);
    store_all(&open_small(dir.path()), &written);
    let segments = ordo_log::journal::inspect(&dir.path().join("journal")).expect("inspects");
    let newest = segments.last().expect("a segment");
    // Half a record after the last whole one, as a crash mid-write leaves it.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest.path)
        .expect("opens");
    file.write_all_at(b"\x12\x34\x56\x78\xff\x7f\x01partial", newest.end)
        .expect("writes");
    drop(file);
    {
        let store = open_small(dir.path());
        assert_all_held(&store, &written);
        store_all(&store, &written[..2]);
    }
    // Damage inside a record with whole ones after it: an error, not a loss.
    let segments = ordo_log::journal::inspect(&dir.path().join("journal")).expect("inspects");
    let newest = segments.last().expect("a segment");
    let mut bytes = std::fs::read(&newest.path).expect("reads");
    bytes[40] ^= 0x01;
    std::fs::write(&newest.path, &bytes).expect("writes");
    let error = RocksShardStore::open_with(dir.path(), MIN_JOURNAL_SEGMENT_BYTES).unwrap_err();
    assert!(error.to_string().contains("corrupt"), "{error}");
}

/// The `level0_file_num_compaction_trigger` RocksDB recorded for the
/// column `family` in the newest OPTIONS file of `dir`.
fn stored_level0_trigger(dir: &std::path::Path, family: &str) -> Option<String> {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("OPTIONS-")
        })
        .max()?;
    let text = std::fs::read_to_string(newest).unwrap();
    let section = text.split(&format!("[CFOptions \"{family}\"]")).nth(1)?;
    let line = section
        .lines()
        .find(|l| l.trim().starts_with("level0_file_num_compaction_trigger="))?;
    line.trim().split_once('=').map(|(_, v)| v.to_string())
}

/// Shards, in a storage member's store and in the joint log, gather more
/// level-0 files than RocksDB's default before a compaction rewrites them.
#[test]
fn shard_columns_compact_level_zero_files_in_larger_groups() {
    let expected = Some(ordo_log::rocks_shards::SHARD_LEVEL0_FILES_BEFORE_COMPACTION.to_string());
    let member = tempfile::tempdir().expect("temp dir");
    drop(RocksShardStore::open(member.path()).expect("opens"));
    assert_eq!(stored_level0_trigger(member.path(), "default"), expected);
    let joint = tempfile::tempdir().expect("temp dir");
    let log = ordo_log::RocksLog::open(joint.path(), Default::default()).expect("opens");
    drop(log);
    assert_eq!(stored_level0_trigger(joint.path(), "shards"), expected);
    assert_eq!(
        stored_level0_trigger(joint.path(), "headers"),
        Some("4".into())
    );
}
