//! Three `ordo node` processes running the sequencer role on loopback:
//! appends from several clients while the raft leader is killed with
//! SIGKILL. A new leader is elected within 5 s, appends resume, no
//! acknowledged header is lost, and the old leader, restarted, catches up
//! to the same header log.

use ordo_log::{EntryHeader, stress};
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::{
    AppendRequest, HeadersRequest, InitializeRequest, Member, StatusRequest,
};
use ordo_raft::PeerTls;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The bound on electing a new leader.
const ELECTION_BOUND: Duration = Duration::from_secs(5);
/// Appending clients, and the appends each makes.
const CLIENTS: u64 = 4;
const APPENDS_PER_CLIENT: u64 = 60;
/// Acknowledged appends before the leader is killed.
const BEFORE_KILL: usize = 60;
/// Bound on the whole load, and on any wait for catching up.
const LOAD_BOUND: Duration = Duration::from_secs(60);

mod common;

use common::cluster::{MemberProcess, make_certs};

/// A member's sequencer service, over the cluster's TLS.
fn client(member: &MemberProcess, tls: &PeerTls) -> SequencerClient<tonic::transport::Channel> {
    client_of(&member.addr, tls)
}

/// A client of the member at `addr`, over the cluster's TLS.
fn client_of(addr: &str, tls: &PeerTls) -> SequencerClient<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls.client())
        .expect("tls")
        .timeout(Duration::from_secs(5));
    SequencerClient::new(endpoint.connect_lazy())
}

/// The leader the reachable members agree on, if they do.
async fn agreed_leader(members: &[MemberProcess], tls: &PeerTls) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    for member in members.iter().filter(|m| m.running()) {
        let status = client(member, tls).status(StatusRequest {}).await.ok()?;
        seen.insert(status.into_inner().leader?);
    }
    let only = *seen.iter().next()?;
    let running = members.iter().any(|m| m.id == only && m.running());
    (seen.len() == 1 && running).then_some(only)
}

async fn wait_for_leader(members: &[MemberProcess], tls: &PeerTls, bound: Duration) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(leader) = agreed_leader(members, tls).await {
            return leader;
        }
        assert!(start.elapsed() < bound, "no agreed leader within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appends one descriptor through whichever member leads; `Some(seq)` when
/// acknowledged. Tries the members in turn while none answers.
async fn append_once(
    addrs: &[String],
    tls: &PeerTls,
    round: u64,
    client: u64,
    i: u64,
) -> Option<(u64, [u8; 32])> {
    let descriptor = stress::descriptor(round, client, i);
    let encoded = EntryHeader {
        seq: 0,
        entry: descriptor.clone(),
    }
    .encode();
    for attempt in 0..100 {
        let addr = &addrs[(client as usize + attempt) % addrs.len()];
        let mut rpc = client_of(addr, tls);
        let request = AppendRequest {
            descriptors: vec![encoded.clone()],
        };
        match rpc.append(request).await {
            Ok(reply) => return Some((reply.into_inner().first_seq, descriptor.commitment)),
            // Not the leader, or unreachable: nothing proposed, try another.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::Unavailable
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Anything else leaves the outcome unknown: not counted.
            Err(_) => return None,
        }
    }
    None
}

async fn headers_of(member: &MemberProcess, tls: &PeerTls, tail: u64) -> Vec<EntryHeader> {
    let mut headers = Vec::new();
    while (headers.len() as u64) < tail {
        let request = HeadersRequest {
            from_seq: headers.len() as u64,
            max: 1024,
        };
        let reply = client(member, tls)
            .headers(request)
            .await
            .expect("headers")
            .into_inner();
        assert!(
            !reply.headers.is_empty(),
            "member {} stops at {}",
            member.id,
            headers.len()
        );
        for bytes in reply.headers {
            headers.push(EntryHeader::decode(&bytes).expect("a valid header"));
        }
    }
    headers
}

async fn wait_for_tail(member: &MemberProcess, tls: &PeerTls, tail: u64) {
    let start = Instant::now();
    loop {
        if let Ok(status) = client(member, tls).status(StatusRequest {}).await
            && status.into_inner().header_tail >= tail
        {
            return;
        }
        assert!(
            start.elapsed() < LOAD_BOUND,
            "member {} did not reach {tail}",
            member.id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_raft_leader_under_load_loses_no_acknowledged_header() {
    let dir = tempfile::tempdir().expect("temporary directory");
    make_certs(dir.path(), &[1, 2, 3]);
    let tls = Arc::new(PeerTls::load(&dir.path().join("certs"), "admin").expect("credentials"));
    let mut members: Vec<MemberProcess> = (1..=3)
        .map(|id| MemberProcess::new(id, dir.path(), &["sequencer"]))
        .collect();
    for member in &mut members {
        member.start();
    }
    let voters = members
        .iter()
        .map(|m| Member {
            id: m.id,
            addr: m.addr.clone(),
        })
        .collect();
    client(&members[0], &tls)
        .initialize(InitializeRequest { voters })
        .await
        .expect("initializes");
    let first_leader = wait_for_leader(&members, &tls, ELECTION_BOUND).await;

    let addrs: Arc<Vec<String>> = Arc::new(members.iter().map(|m| m.addr.clone()).collect());
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + LOAD_BOUND;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (addrs, acknowledged, tls) = (addrs.clone(), acknowledged.clone(), tls.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_CLIENT {
                if Instant::now() > deadline {
                    break;
                }
                if let Some(acked) = append_once(&addrs, &tls, 1, client, i).await {
                    acknowledged.lock().await.push(acked);
                }
            }
        }));
    }
    while acknowledged.lock().await.len() < BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "the load stalled before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let old = members
        .iter()
        .position(|m| m.id == first_leader)
        .expect("leader");
    members[old].kill();
    let killed_at = Instant::now();
    let new_leader = wait_for_leader(&members, &tls, ELECTION_BOUND).await;
    assert_ne!(new_leader, first_leader);
    println!("new leader {new_leader} after {:?}", killed_at.elapsed());
    for client in clients {
        client.await.expect("client task");
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() as u64 > BEFORE_KILL as u64,
        "appends resumed after the kill"
    );

    let page = common::scrape(&members[new_leader as usize - 1].metrics).await;
    assert!(page.contains("ordo_raft_is_leader 1"), "{page}");
    // Concurrent appends share raft entries: without the leader's queue
    // every acknowledged append would be a raft entry of its own.
    let status = client(&members[new_leader as usize - 1], &tls)
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let entries = status.last_log_index.expect("a raft log");
    assert!(
        entries < acknowledged.len() as u64,
        "{} appends in {entries} raft entries",
        acknowledged.len()
    );
    members[old].start();
    let tail = acknowledged
        .iter()
        .map(|(seq, _)| seq + 1)
        .max()
        .expect("acknowledged");
    let mut logs = Vec::new();
    for member in &members {
        wait_for_tail(member, &tls, tail).await;
        logs.push(headers_of(member, &tls, tail).await);
    }
    for log in &logs {
        assert_eq!(
            log[..tail as usize],
            logs[0][..tail as usize],
            "one header log on every member"
        );
    }
    for (seq, commitment) in &acknowledged {
        assert_eq!(
            &logs[0][*seq as usize].entry.commitment, commitment,
            "acknowledged seq {seq} holds its entry"
        );
    }
}
