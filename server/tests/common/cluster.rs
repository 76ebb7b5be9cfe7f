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

/// A port free on loopback when asked (the member binds it again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

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
    roles: String,
    config: PathBuf,
    child: Option<Child>,
}

impl MemberProcess {
    /// A member with `roles` (e.g. `"sequencer"`), its files under `dir`
    /// and the certificates of `DIR/certs`; not started.
    pub fn new(id: u64, dir: &Path, roles: &[&str]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let (config, data_dir) = (dir.join(format!("n{id}.toml")), dir.join(format!("n{id}")));
        let quoted: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
        let text = format!(
            "id = {id}\ndata_dir = {data_dir:?}\npeer_listen = \"{addr}\"\nroles = [{}]\ntls_dir = {:?}\nmetrics_listen = \"{metrics_addr}\"\n",
            quoted.join(", "),
            dir.join("certs"),
        );
        std::fs::write(&config, text).expect("writes the config");
        Self {
            id,
            addr,
            data_dir,
            metrics: format!("http://{metrics_addr}/metrics"),
            roles: roles.join(", "),
            config,
            child: None,
        }
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
            .args(["--log-level", "warn", "node", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawns ordo node");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("reads");
        let expected = format!(
            "ordo node {} listening on {} ({})",
            self.id, self.addr, self.roles
        );
        assert_eq!(line.trim(), expected, "the node announces itself");
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

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
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
