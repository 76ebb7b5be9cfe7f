//! `ordo node` processes for cluster tests: a member on a free loopback
//! port with the roles it is given, and the certificates `ordo cluster
//! certs` makes, as a user would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Makes `DIR/certs` with a certificate for each member id, and `admin`.
pub fn make_certs(dir: &Path, ids: &[u64]) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ordo"));
    command
        .args(["cluster", "certs", "--dir"])
        .arg(dir.join("certs"));
    for id in ids {
        command.args(["--node", &id.to_string()]);
    }
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("runs ordo cluster certs");
    assert!(status.success(), "ordo cluster certs: {status}");
}

/// How long a member may take to stop after SIGTERM: the node's grace for
/// open connections (5 s) and room to spare.
pub const STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(15);

/// The log filter members run with: `warn`, or `ORDO_TEST_MEMBER_LOG`.
fn member_log_level() -> String {
    std::env::var("ORDO_TEST_MEMBER_LOG").unwrap_or_else(|_| "warn".into())
}

/// A port free on loopback when asked (the member binds it again).
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port free on `ip` when asked.
///
/// A member binds its port only when it starts, so the port must stay
/// free until then. Ports the kernel picks come from its ephemeral range
/// (32768-60999 on Linux), from which every outgoing connection of every
/// test running beside this one also takes its port: a member then failed
/// to bind, now and then, under a full test run. These ports come from
/// below that range, and a lock file per port, held until this test
/// process exits, keeps concurrent test processes from picking the same
/// one.
fn free_port_on(ip: &str) -> u16 {
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    let dir = std::env::temp_dir().join("ordo-test-ports");
    std::fs::create_dir_all(&dir).expect("the port lock directory");
    let start = (std::process::id() % u32::from(COUNT)) as u16;
    for step in 0..COUNT {
        let port = FIRST + (start + step) % COUNT;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
            .expect("a port lock file");
        if file.try_lock().is_err() || std::net::TcpListener::bind((ip, port)).is_err() {
            continue;
        }
        HELD_PORTS.lock().unwrap().push(file);
        return port;
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// The lock files of the ports this test process handed out.
static HELD_PORTS: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// One `ordo node` process, killed if the test fails.
pub struct MemberProcess {
    /// The member's id.
    pub id: u64,
    /// Its peer address, `127.0.0.1:PORT`.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its metrics page, `http://127.0.0.1:PORT/metrics`.
    pub metrics: String,
    /// Where it serves clients, `http://127.0.0.1:PORT` (gateway and
    /// replica roles only).
    pub endpoint: Option<String>,
    roles: String,
    config: PathBuf,
    child: Option<Child>,
    /// The member's stdout, kept open: a member that prints to a closed
    /// pipe fails.
    stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl MemberProcess {
    /// A member with `roles` (e.g. `"sequencer"`), its files under `dir`
    /// and the certificates of `DIR/certs`; not started.
    pub fn new(id: u64, dir: &Path, roles: &[&str]) -> Self {
        Self::new_on(id, dir, roles, "127.0.0.1")
    }

    /// [`MemberProcess::new`], listening for peers on loopback address
    /// `ip` (one of its own, so proxies can tell its connections apart).
    pub fn new_on(id: u64, dir: &Path, roles: &[&str], ip: &str) -> Self {
        let addr = format!("{ip}:{}", free_port_on(ip));
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let (config, data_dir) = (dir.join(format!("n{id}.toml")), dir.join(format!("n{id}")));
        let quoted: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
        let text = format!(
            "id = {id}\ndata_dir = {data_dir:?}\npeer_listen = \"{addr}\"\nroles = [{}]\ntls_dir = {:?}\nmetrics_listen = \"{metrics_addr}\"\nruntime_workers = 1\n",
            quoted.join(", "),
            dir.join("certs"),
        );
        std::fs::write(&config, text).expect("writes the config");
        Self {
            id,
            addr,
            data_dir,
            metrics: format!("http://{metrics_addr}/metrics"),
            endpoint: None,
            roles: roles.join(", "),
            config,
            child: None,
            stdout: None,
        }
    }

    /// A member with client roles (`gateway`, `replica`) reading the log of
    /// `voters` and `storage`: it serves clients on a port of its own.
    pub fn new_client(
        id: u64,
        dir: &Path,
        roles: &[&str],
        voters: &[&MemberProcess],
        storage: &[&MemberProcess],
    ) -> Self {
        let mut member = Self::new(id, dir, roles);
        member.serve_clients();
        member.add_config(&log_members(voters, storage));
        member
    }

    /// Gives the member's replica an address to serve clients on.
    pub fn serve_clients(&mut self) {
        let listen = format!("127.0.0.1:{}", free_port());
        self.add_config(&format!("listen = \"{listen}\"\n"));
        self.endpoint = Some(format!("http://{listen}"));
    }

    /// Adds `text` (TOML lines) to the member's config file.
    pub fn add_config(&self, text: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("opens the config");
        file.write_all(text.as_bytes()).expect("appends");
    }

    /// Whether the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process and waits until it announces its address.
    pub fn start(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            // ORDO_TEST_MEMBER_LOG (e.g. `info`) shows more when a test fails.
            .args(["--log-level", &member_log_level(), "node", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawns ordo node");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("reads");
        let expected = format!(
            "ordo node {} listening on {} ({})",
            self.id, self.addr, self.roles
        );
        assert_eq!(line.trim(), expected, "the node announces itself");
        if let Some(endpoint) = &self.endpoint {
            // A gateway announces its client address once the log is
            // founded; a read replica at once.
            line.clear();
            stdout.read_line(&mut line).expect("reads");
            let address = endpoint.trim_start_matches("http://");
            assert_eq!(line.trim(), format!("ordo listening on {address}"));
        }
        self.stdout = Some(stdout);
        self.child = Some(child);
    }

    /// SIGTERM, and a clean exit within [`STOP_BOUND`].
    pub fn stop(&mut self) {
        self.terminate();
        self.stop_after_terminate();
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// After [`MemberProcess::terminate`]: a clean exit within [`STOP_BOUND`].
    pub fn stop_after_terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        self.stdout = None;
        let deadline = std::time::Instant::now() + STOP_BOUND;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "member {} did not stop within {STOP_BOUND:?} of SIGTERM",
                    self.id
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.success(), "a clean stop: {status}");
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        self.stdout = None;
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `sequencers` and `storage` lines of a member's config naming
/// `voters` and `storage`.
pub fn log_members(voters: &[&MemberProcess], storage: &[&MemberProcess]) -> String {
    let sequencers: Vec<String> = voters.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    let storage: Vec<String> = storage
        .iter()
        .map(|n| format!("{{ id = {}, addr = \"{}\" }}", n.id, n.addr))
        .collect();
    format!(
        "sequencers = [{}]\nstorage = [{}]\n",
        sequencers.join(", "),
        storage.join(", ")
    )
}

/// Voters 1-3 (also storage) and storage members 4..=`storage`, formed
/// into a cluster; node 1 also runs repair, beside a replica, when
/// `repair` says so.
pub async fn start_log(dir: &Path, storage: u64, repair: bool) -> Vec<MemberProcess> {
    make_certs(dir, &(1..=storage + 3).collect::<Vec<u64>>());
    let tls = ordo_raft::PeerTls::load(&dir.join("certs"), "admin").unwrap();
    let mut nodes: Vec<MemberProcess> = (1..=storage)
        .map(|id| match id {
            1 if repair => MemberProcess::new(id, dir, &REPAIRING_VOTER),
            1..=3 => MemberProcess::new(id, dir, &["sequencer", "storage"]),
            _ => MemberProcess::new(id, dir, &["storage"]),
        })
        .collect();
    let everyone: Vec<&MemberProcess> = nodes.iter().collect();
    let voters: Vec<String> = everyone[..3]
        .iter()
        .map(|n| format!("\"{}\"", n.addr))
        .collect();
    if repair {
        nodes[0].add_config(&log_members(&everyone[..3], &everyone));
        nodes[0].serve_clients();
    }
    // Storage members report to the voters, for `ordo cluster status`.
    for node in &nodes[3..] {
        node.add_config(&format!("sequencers = [{}]\n", voters.join(", ")));
    }
    for node in &mut nodes {
        node.start();
    }
    let voters: Vec<&MemberProcess> = nodes[..3].iter().collect();
    initialize(&voters, &tls).await;
    nodes
}

/// The roles of a voter that runs repair: repair places shards by the
/// membership the log records, which the member's replica knows.
pub const REPAIRING_VOTER: [&str; 4] = ["sequencer", "storage", "repair", "replica"];

/// A client member (`gateway` and `replica`, or `replica` alone) of the
/// cluster `log` holds, not started.
pub fn client_member(id: u64, dir: &Path, roles: &[&str], log: &[MemberProcess]) -> MemberProcess {
    let voters: Vec<&MemberProcess> = log[..3].iter().collect();
    let storage: Vec<&MemberProcess> = log.iter().collect();
    MemberProcess::new_client(id, dir, roles, &voters, &storage)
}

/// `ordo cluster status --json`, asked of `voter` as an operator.
pub fn cluster_status(voter: &MemberProcess, dir: &Path) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "cluster",
            "status",
            "--json",
            "--peer",
            &voter.addr,
            "--tls-dir",
        ])
        .arg(dir.join("certs"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Forms a cluster of `voters` through the first one, with the
/// operator's credentials `tls`.
pub async fn initialize(voters: &[&MemberProcess], tls: &ordo_raft::PeerTls) {
    let members = voters.iter().map(|n| (n.id, n.addr.clone())).collect();
    initialize_as(&voters[0].addr, members, tls).await;
}

/// Forms a cluster through the voter at `through`, with `members` (id and
/// the address the others dial it at).
pub async fn initialize_as(through: &str, members: Vec<(u64, String)>, tls: &ordo_raft::PeerTls) {
    use ordo_proto::cluster::v1::{InitializeRequest, Member};
    let mut client = ordo_raft::network::peer_client(through, tls).expect("a client");
    let voters = members
        .into_iter()
        .map(|(id, addr)| Member { id, addr })
        .collect();
    client
        .initialize(InitializeRequest { voters })
        .await
        .expect("initializes");
}
