//! An `ordo node` process with the storage role: shards that verify are
//! stored and served back; a shard that does not verify is refused and not
//! stored; a stored shard damaged under the service is never served; a
//! client without the cluster's certificate is refused.

use ordo_log::{Coder, EncodedEntry, RocksShardStore, ShardStore};
use ordo_proto::cluster::v1::shards_client::ShardsClient;
use ordo_proto::cluster::v1::{
    CheckShardsRequest, IdentifyRequest, ListShardsRequest, PutShardRequest, ShardKey,
    ShardMessage, ShardState,
};
use ordo_raft::PeerTls;
use ordo_server::node::services::shards::MAX_CHECK_KEYS;
use ordo_server::node::storage_set::{SHARD_CALL_TIMEOUT, StorageSet};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::transport::Channel;

mod common;

use common::cluster::{MemberProcess, initialize, log_members, make_certs};

/// A client of the member's shard service, over the cluster's TLS.
fn shards_client(node: &MemberProcess, tls: &PeerTls) -> ShardsClient<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://{}", node.addr))
        .expect("endpoint")
        .tls_config(tls.client())
        .expect("tls")
        .timeout(Duration::from_secs(10));
    ShardsClient::new(endpoint.connect_lazy())
}

fn entry() -> EncodedEntry {
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    Coder::new().encode(&payload, 4096, 4, 2).expect("encodes")
}

fn put_request(entry: &EncodedEntry, index: usize) -> PutShardRequest {
    let shard = &entry.shards[index];
    PutShardRequest {
        commitment: entry.commitment.to_vec(),
        geometry: entry.geometry.to_bytes().to_vec(),
        shard: Some(ShardMessage {
            index: u32::from(shard.index),
            data: shard.bytes.clone(),
            proof: shard.proof.iter().map(|h| h.to_vec()).collect(),
        }),
    }
}

fn key(entry: &EncodedEntry, index: u32) -> ShardKey {
    ShardKey {
        commitment: entry.commitment.to_vec(),
        geometry: entry.geometry.to_bytes().to_vec(),
        index,
    }
}

/// A storage node started alone under `dir` holding shards 0 to 4 of
/// [`entry`], with the admin's credentials.
async fn storage_node_holding_five_shards(
    dir: &std::path::Path,
) -> (MemberProcess, PeerTls, EncodedEntry) {
    make_certs(dir, &[1]);
    let tls = PeerTls::load(&dir.join("certs"), "admin").expect("credentials");
    let mut node = MemberProcess::new(1, dir, &["storage"]);
    node.start();
    let mut client = shards_client(&node, &tls);
    let entry = entry();
    for index in 0..5 {
        let stored = client.put(put_request(&entry, index)).await;
        stored.expect("a good shard is stored");
    }
    (node, tls, entry)
}

