//! `ordo mine` against a real `ordo dev`: only the log's admin turns mining
//! on, a miner registers with its beneficiary, epochs open as entries are
//! applied, and all of it survives a restart.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, configure_mining, mine_status, ordo, stdout};
const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";

#[test]
fn the_admin_turns_mining_on_a_miner_registers_and_epochs_open_as_entries_apply() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let endpoint = node.endpoint.as_str();
    let miner_key = data.path().join("miner.key");
    let miner_key = miner_key.to_str().unwrap();
    stdout(&ordo(&["keygen", "--out", miner_key]));
    let admin_key = data.path().join("node.key");
    let admin_key = admin_key.to_str().unwrap();
    assert_eq!(mine_status(endpoint, miner_key)["configured"], false);

    let configure = |key: &str| configure_mining(endpoint, key, [4, 2, 1000, 7]);
    let stranger = configure(miner_key);
    assert!(!stranger.status.success());
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("permission denied"));
    assert!(stdout(&configure(admin_key)).starts_with("mining configured at version "));
    let again = configure(admin_key);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already configured"));
    let register = || {
        let args = [
            "mine",
            "register",
            "--endpoint",
            endpoint,
            "--key",
            miner_key,
        ];
        ordo(&[&args[..], &["--beneficiary", BENEFICIARY]].concat())
    };
    assert!(stdout(&register()).starts_with("miner registered at version "));
    // Every commit is an entry; four more close at least one epoch.
    for _ in 0..4 {
        stdout(&register());
    }
    let seen = mine_status(endpoint, miner_key);
    assert_eq!(seen["configured"], true);
    let log = &seen["log"];
    let epoch = log["epoch"].as_u64().unwrap();
    assert!(epoch >= 1, "{seen}");
    assert_eq!(log["epoch_entries"], 4);
    assert_eq!(log["reward_per_proof"], 7);
    // The first epoch at the configured difficulty; each later one, with
    // no proof accepted, twice as easy.
    let expected = 1000.0 / 2f64.powi(epoch as i32 - 1);
    let attempts = log["attempts_per_hit"].as_f64().unwrap();
    assert!(
        (attempts - expected).abs() < 1.0,
        "{attempts} in epoch {epoch}"
    );
    assert!(log["mineable_chunks"].as_u64().unwrap() > 0);
    assert_eq!(
        seen["miner"]["beneficiary"],
        BENEFICIARY.trim_start_matches("0x")
    );
    assert_eq!(seen["miner"]["rewards"], "0");

    assert!(node.terminate().success());
    let node = DevNode::start(data.path());
    assert_eq!(
        mine_status(&node.endpoint, miner_key),
        seen,
        "the same after a restart"
    );
}
