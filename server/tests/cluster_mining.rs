//! Mining on the raft cluster, as separate processes: three voters that
//! store shards, and a member that stores shards too and runs a gateway
//! with its replica and a `[mining]` table. Once the log's admin turns
//! mining on, that member earns rewards for the shards it holds; two read
//! replicas started afterwards, reading shards from the other members once
//! the miner stopped, reach the same digest and the same ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{MemberProcess, initialize, log_members, make_certs};
use common::{configure_mining, mine_status, ordo, register_times, stdout};
use std::time::{Duration, Instant};

const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";
/// How long the miner may take to earn its first reward.
const EARN_BOUND: Duration = Duration::from_secs(90);

/// The miner: storage, gateway and replica in one member, coding 2+1 so
/// that four storage members meet the write quorum.
fn miner_member(dir: &std::path::Path, voters: &[&MemberProcess]) -> MemberProcess {
    let mut miner = MemberProcess::new(4, dir, &["storage", "gateway", "replica"]);
    let listen = format!("127.0.0.1:{}", common::cluster::free_port());
    let storage: Vec<&MemberProcess> = voters.iter().copied().chain([&miner]).collect();
    let text = log_members(voters, &storage);
    miner.add_config(&format!(
        "listen = \"{listen}\"\ndata_shards = 2\nparity_shards = 1\n"
    ));
    miner.add_config(&text);
    miner.add_config(&format!(
        "[mining]\nbeneficiary = \"{BENEFICIARY}\"\ncpu_share = 1.0\n"
    ));
    miner.endpoint = Some(format!("http://{listen}"));
    miner
}

/// Polls `endpoint`'s `ordo status --json` until it has applied `tail`
/// and everything its sequencer has ordered.
fn caught_up(endpoint: &str, tail: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = stdout(&ordo(&["status", "--endpoint", endpoint, "--json"]));
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        let applied = status["applied_seq"].as_u64().unwrap();
        if applied >= tail && applied == status["log_tail"].as_u64().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up within 60 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_mines_earns_rewards_and_replicas_agree_on_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_certs(dir, &[1, 2, 3, 4, 5, 6]);
    let tls = ordo_raft::PeerTls::load(&dir.join("certs"), "admin").unwrap();
    let mut voters: Vec<MemberProcess> = (1..=3)
        .map(|id| MemberProcess::new(id, dir, &["sequencer", "storage"]))
        .collect();
    for voter in &mut voters {
        voter.start();
    }
    let voting: Vec<&MemberProcess> = voters.iter().collect();
    initialize(&voting, &tls).await;
    let mut miner = miner_member(dir, &voting);
    miner.start();
    let endpoint = miner.endpoint.clone().unwrap();
    let admin = miner.data_dir.join("node.key");
    let admin = admin.to_str().unwrap();

    stdout(&configure_mining(&endpoint, admin, [4, 16, 32, 5]));
    register_times(&endpoint, &dir.join("other.key"), 4, BENEFICIARY);
    let deadline = Instant::now() + EARN_BOUND;
    loop {
        let status = mine_status(&endpoint, admin);
        if status["miner"]["rewards"].as_str().unwrap() != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reward within {EARN_BOUND:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = common::scrape(&miner.metrics).await;
    assert!(common::metric(&page, "ordo_mining_proofs_accepted_total") >= 1);
    let before = stdout(&ordo(&["status", "--endpoint", &endpoint, "--json"]));
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    let tail = before["log_tail"].as_u64().unwrap();
    // Nothing writes the log once the miner stopped: each replica below
    // applies everything ordered.
    miner.stop();

    // Two read replicas, reading from the voters' shards alone.
    let storage: Vec<&MemberProcess> = voters.iter().collect();
    let mut replicas: Vec<MemberProcess> = [5, 6]
        .into_iter()
        .map(|id| MemberProcess::new_client(id, dir, &["replica"], &voting, &storage))
        .collect();
    let mut seen = Vec::new();
    for replica in &mut replicas {
        replica.start();
        let endpoint = replica.endpoint.clone().unwrap();
        let status = caught_up(&endpoint, tail);
        let ledger = mine_status(&endpoint, admin)["miner"].clone();
        seen.push((
            status["applied_seq"].clone(),
            status["state_digest"].clone(),
            ledger,
        ));
    }
    assert_eq!(seen[0], seen[1], "the replicas agree");
    assert_ne!(
        seen[0].2["rewards"], "0",
        "and the ledger holds the rewards"
    );
}