/// Damages the shard `index` of `entry` on `node`'s disk while it is
/// stopped, as a failing disk would (past the store's own checks).
fn damage_stored_shard(node: &mut MemberProcess, entry: &EncodedEntry, index: usize) {
    node.stop();
    {
        let store = RocksShardStore::open(node.data_dir.join("shards")).expect("opens");
        let mut damaged = entry.shards[index].clone();
        damaged.bytes[7] ^= 0x40;
        store.put(&entry.commitment, &damaged).expect("overwrites");
    }
    node.start();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_node_stores_and_serves_only_shards_that_verify() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut node, tls, entry) = storage_node_holding_five_shards(dir.path()).await;
    let mut client = shards_client(&node, &tls);
    let mut flipped = put_request(&entry, 5);
    flipped.shard.as_mut().expect("shard").data[100] ^= 1;
    let refused = client.put(flipped).await.expect_err("a damaged shard");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
    let held = client
        .has(key(&entry, 5))
        .await
        .expect("has")
        .into_inner()
        .held;
    assert!(!held, "a refused shard is not stored");
    let list = ListShardsRequest {
        commitment: entry.commitment.to_vec(),
    };
    let indices = client.list(list).await.expect("list").into_inner().indices;
    assert_eq!(indices, vec![0, 1, 2, 3, 4]);
    let got = client.get(key(&entry, 2)).await.expect("get").into_inner();
    assert_eq!(got.data, entry.shards[2].bytes, "served as stored");
    let missing = client.get(key(&entry, 5)).await.expect_err("not held");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let page = common::scrape(&node.metrics).await;
    for line in [
        "ordo_storage_shards_stored_total 5",
        "ordo_storage_shards_refused_total 1",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }

    // Damage shard 3 under the service (as a failing disk would, past the
    // store's own checks): the node must not serve it.
    damage_stored_shard(&mut node, &entry, 3);
    let mut client = shards_client(&node, &tls);
    let lost = client
        .get(key(&entry, 3))
        .await
        .expect_err("a damaged stored shard");
    assert_eq!(lost.code(), tonic::Code::DataLoss, "{lost}");
    client
        .get(key(&entry, 1))
        .await
        .expect("the others still serve");
    let page = common::scrape(&node.metrics).await;
    for line in [
        "ordo_storage_shards_stored_total 0",
        "ordo_storage_shards_refused_total 0",
        "ordo_storage_shards_damaged_total 1",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }

    let clear = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
        .expect("endpoint")
        .timeout(Duration::from_secs(5));
    let in_clear = match clear.connect().await {
        Ok(channel) => ShardsClient::new(channel)
            .put(put_request(&entry, 5))
            .await
            .err(),
        Err(e) => Some(tonic::Status::unavailable(e.to_string())),
    };
    assert!(in_clear.is_some(), "a client in the clear is refused");
    // A TLS client that trusts the cluster's authority but shows no
    // certificate of its own.
    let ca = std::fs::read_to_string(dir.path().join("certs").join("ca.pem")).expect("ca");
    let anonymous = tonic::transport::ClientTlsConfig::new()
        .domain_name(ordo_raft::tls::CLUSTER_NAME)
        .ca_certificate(tonic::transport::Certificate::from_pem(ca));
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://{}", node.addr))
        .expect("endpoint")
        .tls_config(anonymous)
        .expect("tls")
        .timeout(Duration::from_secs(5));
    let stranger = match endpoint.connect().await {
        Ok(channel) => ShardsClient::new(channel)
            .put(put_request(&entry, 5))
            .await
            .err(),
        Err(e) => Some(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        stranger.is_some(),
        "a TLS client without a certificate is refused"
    );
    node.stop();
}

