//! A real `ordo dev` that mines: once its admin turns mining on, the node
//! seals the shards it stores, finds proofs, and replay credits its
//! beneficiary; a replica replayed apart from the log reaches the same
//! digest, ledger included.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    DevNode, configure_mining, metric, mine_status, mined_and_credited, ordo, register_times,
    stdout,
};
use std::time::Duration;

const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";

/// What `ordo replay` of the stopped node in `data` prints, with `extra` arguments.
fn replay(data: &std::path::Path, extra: &[&str]) -> String {
    let args = [
        "replay",
        "--log-level",
        "warn",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    stdout(&ordo(&[&args[..], extra].concat()))
}

#[test]
fn a_node_that_mines_earns_rewards_and_a_replica_replayed_apart_agrees() {
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--no-cli-key",
        "--mine-beneficiary",
        BENEFICIARY,
        "--mine-cpu-share",
        "1",
    ];
    let node = DevNode::start_with(data.path(), &args);
    let endpoint = node.endpoint.clone();
    let admin = data.path().join("node.key");
    let admin = admin.to_str().unwrap();
    stdout(&configure_mining(&endpoint, admin, [4, 16, 64, 3]));
    // Entries to close the first epoch: registrations of another account.
    register_times(&endpoint, &data.path().join("other.key"), 4, BENEFICIARY);

    // The node mines on its own from here; wait (bounded) for a reward.
    let earned = mined_and_credited(&endpoint, admin, Duration::from_secs(60));
    assert_eq!(
        earned["miner"]["beneficiary"],
        BENEFICIARY.trim_start_matches("0x")
    );
    let mined = &earned["node_miner"];
    assert_eq!(
        mined["account"], earned["miner"]["account"],
        "the node mines as its key"
    );
    assert!(mined["accepted"].as_u64().unwrap() >= 1, "{mined}");
    assert!(mined["hits"].as_u64() >= mined["accepted"].as_u64());
    assert!(mined["attempts_per_second"].as_f64().unwrap() > 0.0);
    let page = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::scrape(&node.metrics));
    assert!(metric(&page, "ordo_mining_proofs_accepted_total") >= 1);
    assert!(metric(&page, "ordo_mining_sealed_chunks_total") > 0);
    assert!(metric(&page, "ordo_mining_attempts_total") >= metric(&page, "ordo_mining_held_total"));
    assert!(node.terminate().success());

    // Replayed apart, from the log alone, into a fresh state directory.
    let apart = data.path().join("apart");
    let replayed = replay(data.path(), &["--state-dir", apart.to_str().unwrap()]);
    let done = replayed.lines().last().unwrap();
    let digest = done.rsplit("digest=").next().unwrap();
    // The node itself, restarted without mining, reports the same.
    let node = DevNode::start_with(data.path(), &["--no-cli-key"]);
    let status = ordo(&["status", "--endpoint", &node.endpoint, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["state_digest"], digest, "{done}");
    let again = mine_status(&node.endpoint, admin);
    assert!(
        again["miner"]["rewards"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= earned["miner"]["rewards"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );
    // SQL reads the same ledger through its read-only view.
    let query = "SELECT beneficiary, total FROM mining_rewards";
    let table = stdout(&ordo(&["sql", "--endpoint", &node.endpoint, "-c", query]));
    let row: Vec<&str> = (table.lines())
        .find(|line| line.contains(BENEFICIARY))
        .map(|line| line.split('|').map(str::trim).collect())
        .unwrap_or_default();
    let total = again["miner"]["rewards"].as_str().unwrap();
    assert_eq!(row, [BENEFICIARY, total], "{table}");
    assert!(table.contains("(1 row)"), "{table}");
}

#[test]
fn state_built_without_the_mining_index_is_rebuilt_from_the_log() {
    use ordo_kv::{Column, Engine, RocksEngine, WriteBatch};
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    register_times(&node.endpoint, &data.path().join("k.key"), 3, BENEFICIARY);
    let status = stdout(&ordo(&["status", "--endpoint", &node.endpoint, "--json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(node.terminate().success());

    // What a store written before the index looks like: no format row.
    let state = data.path().join("state");
    let engine = RocksEngine::open(&state).unwrap();
    let mut batch = WriteBatch::default();
    batch.delete(Column::Meta, b"format".to_vec());
    engine.write(batch, true).unwrap();
    drop(engine);

    let replayed = replay(data.path(), &[]);
    assert!(replayed.starts_with("resume next_seq=0 "), "{replayed}");
    let digest = replayed
        .lines()
        .last()
        .unwrap()
        .rsplit("digest=")
        .next()
        .unwrap();
    assert_eq!(status["state_digest"], digest);
}
