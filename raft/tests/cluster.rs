//! Three raft voters on loopback in one process: appends through any voter,
//! one order on all of them, a leader lost and a new one elected, the old
//! leader back and caught up. (The same with real processes and kill -9
//! lives with `ordo node`'s tests.)

use ordo_log::{EntryDescriptor, Sequencer, stress};
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::{AppendAnswer, AppendRequest, RaftMessage};
use ordo_raft::tls::{self, PeerTls};
use ordo_raft::{NodeId, RaftSequencer, VoterConfig, VoterServer};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How long the cluster may take to elect a leader: the bound.
const ELECTION_BOUND: Duration = Duration::from_secs(5);
/// How long a voter may take to catch up after a restart.
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);

struct Voter {
    id: NodeId,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    tls: Arc<PeerTls>,
    running: Option<(Arc<RaftSequencer>, VoterServer)>,
}

impl Voter {
    async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("binds");
        let config = VoterConfig {
            id: self.id,
            dir: self.dir.path().to_path_buf(),
            fault: None,
            tls: self.tls.clone(),
        };
        let voter = RaftSequencer::start(config).await.expect("starts");
        let server = VoterServer::spawn(voter.service(), listener, &self.tls).expect("serves");
        self.running = Some((voter, server));
    }

    async fn stop(&mut self) {
        let (voter, server) = self.running.take().expect("running");
        voter.shutdown().await;
        server.stop().await.expect("server stops");
    }

    fn sequencer(&self) -> Arc<RaftSequencer> {
        self.running.as_ref().expect("running").0.clone()
    }
}

/// A certificate directory with an authority, `node-1` to `node-3` and
/// `admin`.
fn cluster_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let holders = ["node-1", "node-2", "node-3", "admin"].map(String::from);
    tls::make_authority(dir.path(), &holders).expect("certificates");
    dir
}

async fn cluster_of_three(certs: &Path) -> Vec<Voter> {
    let mut voters = Vec::new();
    for id in 1..=3 {
        // Bind once to learn a free port; the voter binds it again.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        voters.push(Voter {
            id,
            dir: tempfile::tempdir().expect("temporary directory"),
            addr: probe.local_addr().expect("address"),
            tls: Arc::new(PeerTls::load(certs, &format!("node-{id}")).expect("credentials")),
            running: None,
        });
    }
    for voter in &mut voters {
        voter.start().await;
    }
    let members: BTreeMap<NodeId, openraft::BasicNode> = voters
        .iter()
        .map(|v| (v.id, openraft::BasicNode::new(v.addr)))
        .collect();
    voters[0]
        .sequencer()
        .initialize(members)
        .await
        .expect("initializes");
    voters
}