/// Six storage processes (ids 1 to 6) with their files under `dir`, and
/// the set of them as the operator's client sees it.
fn six_storage_nodes(dir: &std::path::Path) -> (Vec<MemberProcess>, StorageSet) {
    let ids: Vec<u64> = (1..=6).collect();
    make_certs(dir, &ids);
    let tls = PeerTls::load(&dir.join("certs"), "admin").expect("credentials");
    let mut nodes: Vec<MemberProcess> = ids
        .iter()
        .map(|&id| MemberProcess::new(id, dir, &["storage"]))
        .collect();
    for node in &mut nodes {
        node.start();
    }
    let addrs: BTreeMap<u64, String> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
    let set = StorageSet::connect(&addrs, &tls).expect("clients");
    (nodes, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_placed_on_six_storage_nodes_survives_losing_any_two() {
    use ordo_server::node::storage_set::StorageSetError;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, set) = six_storage_nodes(dir.path());
    let entry = entry();
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let too_low = set.put_entry(&entry, 4).await;
    assert!(
        matches!(too_low, Err(StorageSetError::BadQuorum { .. })),
        "{too_low:?}"
    );
    assert_eq!(
        set.put_entry(&entry, 6).await.expect("stored everywhere"),
        6
    );
    let members = nodes.iter().map(|n| n.id).collect();
    let homes = ordo_log::placement::place(&entry.commitment, 6, &members).expect("placed");
    let distinct: std::collections::BTreeSet<_> = homes.iter().collect();
    assert_eq!(distinct.len(), 6, "one shard per node");

    for lost in [homes[0], homes[4]] {
        nodes[lost as usize - 1].kill();
    }
    let read = set.get_payload(&entry.commitment, &entry.geometry).await;
    assert_eq!(read.expect("rebuilt from four"), payload);

    nodes[homes[2] as usize - 1].kill();
    let short = set.get_payload(&entry.commitment, &entry.geometry).await;
    assert!(
        matches!(
            short,
            Err(StorageSetError::NotEnoughShards {
                found: 3,
                needed: 4,
                ..
            })
        ),
        "{short:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ask_the_data_shards_first_and_parity_only_for_a_lost_or_stalled_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, set) = six_storage_nodes(dir.path());
    // No hedge at first: parity shards are asked only when a get fails.
    let set = set.with_parity_hedge(Duration::from_secs(3600));
    let entry = entry();
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    set.put_entry(&entry, 6).await.expect("stored everywhere");
    let members = nodes.iter().map(|n| n.id).collect();
    let homes = ordo_log::placement::place(&entry.commitment, 6, &members).expect("placed");
    let node = |index: usize| homes[index] as usize - 1;
    let served = |node: &MemberProcess| {
        let page = node.metrics.clone();
        async move {
            common::metric(
                &common::scrape(&page).await,
                "ordo_storage_shards_served_total",
            )
        }
    };
    let read = |set: StorageSet| {
        let (commitment, geometry) = (entry.commitment, entry.geometry);
        async move {
            set.get_payload(&commitment, &geometry)
                .await
                .expect("rebuilt")
        }
    };

    assert_eq!(read(set.clone()).await, payload);
    for index in 0..6 {
        let expected = u64::from(index < 4);
        assert_eq!(served(&nodes[node(index)]).await, expected, "shard {index}");
    }

    nodes[node(1)].kill();
    assert_eq!(read(set.clone()).await, payload, "shard 4 stands in for 1");
    assert_eq!(served(&nodes[node(4)]).await, 1);
    assert_eq!(served(&nodes[node(5)]).await, 0, "asked only for a failure");

    // A member that takes the get and never answers: after the hedge the
    // last parity shard is asked too, long before the call's own timeout.
    let stalled = nix::unistd::Pid::from_raw(nodes[node(0)].pid() as i32);
    nix::sys::signal::kill(stalled, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    let started = std::time::Instant::now();
    let hedged = set.with_parity_hedge(Duration::from_millis(200));
    assert_eq!(read(hedged).await, payload, "shards 2, 3, 4 and 5");
    assert!(
        started.elapsed() < SHARD_CALL_TIMEOUT / 2,
        "the read waited {:?}",
        started.elapsed()
    );
    assert_eq!(served(&nodes[node(5)]).await, 1);
    nix::sys::signal::kill(stalled, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_the_shards_of_a_wiped_node_and_a_damaged_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, set) = six_storage_nodes(dir.path());
    let entry = entry();
    assert_eq!(set.put_entry(&entry, 6).await.expect("stored"), 6);
    let members = nodes.iter().map(|n| n.id).collect();
    let homes = ordo_log::placement::place(&entry.commitment, 6, &members).expect("placed");

    // Shard 1's home loses its disk; shard 3's home holds a damaged copy.
    let wiped = &mut nodes[homes[1] as usize - 1];
    wiped.stop();
    std::fs::remove_dir_all(&wiped.data_dir).expect("wipes");
    wiped.start();
    let damaged = &mut nodes[homes[3] as usize - 1];
    damaged.stop();
    {
        let store = RocksShardStore::open(damaged.data_dir.join("shards")).expect("opens");
        let mut shard = entry.shards[3].clone();
        shard.bytes[0] ^= 1;
        store.put(&entry.commitment, &shard).expect("overwrites");
    }
    damaged.start();

    let repaired = set
        .repair_entry(&entry.commitment, &entry.geometry)
        .await
        .expect("repairs");
    assert_eq!((repaired.healthy, repaired.restored), (4, vec![1, 3]));
    let again = set
        .repair_entry(&entry.commitment, &entry.geometry)
        .await
        .expect("checks");
    assert_eq!(
        (again.healthy, again.restored),
        (6, vec![]),
        "every home verifies now"
    );
}

/// Six members started under `dir`: the first `voters` are sequencer
/// voters and the first runs repair too, all store shards; the voters
/// form a cluster. Returns them and the operator's credentials.
async fn repairing_cluster(
    dir: &std::path::Path,
    voters: usize,
) -> (Vec<MemberProcess>, std::sync::Arc<PeerTls>) {
    let ids: Vec<u64> = (1..=6).collect();
    make_certs(dir, &ids);
    let tls = std::sync::Arc::new(PeerTls::load(&dir.join("certs"), "admin").expect("credentials"));
    let mut nodes: Vec<MemberProcess> = ids
        .iter()
        .map(|&id| match id as usize {
            1 => MemberProcess::new(id, dir, &common::cluster::REPAIRING_VOTER),
            i if i <= voters => MemberProcess::new(id, dir, &["sequencer", "storage"]),
            _ => MemberProcess::new(id, dir, &["storage"]),
        })
        .collect();
    let everyone: Vec<&MemberProcess> = nodes.iter().collect();
    nodes[0].add_config(&log_members(&everyone[..voters], &everyone));
    nodes[0].serve_clients();
    for node in &mut nodes {
        node.start();
    }
    let everyone: Vec<&MemberProcess> = nodes.iter().collect();
    initialize(&everyone[..voters], &tls).await;
    (nodes, tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_role_restores_a_wiped_storage_node_from_the_log() {
    use ordo_log::{EntryDescriptor, Sequencer};
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, tls) = repairing_cluster(dir.path(), 1).await;

    // Write three entries as a gateway would: shards first, then the header.
    let addrs: BTreeMap<u64, String> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
    let set = StorageSet::connect(&addrs, &tls).expect("clients");
    let sequencer = ordo_raft::RemoteSequencer::connect(vec![nodes[0].addr.clone()], tls.clone())
        .await
        .expect("sequencer");
    let mut entries = Vec::new();
    for i in 0..3u8 {
        let payload = vec![i; 30_000];
        let entry = ordo_log::Coder::new()
            .encode(&payload, 4096, 4, 2)
            .expect("encodes");
        assert_eq!(set.put_entry(&entry, 6).await.expect("stored"), 6);
        let descriptor = EntryDescriptor {
            commitment: entry.commitment,
            geometry: entry.geometry,
            tags: vec![],
            submitter: [9; 20],
        };
        sequencer.append(descriptor).await.expect("ordered");
        entries.push(entry);
    }

    // Wipe a storage node that holds shards of the first entry.
    let members = addrs.keys().copied().collect();
    let homes = ordo_log::placement::place(&entries[0].commitment, 6, &members).expect("placed");
    let victim = *homes
        .iter()
        .find(|&&m| m != 1)
        .expect("a home other than node 1");
    let wiped = &mut nodes[victim as usize - 1];
    wiped.stop();
    std::fs::remove_dir_all(&wiped.data_dir).expect("wipes");
    wiped.start();
    let held: usize = entries
        .iter()
        .map(|e| {
            let homes = ordo_log::placement::place(&e.commitment, 6, &members).expect("placed");
            homes.iter().filter(|&&m| m == victim).count()
        })
        .sum();

    let expected = format!("ordo_repair_shards_restored_total {held}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !common::scrape(&nodes[0].metrics).await.contains(&expected) {
        assert!(
            std::time::Instant::now() < deadline,
            "repair did not restore {held} shards"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for entry in &entries {
        let checked = set
            .repair_entry(&entry.commitment, &entry.geometry)
            .await
            .expect("checks");
        assert_eq!(
            (checked.healthy, checked.restored),
            (6, vec![]),
            "every home verifies"
        );
    }

    // With nothing new in the log and no member changed, passes go on and
    // neither read nor check a shard on any storage member.
    let checks = async || {
        let mut total = 0;
        for node in &nodes {
            let page = common::scrape(&node.metrics).await;
            total += common::metric(&page, "ordo_storage_shards_served_total");
            total += common::metric(&page, "ordo_storage_shards_checked_total");
        }
        total
    };
    let passes = async || {
        common::metric(
            &common::scrape(&nodes[0].metrics).await,
            "ordo_repair_passes_total",
        )
    };
    let (before, from) = (checks().await, passes().await);
    while passes().await < from + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no further repair passes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(checks().await, before, "idle passes checked shards");
}

/// `Check` answers for `indices` of `entry`, as states.
async fn check(
    client: &mut ShardsClient<Channel>,
    entry: &EncodedEntry,
    indices: std::ops::Range<u32>,
    verify: bool,
) -> Vec<ShardState> {
    let keys = indices.map(|index| key(entry, index)).collect();
    let answer = client.check(CheckShardsRequest { keys, verify }).await;
    let states = answer.expect("check").into_inner().states;
    states
        .into_iter()
        .map(|state| ShardState::try_from(state).expect("a known state"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_node_checks_many_shards_in_one_call_and_says_when_it_restarted() {
    use ShardState::{Damaged, Held, Missing};
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut node, tls, entry) = storage_node_holding_five_shards(dir.path()).await;
    let mut client = shards_client(&node, &tls);
    let first = client.identify(IdentifyRequest {}).await.expect("identify");
    let first = first.into_inner();
    assert_eq!((first.boot_id.len(), first.damaged), (16, 0));
    let expected = vec![Held, Held, Held, Held, Held, Missing];
    assert_eq!(check(&mut client, &entry, 0..6, false).await, expected);
    assert_eq!(check(&mut client, &entry, 0..6, true).await, expected);

    // Damaged on disk while stopped: a new boot id; a presence check
    // still finds the shard, a verifying one finds it damaged and counts.
    damage_stored_shard(&mut node, &entry, 3);
    let mut client = shards_client(&node, &tls);
    let second = client.identify(IdentifyRequest {}).await.expect("identify");
    assert_ne!(
        second.into_inner().boot_id,
        first.boot_id,
        "a restart shows"
    );
    assert_eq!(check(&mut client, &entry, 3..4, false).await, vec![Held]);
    assert_eq!(
        check(&mut client, &entry, 2..5, true).await,
        vec![Held, Damaged, Held]
    );
    let third = client.identify(IdentifyRequest {}).await.expect("identify");
    assert_eq!(third.into_inner().damaged, 1, "the damage found is told");

    // Too many keys, or a malformed one: refused, typed.
    let many = (0..=MAX_CHECK_KEYS as u32)
        .map(|i| key(&entry, i % 6))
        .collect();
    let refused = client
        .check(CheckShardsRequest {
            keys: many,
            verify: false,
        })
        .await;
    assert_eq!(
        refused.expect_err("too many").code(),
        tonic::Code::InvalidArgument
    );
    let mut short = key(&entry, 0);
    short.commitment.pop();
    let refused = client
        .check(CheckShardsRequest {
            keys: vec![short],
            verify: true,
        })
        .await;
    assert_eq!(
        refused.expect_err("malformed").code(),
        tonic::Code::InvalidArgument
    );
    let page = common::scrape(&node.metrics).await;
    assert!(
        page.contains("ordo_storage_shards_checked_total 4\n"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_repair_follows_three_voters_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, _) = repairing_cluster(dir.path(), 3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !common::scrape(&nodes[0].metrics)
        .await
        .contains("ordo_repair_passes_total 1")
    {
        assert!(std::time::Instant::now() < deadline, "no repair pass");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // As `scripts/cluster.sh stop` does: every member told at once.
    for node in &nodes {
        node.terminate();
    }
    for node in &mut nodes {
        node.stop_after_terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_stream_answers_each_shard_in_order_and_outlives_a_refused_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (node, tls, _) = storage_node_holding_five_shards(dir.path()).await;
    let mut client = shards_client(&node, &tls);
    let fresh = Coder::new()
        .encode(&[9u8; 20_000], 4096, 4, 2)
        .expect("encodes");
    let mut flipped = put_request(&fresh, 1);
    flipped.shard.as_mut().expect("shard").data[3] ^= 1;
    let puts = vec![put_request(&fresh, 0), flipped, put_request(&fresh, 2)];
    let mut answers = (client.put_many(tokio_stream::iter(puts)).await)
        .expect("the stream opens")
        .into_inner();
    let mut codes = Vec::new();
    while let Some(answer) = answers.message().await.expect("answers") {
        codes.push(tonic::Code::from_i32(answer.code));
    }
    use tonic::Code::{InvalidArgument, Ok};
    assert_eq!(codes, vec![Ok, InvalidArgument, Ok], "in order, one each");
    let list = ListShardsRequest {
        commitment: fresh.commitment.to_vec(),
    };
    let indices = client.list(list).await.expect("list").into_inner().indices;
    assert_eq!(indices, vec![0, 2], "the refused shard alone is not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_puts_reach_a_storage_node_again_after_it_restarts() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut nodes, set) = six_storage_nodes(dir.path());
    let first = entry();
    assert_eq!(set.put_entry(&first, 6).await.expect("stored"), 6);
    // Every shard of the next entries needs every node: a put stream the
    // restart broke must be opened again, not fail the put.
    nodes[2].kill();
    nodes[2].start();
    for fill in [1u8, 2] {
        let next = Coder::new()
            .encode(&[fill; 30_000], 4096, 4, 2)
            .expect("encodes");
        let stored = set.put_entry(&next, 6).await;
        assert_eq!(stored.expect("stored on all six after the restart"), 6);
    }
}
