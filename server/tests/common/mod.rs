//! The real `ordo` binary, started and stopped as a user would.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ordo dev` on a free loopback port, killed if the test fails.
pub struct DevNode {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT/metrics`.
    pub metrics: String,
}

impl DevNode {
    /// Starts `ordo dev` with its files in `data` and an untouched log (no
    /// CLI identity), so tests can count versions from 0.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &["--no-cli-key"])
    }

    /// Starts `ordo dev` with its files in `data` and `extra` arguments.
    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ordo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut next_line = || {
            lines
                .next()
                .expect("ordo prints its addresses")
                .expect("reads a line")
        };
        let metrics_line = next_line();
        let metrics = metrics_line
            .strip_prefix("ordo metrics on ")
            .unwrap_or_else(|| panic!("unexpected first line {metrics_line:?}"))
            .to_string();
        let listening = next_line();
        let address = listening
            .strip_prefix("ordo listening on ")
            .unwrap_or_else(|| panic!("unexpected second line {listening:?}"));
        Self {
            endpoint: format!("http://{address}"),
            metrics,
            child,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
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

impl DevNode {
    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("reaped");
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connected gRPC channel to `endpoint`.
pub async fn channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}