/// The leader the running voters agree on, once they do.
async fn agreed_leader(voters: &[Voter]) -> NodeId {
    let deadline = tokio::time::Instant::now() + ELECTION_BOUND;
    loop {
        let leaders: BTreeSet<Option<NodeId>> = voters
            .iter()
            .filter(|v| v.running.is_some())
            .map(|v| v.sequencer().raft().metrics().borrow().current_leader)
            .collect();
        if let [Some(leader)] = leaders.iter().copied().collect::<Vec<_>>()[..]
            && voters.iter().any(|v| v.id == leader && v.running.is_some())
        {
            return leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no agreed leader within {ELECTION_BOUND:?}: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appends `count` descriptors through each running voter at once.
async fn append_through_each(voters: &[Voter], round: u64, count: u64) -> Vec<EntryDescriptor> {
    let mut tasks = Vec::new();
    for voter in voters.iter().filter(|v| v.running.is_some()) {
        let sequencer = voter.sequencer();
        let task = voter.id;
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for i in 0..count {
                let descriptor = stress::descriptor(round, task, i);
                let header = sequencer.append(descriptor.clone()).await.expect("append");
                assert_eq!(header.entry, descriptor);
                appended.push(descriptor);
            }
            appended
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("appending task"));
    }
    all
}

/// Every running voter's whole header log, once they all reach `tail`.
async fn logs_at(voters: &[Voter], tail: u64) -> Vec<Vec<ordo_log::EntryHeader>> {
    let mut logs = Vec::new();
    for voter in voters.iter().filter(|v| v.running.is_some()) {
        let sequencer = voter.sequencer();
        let reached = tokio::time::timeout(CATCH_UP_BOUND, sequencer.wait_beyond(tail - 1)).await;
        assert!(reached.is_ok(), "voter {} did not reach {tail}", voter.id);
        logs.push(sequencer.read(0, tail as usize).await.expect("read"));
    }
    logs
}

fn assert_one_order(logs: &[Vec<ordo_log::EntryHeader>], appended: &[EntryDescriptor]) {
    for log in logs {
        assert_eq!(log, &logs[0], "every voter must hold the same headers");
    }
    let seqs: Vec<u64> = logs[0].iter().map(|h| h.seq).collect();
    assert_eq!(
        seqs,
        (0..appended.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    let ordered: BTreeSet<_> = logs[0].iter().map(|h| h.entry.commitment).collect();
    let sent: BTreeSet<_> = appended.iter().map(|d| d.commitment).collect();
    assert_eq!(ordered.len(), appended.len(), "no descriptor twice");
    assert_eq!(ordered, sent, "every acknowledged append ordered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_through_any_voter_get_one_order_that_survives_losing_the_leader() {
    let certs = cluster_certs();
    let mut voters = cluster_of_three(certs.path()).await;
    agreed_leader(&voters).await;
    let mut appended = append_through_each(&voters, 1, 10).await;
    assert_one_order(&logs_at(&voters, 30).await, &appended);

    let leader = agreed_leader(&voters).await;
    let old = voters.iter().position(|v| v.id == leader).expect("leader");
    voters[old].stop().await;
    let new_leader = agreed_leader(&voters).await;
    assert_ne!(new_leader, leader, "a stopped voter cannot lead");
    appended.extend(append_through_each(&voters, 2, 10).await);
    assert_one_order(&logs_at(&voters, 50).await, &appended);

    voters[old].start().await;
    let logs = logs_at(&voters, 50).await;
    assert_eq!(logs.len(), 3, "the old leader is back");
    assert_one_order(&logs, &appended);
    for voter in &mut voters {
        voter.stop().await;
    }
}

/// A client of the voter at `addr` with `client_tls` (or in the clear).
async fn connect(
    addr: SocketAddr,
    client_tls: Option<ClientTlsConfig>,
) -> Result<SequencerClient<tonic::transport::Channel>, String> {
    let scheme = if client_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(5));
    if let Some(tls) = client_tls {
        endpoint = endpoint.tls_config(tls).expect("tls");
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    Ok(SequencerClient::new(channel))
}

/// Calls `Append` on `addr` with `client_tls` (or in the clear).
async fn try_append(addr: SocketAddr, client_tls: Option<ClientTlsConfig>) -> Result<u64, String> {
    let header = ordo_log::EntryHeader {
        seq: 0,
        entry: stress::descriptor(9, 9, 9),
    };
    let request = AppendRequest {
        descriptors: vec![header.encode()],
    };
    connect(addr, client_tls)
        .await?
        .append(request)
        .await
        .map(|reply| reply.into_inner().first_seq)
        .map_err(|status| status.to_string())
}

/// Sends `requests` on an `AppendMany` stream to `addr` with the member
/// credentials `tls`; every answer, in order.
async fn append_many(
    addr: SocketAddr,
    client_tls: Option<ClientTlsConfig>,
    requests: Vec<AppendRequest>,
) -> Result<Vec<AppendAnswer>, tonic::Status> {
    let mut client = connect(addr, client_tls)
        .await
        .map_err(tonic::Status::unavailable)?;
    let count = requests.len();
    let mut answers = client
        .append_many(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut got = Vec::new();
    while got.len() < count {
        match answers.message().await? {
            Some(answer) => got.push(answer),
            None => break,
        }
    }
    Ok(got)
}

/// An append request for one descriptor of round `round`.
fn append_of(round: u64) -> AppendRequest {
    let header = ordo_log::EntryHeader {
        seq: 0,
        entry: stress::descriptor(round, 1, 1),
    };
    AppendRequest {
        descriptors: vec![header.encode()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_stream_answers_in_order_names_the_leader_and_outlives_a_bad_request() {
    let certs = cluster_certs();
    let mut voters = cluster_of_three(certs.path()).await;
    let leader = agreed_leader(&voters).await;
    let tls = || {
        Some(
            PeerTls::load(certs.path(), "admin")
                .expect("credentials")
                .client(),
        )
    };
    let bad = AppendRequest {
        descriptors: vec![vec![1, 2, 3]],
    };
    let on_leader = voters.iter().find(|v| v.id == leader).expect("leader");
    let tail = on_leader.sequencer().tail();
    let answers = append_many(
        on_leader.addr,
        tls(),
        vec![append_of(1), bad.clone(), append_of(2)],
    )
    .await
    .expect("the stream opens");
    let codes: Vec<i32> = answers.iter().map(|a| a.code).collect();
    let invalid = tonic::Code::InvalidArgument as i32;
    assert_eq!(codes, vec![0, invalid, 0], "{answers:?}");
    assert_eq!(answers[0].first_seq, tail);
    assert_eq!(answers[2].first_seq, tail + 1, "ordered in the order sent");

    let follower = voters.iter().find(|v| v.id != leader).expect("a follower");
    let answers = append_many(follower.addr, tls(), vec![append_of(3), bad])
        .await
        .expect("the stream opens");
    let refused = tonic::Code::FailedPrecondition as i32;
    assert_eq!(answers[0].code, refused, "{answers:?}");
    assert_eq!(answers[0].leader, on_leader.addr.to_string());
    assert_eq!(answers[1].code, invalid, "{answers:?}");
    for voter in &mut voters {
        voter.stop().await;
    }
}

/// Opens raft's AppendEntries stream on `addr` with `client_tls` (or in
/// the clear) and sends one message that is no raft request: what the
/// first answer is, or why there is none.
async fn try_append_stream(
    addr: SocketAddr,
    client_tls: Option<ClientTlsConfig>,
) -> Result<RaftMessage, tonic::Status> {
    let mut client = connect(addr, client_tls)
        .await
        .map_err(tonic::Status::unavailable)?;
    let garbage = RaftMessage {
        body: vec![0xff; 9],
    };
    let mut answers = client
        .append_entries_many(tokio_stream::iter([garbage]))
        .await?
        .into_inner();
    answers
        .message()
        .await?
        .ok_or_else(|| tonic::Status::unknown("the stream ended with no answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_clusters_certificates_reach_a_voter() {
    let certs = cluster_certs();
    let mut voters = cluster_of_three(certs.path()).await;
    let leader = agreed_leader(&voters).await;
    let addr = voters.iter().find(|v| v.id == leader).expect("leader").addr;

    let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).expect("reads");
    let trusting = || {
        ClientTlsConfig::new()
            .domain_name(tls::CLUSTER_NAME)
            .ca_certificate(Certificate::from_pem(read(certs.path(), "ca.pem")))
    };

    let clear = try_append(addr, None).await;
    assert!(clear.is_err(), "a client in the clear: {clear:?}");
    let clear = try_append_stream(addr, None).await;
    assert!(clear.is_err(), "raft's stream in the clear: {clear:?}");
    let stranger = try_append(addr, Some(trusting())).await;
    assert!(
        stranger.is_err(),
        "a TLS client with no certificate: {stranger:?}"
    );
    let stranger = append_many(addr, Some(trusting()), vec![append_of(7)]).await;
    assert!(
        stranger.is_err(),
        "an append stream from a TLS client with no certificate: {stranger:?}"
    );
    let stranger = try_append_stream(addr, Some(trusting())).await;
    assert!(
        stranger.is_err(),
        "raft's stream from a TLS client with no certificate: {stranger:?}"
    );

    let forged = tempfile::tempdir().expect("temporary directory");
    tls::make_authority(forged.path(), &["node-1".to_string()]).expect("another authority");
    let forged_identity = Identity::from_pem(
        read(forged.path(), "node-1.pem"),
        read(forged.path(), "node-1.key"),
    );
    let forger = try_append(addr, Some(trusting().identity(forged_identity.clone()))).await;
    assert!(
        forger.is_err(),
        "a member name certified by another authority: {forger:?}"
    );
    let forger = try_append_stream(addr, Some(trusting().identity(forged_identity))).await;
    assert!(
        forger.is_err(),
        "raft's stream from a name certified by another authority: {forger:?}"
    );

    let member = PeerTls::load(certs.path(), "admin").expect("operator credentials");
    assert_eq!(
        try_append(addr, Some(member.client())).await,
        Ok(0),
        "the cluster's own certificate"
    );
    let garbage = try_append_stream(addr, Some(member.client())).await;
    assert_eq!(
        garbage.map_err(|status| status.code()),
        Err(tonic::Code::InvalidArgument),
        "a member's undecodable raft message is refused, typed"
    );
    let tail = voters[0].sequencer().tail();
    assert!(
        tail <= 1,
        "only the authenticated append was ordered: tail {tail}"
    );
    for voter in &mut voters {
        voter.stop().await;
    }
}
