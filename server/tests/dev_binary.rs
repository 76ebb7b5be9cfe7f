//! End-to-end: the real `ordo` binary, started and stopped as a user would.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ordo dev` on a free loopback port, killed if the test fails.
struct DevNode {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl DevNode {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ordo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the first line");
        let address = line
            .trim()
            .strip_prefix("ordo listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self {
            endpoint: format!("http://{address}"),
            child,
            _data: data,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal delivered");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ordo did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn dev_serves_health_and_status_then_stops_cleanly_on_sigterm() {
    let node = DevNode::start();
    let client = ordo_client::Client::connect(&node.endpoint)
        .await
        .expect("connects");
    assert!(
        client.is_serving().await.expect("health check answers"),
        "health check must say SERVING"
    );
    let status = client.status().await.expect("status answers");
    assert_eq!(status.role, "dev");
    assert_eq!(status.log_tail, 0, "a fresh node has an empty log");
    assert_eq!((status.data_shards, status.parity_shards), (4, 2));

    let cli = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["status", "--endpoint", &node.endpoint])
        .output()
        .expect("ordo status runs");
    assert!(
        cli.status.success(),
        "ordo status failed: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(String::from_utf8_lossy(&cli.stdout).contains("role           dev"));

    let exit = node.terminate();
    assert!(
        exit.success(),
        "ordo must exit cleanly on SIGTERM, got {exit:?}"
    );
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("--help")
        .output()
        .expect("ordo --help runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for subcommand in ["dev", "status"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(subcommand)),
            "--help must list {subcommand}:\n{help}"
        );
    }
}

#[test]
fn status_against_nothing_fails_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["status", "--endpoint", &format!("127.0.0.1:{port}")])
        .output()
        .expect("ordo status runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
