//! The real `ordo` binary, started and stopped as a user would, through
//! the launcher tests and benchmarks share (`ordo_client::dev`).
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;

use ordo_client::dev::DevProcess;
use std::path::Path;
use std::process::Stdio;

/// A running `ordo dev` on a free loopback port, killed if the test fails.
pub struct DevNode {
    process: DevProcess,
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
        let binary = Path::new(env!("CARGO_BIN_EXE_ordo"));
        let process = DevProcess::start(binary, data, extra, Stdio::inherit()).unwrap();
        Self {
            endpoint: process.endpoint.clone(),
            metrics: process.metrics.clone(),
            process,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.process.terminate().unwrap()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(self) {
        self.process.kill().unwrap()
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
