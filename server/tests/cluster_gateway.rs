//! A whole cluster as separate processes: three raft voters that also
//! store shards, more storage members, a gateway with its replica, and
//! read replicas, under the faults a cluster must survive: a read replica
//! killed with SIGKILL mid-replay, or started late; storage members killed
//! under commits, wiped, or with every shard damaged; the raft leader
//! killed under commits, or cut off from the other voters. In each, every
//! acknowledged commit is served and replicas reach the gateway's state
//! digest.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{
    MemberProcess, client_member, cluster_status, initialize_as, make_certs, start_log,
};
use common::proxy::Proxy;
use ordo_client::{Client, ClientError};
use ordo_proto::v1::GetStatusResponse;
use ordo_txn::SigningKey;
use ordo_txn::testkit::signing_key as key;
use std::time::Duration;

/// Commits per writer: enough entries that a replica is still catching up
/// when it is killed.
const COMMITS_PER_WRITER: u64 = 120;
/// How long a replica may take to catch up with the gateway.
const CATCH_UP_BOUND: Duration = Duration::from_secs(60);

/// Starts gateway `id` over `log`, which founds the log, and creates
/// `owner`'s stream "s" through it.
async fn start_gateway(
    id: u64,
    dir: &std::path::Path,
    log: &[MemberProcess],
    owner: &SigningKey,
) -> (MemberProcess, Client, [u8; 32]) {
    let mut gateway = client_member(id, dir, &["gateway", "replica"], log);
    gateway.start();
    let client = Client::connect(gateway.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let stream = create_stream(&client, owner).await;
    (gateway, client, stream)
}

async fn status(member: &MemberProcess) -> GetStatusResponse {
    let client = Client::connect(member.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    client.status().await.unwrap()
}

/// Creates `owner`'s stream "s" through `client`; returns its id.
async fn create_stream(client: &Client, owner: &SigningKey) -> [u8; 32] {
    client
        .transact(owner, async |tx| {
            tx.acl(ordo_txn::AclOp::CreateStream {
                name: b"s".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    ordo_txn::stream_id(&ordo_txn::address_of(owner), b"s")
}

/// Writes `per_writer` distinct keys from each of four concurrent
/// writers, every commit succeeding at its first attempt; returns every
/// acknowledged (key, value).
async fn write_through(
    client: &Client,
    owner: &SigningKey,
    stream: [u8; 32],
    phase: &str,
    per_writer: u64,
) -> Vec<(String, String)> {
    let (written, failed) = write_retrying(client, owner, stream, phase, per_writer).await;
    assert_eq!(failed, 0, "every commit of phase {phase} succeeded at once");
    written
}

/// Polls `member`'s status until `done` holds, within `bound`.
async fn wait_status(
    member: &MemberProcess,
    bound: Duration,
    done: impl Fn(&GetStatusResponse) -> bool,
) -> GetStatusResponse {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let now = status(member).await;
        if done(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {} not there within {bound:?}: {now:?}",
            member.id
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts read replica `id` over `log` and waits until it has applied
/// what `gateway` has, with the same state digest.
async fn replica_agreeing_with(
    id: u64,
    dir: &std::path::Path,
    log: &[MemberProcess],
    gateway: &MemberProcess,
) -> MemberProcess {
    let mut replica = client_member(id, dir, &["replica"], log);
    replica.start();
    let at_gateway = status(gateway).await;
    let target = at_gateway.applied_seq;
    let caught_up = wait_status(&replica, CATCH_UP_BOUND, |s| s.applied_seq >= target).await;
    assert_eq!(caught_up.state_digest, at_gateway.state_digest);
    replica
}

/// Every acknowledged write reads back on `member` with its value.
async fn assert_serves(member: &MemberProcess, stream: [u8; 32], written: &[(String, String)]) {
    let client = Client::connect(member.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    for (key, value) in written {
        let read = client.get(stream, key.as_bytes()).await.unwrap();
        assert_eq!(
            read.as_deref(),
            Some(value.as_bytes()),
            "member {} serves {key}",
            member.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_mid_replay_or_started_late_reach_the_gateways_digest() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path(), 6, false).await;
    let owner = key(1);
    let (mut gateway, client, stream) = start_gateway(7, dir.path(), &log, &owner).await;
    let written = write_through(&client, &owner, stream, "load", COMMITS_PER_WRITER).await;
    let at_gateway = status(&gateway).await;
    assert!(
        at_gateway.log_tail > 100,
        "enough entries to catch a replica mid-replay: {at_gateway:?}"
    );
    assert_eq!(
        at_gateway.write_quorum, 5,
        "the gateway reports its quorum: 4+2 shards, the default k+m-1"
    );

    // A replica catching up from the storage members, killed half way.
    let mut replica = client_member(8, dir.path(), &["replica"], &log);
    replica.start();
    let half = at_gateway.applied_seq / 2;
    let before_kill = wait_status(&replica, CATCH_UP_BOUND, |s| s.applied_seq >= half).await;
    replica.kill();
    assert!(
        before_kill.applied_seq < at_gateway.applied_seq,
        "killed mid-replay: {before_kill:?}"
    );
    replica.start();
    let resumed = status(&replica).await;
    assert!(
        resumed.applied_seq >= before_kill.applied_seq,
        "resumes where it stopped, not from the start: {resumed:?} after {before_kill:?}"
    );
    let target = at_gateway.applied_seq;
    let caught_up = wait_status(&replica, CATCH_UP_BOUND, |s| s.applied_seq >= target).await;
    assert_eq!(caught_up.state_digest, at_gateway.state_digest);
    assert_eq!(caught_up.applied_version, at_gateway.applied_version);

    // A replica that joins after every write.
    let mut late = client_member(9, dir.path(), &["replica"], &log);
    late.start();
    let late_status = wait_status(&late, CATCH_UP_BOUND, |s| s.applied_seq >= target).await;
    assert_eq!(late_status.state_digest, at_gateway.state_digest);
    assert_eq!(late_status.write_quorum, 0, "a read replica waits for none");
    for member in [&gateway, &replica, &late] {
        assert_serves(member, stream, &written).await;
    }

    // A read replica takes no commits, with a typed error.
    let on_replica = Client::connect(late.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let refused = on_replica
        .transact(&owner, async |tx| {
            tx.put(stream, b"refused", b"x");
            Ok(())
        })
        .await;
    match refused {
        Err(ClientError::Status(s)) => {
            assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
            assert!(s.message().contains("read replica"), "{s:?}");
        }
        other => panic!("a read replica refuses commits: {other:?}"),
    }
    // Hang up first: a stopping member waits a while for open connections.
    drop((client, on_replica));
    for member in [&mut late, &mut replica, &mut gateway] {
        member.stop();
    }
}

/// Every committed header, read from the voters of `log`.
async fn committed_headers(
    log: &[MemberProcess],
    tls: &std::sync::Arc<ordo_raft::PeerTls>,
) -> Vec<ordo_log::EntryHeader> {
    use ordo_log::Sequencer;
    let voters = log[..3].iter().map(|n| n.addr.clone()).collect();
    let sequencer = ordo_raft::RemoteSequencer::connect(voters, tls.clone())
        .await
        .unwrap();
    let mut headers = Vec::new();
    while (headers.len() as u64) < sequencer.tail() {
        let from = headers.len() as u64;
        headers.extend(sequencer.read(from, 256).await.unwrap());
    }
    headers
}

/// Damages every shard the stopped storage member at `data_dir` holds, as
/// a failing disk would (one bit of each, the store's own checksum intact).
fn damage_every_shard(data_dir: &std::path::Path, headers: &[ordo_log::EntryHeader]) -> usize {
    use ordo_log::ShardStore;
    let store = ordo_log::RocksShardStore::open(data_dir.join("shards")).unwrap();
    let mut damaged = 0;
    for header in headers {
        let commitment = &header.entry.commitment;
        for index in store.list(commitment).unwrap() {
            let Ok(Some(mut shard)) = store.get(commitment, index) else {
                continue;
            };
            shard.bytes[0] ^= 1;
            store.put(commitment, &shard).unwrap();
            damaged += 1;
        }
    }
    damaged
}

/// Waits until every committed entry has each shard verified at its home.
async fn wait_all_shards_home(log: &[MemberProcess], tls: &std::sync::Arc<ordo_raft::PeerTls>) {
    let storage = log.iter().map(|n| (n.id, n.addr.clone())).collect();
    let set = ordo_server::node::storage_set::StorageSet::connect(&storage, tls).unwrap();
    let headers = committed_headers(log, tls).await;
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    let mut seq = 0;
    while seq < headers.len() {
        let entry = &headers[seq].entry;
        let broken = set
            .broken_homes(&entry.commitment, &entry.geometry)
            .await
            .unwrap();
        if broken.is_empty() {
            seq += 1;
            continue;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "entry {seq} still misses shards {broken:?} at home"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_go_on_with_two_storage_members_killed_and_repair_refills_a_wiped_and_a_damaged_one()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut log = start_log(dir.path(), 7, true).await;
    let owner = key(1);
    let (gateway, client, stream) = start_gateway(8, dir.path(), &log, &owner).await;
    let mut written = write_through(&client, &owner, stream, "before", 40).await;

    // Two storage members die while four writers commit.
    let started = status(&gateway).await.applied_version;
    let kill = async {
        wait_status(&gateway, CATCH_UP_BOUND, |s| {
            s.applied_version >= started + 40
        })
        .await;
        log[4].kill();
        log[5].kill();
    };
    let (during, ()) = tokio::join!(write_through(&client, &owner, stream, "during", 40), kill);
    written.extend(during);
    written.extend(write_through(&client, &owner, stream, "after", 40).await);

    // A replica started now reads every entry from the five left.
    let replica = replica_agreeing_with(9, dir.path(), &log, &gateway).await;
    assert_serves(&replica, stream, &written).await;

    // One comes back wiped, the other as it was: repair refills both.
    std::fs::remove_dir_all(log[4].data_dir.join("shards")).unwrap();
    log[4].start();
    log[5].start();
    let tls =
        std::sync::Arc::new(ordo_raft::PeerTls::load(&dir.path().join("certs"), "admin").unwrap());
    wait_all_shards_home(&log, &tls).await;
    let page = common::scrape(&log[0].metrics).await;
    assert!(
        !page.contains("ordo_repair_shards_restored_total 0\n"),
        "repair restored the shards: {page}"
    );
    wait_for_status_reports(&log[0], dir.path(), 7, &[8, 9]).await;

    // A storage member's disk goes bad under every shard it holds: no
    // reader uses one (a new replica still agrees with the gateway), the
    // member counts what it refused to serve, and repair stores good
    // copies again.
    log[3].stop();
    let headers = committed_headers(&log, &tls).await;
    assert!(damage_every_shard(&log[3].data_dir, &headers) > 0);
    log[3].start();
    let second = replica_agreeing_with(10, dir.path(), &log, &gateway).await;
    assert_serves(&second, stream, &written).await;
    wait_all_shards_home(&log, &tls).await;
    let page = common::scrape(&log[3].metrics).await;
    assert!(
        !page.contains("ordo_storage_shards_damaged_total 0\n"),
        "the damaged shards were detected: {page}"
    );
    drop(client);
    for mut member in [second, replica, gateway] {
        member.stop();
    }
}

/// The voter among `voters` whose metrics say it leads, once one does.
async fn leader_among(voters: &[MemberProcess], not: Option<u64>) -> usize {
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    loop {
        for (i, voter) in voters.iter().enumerate() {
            if voter.running() && Some(voter.id) != not {
                let page = common::scrape(&voter.metrics).await;
                if page.contains("ordo_raft_is_leader 1\n") {
                    return i;
                }
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Like [`write_through`], but a commit that fails (its gateway lost the
/// sequencer's leader) is tried again, a bounded number of times; returns
/// the acknowledged writes and how many attempts failed.
async fn write_retrying(
    client: &Client,
    owner: &SigningKey,
    stream: [u8; 32],
    phase: &str,
    per_writer: u64,
) -> (Vec<(String, String)>, usize) {
    const ATTEMPTS: usize = 100;
    let writer = async |writer: u64| {
        let (mut written, mut failed) = (Vec::new(), 0);
        for i in 0..per_writer {
            let (key, value) = (format!("{phase}/w{writer}/k{i}"), format!("v{writer}.{i}"));
            for attempt in 1..=ATTEMPTS {
                let put = async |tx: &mut ordo_client::txn::TxContext<'_>| {
                    tx.put(stream, key.as_bytes(), value.as_bytes());
                    Ok(())
                };
                match client.transact(owner, put).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(attempt < ATTEMPTS, "{key} never committed: {e}");
                        failed += 1;
                        // Back off while the voters elect a leader.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            written.push((key, value));
        }
        (written, failed)
    };
    let all = tokio::join!(writer(0), writer(1), writer(2), writer(3));
    let mut written = Vec::new();
    let mut failed = 0;
    for (w, f) in [all.0, all.1, all.2, all.3] {
        written.extend(w);
        failed += f;
    }
    (written, failed)
}

/// The voter's header tail, from its metrics.
async fn header_tail(voter: &MemberProcess) -> u64 {
    member_metric(voter, "ordo_raft_header_tail").await
}

/// The value of the unlabelled metric `name` on `member`'s page.
async fn member_metric(member: &MemberProcess, name: &str) -> u64 {
    let page = common::scrape(&member.metrics).await;
    let prefix = format!("{name} ");
    let line = (page.lines())
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("member {} reports {name}: {page}", member.id));
    line[prefix.len()..].trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_raft_leader_under_commits_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = start_log(dir.path(), 6, false).await;
    let owner = key(1);
    let (gateway, client, stream) = start_gateway(7, dir.path(), &log, &owner).await;
    let leader = leader_among(&log[..3], None).await;
    let started = status(&gateway).await.applied_version;
    let kill = async {
        wait_status(&gateway, CATCH_UP_BOUND, |s| {
            s.applied_version >= started + 40
        })
        .await;
        log[leader].kill();
        let killed_at = tokio::time::Instant::now();
        let next = leader_among(&log[..3], Some(log[leader].id)).await;
        (next, killed_at.elapsed())
    };
    let ((written, failed), (next, elected_after)) =
        tokio::join!(write_retrying(&client, &owner, stream, "load", 60), kill);
    assert_ne!(next, leader);
    assert!(
        elected_after < Duration::from_secs(5),
        "new leader after {elected_after:?}"
    );
    println!("new leader after {elected_after:?}; {failed} commit attempts failed over");
    // Commits go on after the election: one more round, no failures.
    let (after, failed_after) = write_retrying(&client, &owner, stream, "after", 5).await;
    assert_eq!(failed_after, 0, "commits resumed");

    // The old leader comes back and catches up.
    log[leader].start();
    let tail = header_tail(&log[next]).await;
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    while header_tail(&log[leader]).await < tail {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old leader catches up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every acknowledged commit is in the log: a new replica serves it.
    let replica = replica_agreeing_with(8, dir.path(), &log, &gateway).await;
    assert_serves(&replica, stream, &written).await;
    assert_serves(&replica, stream, &after).await;
    drop(client);
    for mut member in [replica, gateway] {
        member.stop();
    }
}

/// Voters 1-3 on loopback addresses of their own (127.0.0.11-13), each
/// behind a proxy that the others dial, and storage members 4-6; formed
/// into a cluster whose raft traffic all passes the proxies.
async fn partitionable_log(dir: &std::path::Path) -> (Vec<MemberProcess>, Vec<Proxy>) {
    make_certs(dir, &(1..=8).collect::<Vec<u64>>());
    let tls = ordo_raft::PeerTls::load(&dir.join("certs"), "admin").unwrap();
    let mut nodes: Vec<MemberProcess> = (1..=6u64)
        .map(|id| match id {
            1..=3 => MemberProcess::new_on(
                id,
                dir,
                &["sequencer", "storage"],
                &format!("127.0.0.1{id}"),
            ),
            _ => MemberProcess::new(id, dir, &["storage"]),
        })
        .collect();
    for node in &mut nodes {
        node.start();
    }
    let mut proxies = Vec::new();
    for voter in &nodes[..3] {
        proxies.push(Proxy::start(voter.addr.parse().unwrap()).await);
    }
    let members = (nodes[..3].iter().zip(&proxies))
        .map(|(voter, proxy)| (voter.id, proxy.addr.to_string()))
        .collect();
    initialize_as(&nodes[0].addr, members, &tls).await;
    (nodes, proxies)
}

/// Appends one header straight to `voter`, as a member would.
async fn append_directly(voter: &MemberProcess, tls: &ordo_raft::PeerTls) -> Result<u64, String> {
    use ordo_proto::cluster::v1::AppendRequest;
    let header = ordo_log::EntryHeader {
        seq: 0,
        entry: ordo_log::EntryDescriptor {
            commitment: [7; 32],
            geometry: ordo_log::Geometry::new(1000, 4096, 4, 2).unwrap(),
            tags: vec![],
            submitter: [0; 20],
        },
    };
    let request = AppendRequest {
        descriptors: vec![header.encode()],
    };
    let mut client = ordo_raft::network::peer_client(&voter.addr, tls).unwrap();
    match client.append(request).await {
        Ok(reply) => Ok(reply.into_inner().first_seq),
        Err(status) => Err(status.to_string()),
    }
}

/// Every voter's committed headers, once their tails agree.
async fn converged_headers(
    voters: &[MemberProcess],
    tls: &ordo_raft::PeerTls,
) -> Vec<Vec<Vec<u8>>> {
    use ordo_proto::cluster::v1::HeadersRequest;
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    loop {
        let mut tails = Vec::new();
        for voter in voters {
            tails.push(header_tail(voter).await);
        }
        if tails.iter().all(|t| *t == tails[0]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tails differ: {tails:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = Vec::new();
    for voter in voters {
        let mut client = ordo_raft::network::peer_client(&voter.addr, tls).unwrap();
        let (mut headers, mut from) = (Vec::new(), 0);
        loop {
            let request = HeadersRequest {
                from_seq: from,
                max: 256,
            };
            let batch = client.headers(request).await.unwrap().into_inner().headers;
            if batch.is_empty() {
                break;
            }
            from += batch.len() as u64;
            headers.extend(batch);
        }
        all.push(headers);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_voters_acknowledges_nothing_and_every_member_converges() {
    partition_the_leader_then_heal(false).await;
}

/// The same partition as a network that drops packets makes it: nothing
/// is reset, the cut connections stay open and silent, even after the
/// heal. Members must notice the silence (raft's streams time out and are
/// retired, a new term's leader dials afresh) and connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_behind_a_silent_partition_acknowledges_nothing_and_every_member_converges() {
    partition_the_leader_then_heal(true).await;
}

/// Cuts the leader off from the other voters (`silent`: dropping bytes
/// instead of closing connections) under writes through a gateway, then
/// heals: the cut-off side acknowledges nothing, the others go on, and
/// afterwards every voter holds one log and a new replica serves every
/// acknowledged write.
async fn partition_the_leader_then_heal(silent: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (log, proxies) = partitionable_log(dir.path()).await;
    let tls = ordo_raft::PeerTls::load(&dir.path().join("certs"), "admin").unwrap();
    let owner = key(1);
    let (gateway, client, stream) = start_gateway(7, dir.path(), &log, &owner).await;
    let (mut written, _) = write_retrying(&client, &owner, stream, "before", 10).await;

    // Cut the leader off from the other voters, both ways.
    let leader = leader_among(&log[..3], None).await;
    let leader_ip: std::net::IpAddr = format!("127.0.0.1{}", log[leader].id).parse().unwrap();
    for (i, proxy) in proxies.iter().enumerate() {
        match (i == leader, silent) {
            (true, false) => proxy.cut_everyone(),
            (false, false) => proxy.cut_from(leader_ip),
            (true, true) => proxy.silence_everyone(),
            (false, true) => proxy.silence_from(leader_ip),
        }
    }
    // The minority side takes an append but never acknowledges it; the
    // majority elects a leader and commits go on through the gateway.
    let minority =
        tokio::time::timeout(Duration::from_secs(5), append_directly(&log[leader], &tls));
    let ((during, failed), minority, next) = tokio::join!(
        write_retrying(&client, &owner, stream, "during", 10),
        minority,
        leader_among(&log[..3], Some(log[leader].id)),
    );
    assert!(
        !matches!(minority, Ok(Ok(_))),
        "the cut-off leader acknowledged {minority:?}"
    );
    assert_ne!(next, leader);
    println!("{failed} commit attempts failed while the leader was cut off");
    written.extend(during);

    // Heal: every voter holds the same headers, and a new replica agrees
    // with the gateway and serves every acknowledged commit.
    for proxy in &proxies {
        proxy.heal();
    }
    let headers = converged_headers(&log[..3], &tls).await;
    assert!(
        headers.iter().all(|h| *h == headers[0]),
        "voters hold the same log"
    );
    let replica = replica_agreeing_with(8, dir.path(), &log, &gateway).await;
    assert_serves(&replica, stream, &written).await;
    drop(client);
    for mut member in [replica, gateway] {
        member.stop();
    }
}

/// Waits until `ordo cluster status` shows every one of `storage` members
/// holding shards, repair finding nothing under-replicated, and each of
/// `replicas` caught up with the voters' tail.
async fn wait_for_status_reports(
    voter: &MemberProcess,
    dir: &std::path::Path,
    storage: u64,
    replicas: &[u64],
) {
    wait_for_reports(voter, dir, |of| {
        let stores =
            (1..=storage).all(|id| of(id).is_some_and(|r| r["shards_held"].as_u64() > Some(0)));
        let repaired = of(1)
            .is_some_and(|r| r["under_replicated"] == 0 && r["repair_passes"].as_u64() > Some(0));
        let caught_up = replicas.iter().all(|&id| {
            of(id).is_some_and(|r| r["replica_lag"] == 0 && r["client_addr"].is_string())
        });
        stores && repaired && caught_up
    })
    .await;
}

/// A member's report, by id, in `ordo cluster status --json`.
type ReportOf<'a> = &'a dyn Fn(u64) -> Option<serde_json::Value>;

/// Asks `voter` for `ordo cluster status` until `done` holds of the
/// reports, within [`CATCH_UP_BOUND`].
async fn wait_for_reports(
    voter: &MemberProcess,
    dir: &std::path::Path,
    done: impl Fn(ReportOf<'_>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    loop {
        let status = cluster_status(voter, dir);
        let reported = status["reported"].as_array().unwrap().clone();
        let of = |id: u64| reported.iter().find(|r| r["id"] == id).cloned();
        if done(&of) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never showed it: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ordo cluster storage add` through `gateway`, signed with its key (the
/// founding gateway's key is the log's admin).
fn record_storage_member(gateway: &MemberProcess, member: &MemberProcess) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["cluster", "storage", "add", "--id", &member.id.to_string()])
        .args(["--addr", &member.addr, "--endpoint"])
        .arg(gateway.endpoint.as_ref().unwrap())
        .arg("--key")
        .arg(gateway.data_dir.join("node.key"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.starts_with(&format!("storage member {} at", member.id)),
        "{said}"
    );
}

/// The shards a storage member has stored since it started.
async fn shards_stored(member: &MemberProcess) -> u64 {
    member_metric(member, "ordo_storage_shards_stored_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_member_recorded_in_the_log_takes_shards_and_replicas_follow_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path(), 6, false).await;
    // A seventh storage member that no member's file names.
    let mut extra = MemberProcess::new(7, dir.path(), &["storage"]);
    extra.start();
    let owner = key(1);
    let (gateway, client, stream) = start_gateway(8, dir.path(), &log, &owner).await;
    let mut written = write_through(&client, &owner, stream, "before", 10).await;
    assert_eq!(shards_stored(&extra).await, 0, "no file names it yet");

    // Only the log's admin may record members: a stranger is refused.
    let stranger = client
        .transact(&owner, async |tx| {
            let key = ordo_txn::attest::storage_member_key(extra.id);
            tx.put(ordo_txn::attest::SYSTEM_STREAM, &key, extra.addr.as_bytes());
            Ok(())
        })
        .await;
    assert!(
        matches!(&stranger, Err(ClientError::Aborted { outcome, .. }) if outcome == "permission_denied"),
        "{stranger:?}"
    );
    // The log's admin records all seven; the gateway follows the record.
    for member in log.iter().chain([&extra]) {
        record_storage_member(&gateway, member);
    }
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    while shards_stored(&extra).await == 0 {
        written.extend(write_through(&client, &owner, stream, "after", 5).await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recorded member never took a shard: {}",
            common::scrape(&extra.metrics).await
        );
    }

    // A replica whose file names only the first six follows the record and
    // reads every entry, those with shards on the seventh included.
    let replica = replica_agreeing_with(9, dir.path(), &log, &gateway).await;
    assert_serves(&replica, stream, &written).await;
    drop(client);
    for mut member in [replica, gateway, extra] {
        member.stop();
    }
}

/// `ordo cluster storage ARGS` as the log's admin through `gateway`, with
/// the voters' reports read at the voter `peer`: whether it succeeded, and
/// what it printed.
fn storage_command(
    gateway: &MemberProcess,
    peer: &str,
    dir: &std::path::Path,
    args: &[&str],
) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["cluster", "storage"])
        .args(args)
        .arg("--endpoint")
        .arg(gateway.endpoint.as_ref().unwrap())
        .arg("--key")
        .arg(gateway.data_dir.join("node.key"))
        .args(["--peer", peer, "--tls-dir"])
        .arg(dir.join("certs"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Waits until member 1's repair reports placing shards on `homes`.
async fn wait_repair_homes(voter: &MemberProcess, dir: &std::path::Path, homes: &[u64]) {
    let homes = serde_json::json!(homes);
    wait_for_reports(voter, dir, |of| {
        of(1).is_some_and(|r| r["repair_homes"] == homes)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_member_is_removed_only_once_drained_and_repair_has_moved_its_shards_home() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = start_log(dir.path(), 7, true).await;
    let owner = key(1);
    let (gateway, client, stream) = start_gateway(8, dir.path(), &log, &owner).await;
    for member in &log {
        record_storage_member(&gateway, member);
    }
    let mut written = Vec::new();
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    while shards_stored(&log[6]).await == 0 {
        written.extend(write_through(&client, &owner, stream, "before", 5).await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "member 7 took no shard"
        );
    }
    let voter = log[0].addr.clone();
    let run = |args: &[&str]| storage_command(&gateway, &voter, dir.path(), args);

    // A member that still takes shards is not removed; nor is one the log
    // does not record.
    let (removed, said) = run(&["remove", "--id", "7"]);
    assert!(!removed && said.contains("drain it first"), "{said}");
    let (removed, said) = run(&["remove", "--id", "12"]);
    assert!(!removed && said.contains("not recorded"), "{said}");
    // Only the log's admin may drain a member (a stranger's record is
    // refused in replay, as every write to the system stream).
    let stranger = client
        .transact(&owner, async |tx| {
            let value = format!("{} draining", log[6].addr);
            let key = ordo_txn::attest::storage_member_key(7);
            tx.put(ordo_txn::attest::SYSTEM_STREAM, &key, value.as_bytes());
            Ok(())
        })
        .await;
    assert!(
        matches!(&stranger, Err(ClientError::Aborted { outcome, .. }) if outcome == "permission_denied"),
        "{stranger:?}"
    );

    // Member 6 is down while 7 drains: repair cannot bring every entry
    // home, so 7 may not go yet, though writes go on.
    log[5].kill();
    let (drained, said) = run(&["drain", "--id", "7"]);
    assert!(drained && said.contains("draining from version"), "{said}");
    written.extend(write_through(&client, &owner, stream, "draining", 5).await);
    wait_repair_homes(&log[0], dir.path(), &[1, 2, 3, 4, 5, 6]).await;
    let (removed, said) = run(&["remove", "--id", "7"]);
    assert!(!removed && said.contains("not at home"), "{said}");

    // Member 6 is back: repair settles every entry without 7, and then
    // the removal is recorded.
    log[5].start();
    let deadline = tokio::time::Instant::now() + CATCH_UP_BOUND;
    loop {
        let (removed, said) = run(&["remove", "--id", "7"]);
        if removed {
            assert!(said.contains("storage member 7 removed"), "{said}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never removable: {said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Nothing needs member 7 any more: wiped, every entry is at home on
    // the six, and a new replica reads every acknowledged write.
    log[6].kill();
    std::fs::remove_dir_all(&log[6].data_dir).unwrap();
    let tls =
        std::sync::Arc::new(ordo_raft::PeerTls::load(&dir.path().join("certs"), "admin").unwrap());
    wait_all_shards_home(&log[..6], &tls).await;
    written.extend(write_through(&client, &owner, stream, "after", 5).await);
    let replica = replica_agreeing_with(9, dir.path(), &log[..6], &gateway).await;
    assert_serves(&replica, stream, &written).await;

    // Six are left for 4+2 at the default quorum of five: one more may
    // drain, a second would leave too few to place on.
    let (drained, said) = run(&["drain", "--id", "6"]);
    assert!(drained, "{said}");
    let (drained, said) = run(&["drain", "--id", "5"]);
    assert!(!drained && said.contains("leaves 4 members"), "{said}");
    drop(client);
    for mut member in [replica, gateway] {
        member.stop();
    }
}
