//! A single-voter raft cluster against the conformance suite every
//! sequencer must pass.

use ordo_log::conformance::{SequencerHarness, sequencer};
use ordo_log::{Sequencer, WriteFault};
use ordo_raft::tls::{self, PeerTls};
use ordo_raft::{RaftSequencer, RemoteSequencer, VoterConfig, VoterServer};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How long a voter may take to become leader of its own cluster.
const ELECTION_WAIT: Duration = Duration::from_secs(10);

/// One voter's directory, its address (kept across restarts: raft's
/// membership names it), fault switch, and what is running.
struct VoterHarness {
    dir: tempfile::TempDir,
    tls: Arc<PeerTls>,
    _certs: tempfile::TempDir,
    addr: Option<std::net::SocketAddr>,
    fault: Arc<WriteFault>,
    running: Option<(Arc<RaftSequencer>, VoterServer)>,
}

impl VoterHarness {
    fn new() -> Self {
        let certs = tempfile::tempdir().expect("temporary directory");
        tls::make_authority(certs.path(), &["node-1".to_string()]).expect("certificates");
        let tls = Arc::new(PeerTls::load(certs.path(), "node-1").expect("credentials"));
        Self {
            tls,
            _certs: certs,
            dir: tempfile::tempdir().expect("temporary directory"),
            addr: None,
            fault: Arc::new(WriteFault::default()),
            running: None,
        }
    }

    fn newest_wal(&self) -> std::path::PathBuf {
        let mut logs: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("store directory")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort();
        logs.pop().expect("a write-ahead log")
    }
}

#[async_trait::async_trait]
impl SequencerHarness for VoterHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        let bind = self
            .addr
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("address"));
        let listener = tokio::net::TcpListener::bind(bind).await.expect("binds");
        let addr = listener.local_addr().expect("bound address");
        self.addr = Some(addr);
        let config = VoterConfig {
            id: 1,
            dir: self.dir.path().to_path_buf(),
            fault: Some(self.fault.clone()),
            tls: self.tls.clone(),
        };
        let voter = RaftSequencer::start(config).await.expect("starts");
        let server = VoterServer::spawn(voter.service(), listener, &self.tls).expect("serves");
        let voters = BTreeMap::from([(1, openraft::BasicNode::new(addr))]);
        voter.initialize(voters).await.expect("initializes");
        voter
            .raft()
            .wait(Some(ELECTION_WAIT))
            .current_leader(1, "the only voter leads")
            .await
            .expect("becomes leader");
        self.running = Some((voter.clone(), server));
        voter
    }

    async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
        drop(sequencer);
        if let Some((voter, server)) = self.running.take() {
            voter.shutdown().await;
            server.stop().await.expect("server stops");
        }
    }

    /// Half a write-ahead-log record, as a crash in the middle of a write
    /// leaves it.
    fn tear_tail(&mut self) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.newest_wal())
            .expect("opens the log");
        file.write_all(b"\x12\x34\x56\x78\xff\x7f\x01partial")
            .expect("appends garbage");
    }

    fn fail_next_write(&mut self) {
        self.fault.arm();
    }
}

/// The same voter seen from outside, through [`RemoteSequencer`].
struct RemoteHarness {
    voter: VoterHarness,
    open_voter: Option<Arc<dyn Sequencer>>,
}

#[async_trait::async_trait]
impl SequencerHarness for RemoteHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        self.open_voter = Some(self.voter.open().await);
        let addr = self.voter.addr.expect("the voter's address").to_string();
        let remote = RemoteSequencer::connect(vec![addr], self.voter.tls.clone())
            .await
            .expect("connects");
        Arc::new(remote)
    }

    async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
        drop(sequencer);
        if let Some(voter) = self.open_voter.take() {
            self.voter.stop(voter).await;
        }
    }

    fn tear_tail(&mut self) {
        self.voter.tear_tail();
    }

    fn fail_next_write(&mut self) {
        self.voter.fail_next_write();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_seen_through_the_remote_sequencer_passes_the_sequencer_suite() {
    sequencer(|| RemoteHarness {
        voter: VoterHarness::new(),
        open_voter: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_raft_cluster_passes_the_sequencer_suite() {
    sequencer(VoterHarness::new).await;
}
