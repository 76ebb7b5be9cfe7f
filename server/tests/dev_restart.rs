//! A restarted `ordo dev` whose state trails its log serves nothing until
//! it has applied the whole log: its first status and its first read
//! already show every commit acknowledged before the stop.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, ordo, put_in_turn, stdout};

/// Sequential puts, one log entry each: enough that applying them all
/// again takes far longer than a status call.
const PUTS: usize = 400;

fn status(endpoint: &str) -> serde_json::Value {
    let out = ordo(&["status", "--endpoint", endpoint, "--json"]);
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_its_state_behind_its_log_serves_only_once_caught_up() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let signer = ordo_client::keyfile::load(&data.path().join("cli.key")).unwrap();
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let versions = put_in_turn(&client, &signer, PUTS).await;
    let last = *versions.last().unwrap();
    let before = status(&node.endpoint);
    assert!(node.terminate().success());

    // The state is a function of the log: without it, the restarted node
    // rebuilds all of it from the first entry.
    std::fs::remove_dir_all(data.path().join("state")).unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let after = status(&node.endpoint);
    assert_eq!(after["applied_seq"], before["applied_seq"], "{after}");
    assert_eq!(after["state_digest"], before["state_digest"]);
    assert!(
        after["applied_version"].as_u64().unwrap() >= last,
        "{after}"
    );
    let read = ordo(&[
        "kv",
        "get",
        "--endpoint",
        &node.endpoint,
        "--key",
        data.path().join("cli.key").to_str().unwrap(),
        "k",
    ]);
    assert_eq!(stdout(&read).trim(), format!("v{}", PUTS - 1));
    assert!(node.terminate().success());
}
