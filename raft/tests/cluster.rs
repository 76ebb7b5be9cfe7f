//! Three raft voters on loopback in one process: appends through any voter,
//! one order on all of them, a leader lost and a new one elected, the old
//! leader back and caught up. (The same with real processes and kill -9
//! lives with `ordo node`'s tests.)

use ordo_log::{EntryDescriptor, Sequencer, stress};
use ordo_raft::{NodeId, RaftSequencer, VoterConfig, VoterServer};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the cluster may take to elect a leader: the bound.
const ELECTION_BOUND: Duration = Duration::from_secs(5);
/// How long a voter may take to catch up after a restart.
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);

struct Voter {
    id: NodeId,
    dir: tempfile::TempDir,
    addr: SocketAddr,
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
        };
        let voter = RaftSequencer::start(config).await.expect("starts");
        let server = VoterServer::spawn(voter.service(), listener);
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

async fn cluster_of_three() -> Vec<Voter> {
    let mut voters = Vec::new();
    for id in 1..=3 {
        // Bind once to learn a free port; the voter binds it again.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        voters.push(Voter {
            id,
            dir: tempfile::tempdir().expect("temporary directory"),
            addr: probe.local_addr().expect("address"),
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
    let mut voters = cluster_of_three().await;
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
