//! A real `ordo dev` that mines: once its admin turns mining on, the node
//! seals the shards it stores, finds proofs, and replay credits its
//! beneficiary; a replica replayed apart from the log reaches the same
//! digest, ledger included.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, metric, mine_status, ordo, stdout};
use std::time::{Duration, Instant};

const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";

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
    let configure = [
        "mine",
        "configure",
        "--endpoint",
        &endpoint,
        "--key",
        admin,
        "--epoch-entries",
        "4",
        "--target-proofs",
        "16",
        "--attempts-per-hit",
        "64",
        "--reward",
        "3",
    ];
    stdout(&ordo(&configure));
    // Entries to close the first epoch: registrations of another account.
    let other = data.path().join("other.key");
    let other = other.to_str().unwrap();
    stdout(&ordo(&["keygen", "--out", other]));
    let register = [
        "mine",
        "register",
        "--endpoint",
        &endpoint,
        "--key",
        other,
        "--beneficiary",
        BENEFICIARY,
    ];
    for _ in 0..4 {
        stdout(&ordo(&register));
    }

    // The node mines on its own from here; wait (bounded) for a reward.
    let deadline = Instant::now() + Duration::from_secs(60);
    let earned = loop {
        let status = mine_status(&endpoint, admin);
        let rewards: u64 = status["miner"]["rewards"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if rewards > 0 {
            break status;
        }
        assert!(Instant::now() < deadline, "no reward within 60 s: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        earned["miner"]["beneficiary"],
        BENEFICIARY.trim_start_matches("0x")
    );
    let page = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::scrape(&node.metrics));
    assert!(metric(&page, "ordo_mining_proofs_accepted_total") >= 1);
    assert!(metric(&page, "ordo_mining_sealed_chunks_total") > 0);
    assert!(metric(&page, "ordo_mining_attempts_total") >= metric(&page, "ordo_mining_held_total"));
    assert!(node.terminate().success());

    // Replayed apart, from the log alone, into a fresh state directory.
    let apart = data.path().join("apart");
    let replayed = stdout(&ordo(&[
        "replay",
        "--log-level",
        "warn",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--state-dir",
        apart.to_str().unwrap(),
    ]));
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
}
