//! Mining on the raft cluster, as separate processes: three voters that
//! store shards, a member that stores shards and runs a gateway with its
//! replica, and one that stores shards and runs a replica only, submitting
//! through the other's gateway; both have a `[mining]` table. Once the
//! log's admin turns mining on, both earn rewards for the shards they
//! hold; two read replicas started afterwards, reading shards from the
//! voters once both miners stopped, reach the same digest and ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{MemberProcess, initialize, log_members, make_certs};
use common::{configure_mining, mine_status, mined_and_credited, ordo, register_times, stdout};
use std::time::{Duration, Instant};

const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";
const QUIET_BENEFICIARY: &str = "0xcececececececececececececececececececece";
/// How long the miner may take to earn its first reward.
const EARN_BOUND: Duration = Duration::from_secs(90);

/// The two miners, not started: member 4 stores shards and runs a
/// gateway with its replica; member 7 stores shards and runs a replica,
/// and submits through member 4's gateway. Entries are coded 2+2 over
/// five storage members, so any two of them may stop.
fn miners(dir: &std::path::Path, voters: &[&MemberProcess]) -> (MemberProcess, MemberProcess) {
    let mut gateway = MemberProcess::new(4, dir, &["storage", "gateway", "replica"]);
    let mut quiet = MemberProcess::new(7, dir, &["storage", "replica"]);
    let storage: Vec<&MemberProcess> = voters.iter().copied().chain([&gateway, &quiet]).collect();
    let members = log_members(voters, &storage);
    let mut endpoints = Vec::new();
    for member in [&gateway, &quiet] {
        let listen = format!("127.0.0.1:{}", common::cluster::free_port());
        member.add_config(&format!(
            "listen = \"{listen}\"\ndata_shards = 2\nparity_shards = 2\n{members}"
        ));
        endpoints.push(format!("http://{listen}"));
    }
    let mining = format!("[mining]\nbeneficiary = \"{BENEFICIARY}\"\ncpu_share = 1.0\n");
    gateway.add_config(&mining);
    let own = format!("[mining]\nbeneficiary = \"{QUIET_BENEFICIARY}\"\ncpu_share = 1.0\n");
    quiet.add_config(&format!("{own}submit_to = \"{}\"\n", endpoints[0]));
    quiet.endpoint = endpoints.pop();
    gateway.endpoint = endpoints.pop();
    (gateway, quiet)
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
async fn two_members_mine_one_through_the_others_gateway_and_replicas_agree_on_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_certs(dir, &[1, 2, 3, 4, 5, 6, 7]);
    let tls = ordo_raft::PeerTls::load(&dir.join("certs"), "admin").unwrap();
    let mut voters: Vec<MemberProcess> = (1..=3)
        .map(|id| MemberProcess::new(id, dir, &["sequencer", "storage"]))
        .collect();
    for voter in &mut voters {
        voter.start();
    }
    let voting: Vec<&MemberProcess> = voters.iter().collect();
    initialize(&voting, &tls).await;
    let (mut gateway, mut quiet) = miners(dir, &voting);
    gateway.start();
    quiet.start();
    let endpoint = gateway.endpoint.clone().unwrap();
    let admin = gateway.data_dir.join("node.key");
    let admin = admin.to_str().unwrap();
    let quiet_key = quiet.data_dir.join("node.key");
    let quiet_key = quiet_key.to_str().unwrap();

    // Hits rare enough (about one a round for a member holding a fifth of
    // the chunks) that neither miner fills an epoch's cap of 32 at once:
    // an epoch whose cap is full takes no more proofs, and on a log nobody
    // else writes no entry would close it.
    stdout(&configure_mining(&endpoint, admin, [4, 16, 1000, 5]));
    register_times(&endpoint, &dir.join("other.key"), 4, BENEFICIARY);
    // Each miner, asked through its own replica, had a proof accepted, and
    // each beneficiary holds rewards.
    mined_and_credited(&endpoint, admin, EARN_BOUND);
    let through = mined_and_credited(quiet.endpoint.as_ref().unwrap(), quiet_key, EARN_BOUND);
    for member in [&gateway, &quiet] {
        let page = common::scrape(&member.metrics).await;
        assert!(common::metric(&page, "ordo_mining_proofs_accepted_total") >= 1);
    }
    // The member without a gateway mined as its own account.
    assert_eq!(
        through["node_miner"]["account"],
        through["miner"]["account"]
    );
    quiet.stop();
    let before = stdout(&ordo(&["status", "--endpoint", &endpoint, "--json"]));
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    let tail = before["log_tail"].as_u64().unwrap();
    // Nothing writes the log once the gateway stopped: each replica below
    // applies everything ordered.
    gateway.stop();

    // Two read replicas, reading from the voters' shards alone (2 of 4).
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
