//! Starting `ordo dev` as a child process and learning where it listens:
//! for tests, benchmarks and tools that need a real node on loopback
//! (feature `launch`).
//!
//! `ordo dev` prints `ordo metrics on http://ADDR/metrics` and then
//! `ordo listening on ADDR` on stdout once it serves; with port 0 those
//! lines are the only way to learn the ports it picked.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest `ordo dev` may take to print its addresses (a first start on a
/// slow machine opens RocksDB twice and may create the CLI stream).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest a node may take to exit after SIGTERM (its own grace period for
/// open connections is 5 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why starting or stopping a node failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The binary could not be started.
    #[error("starting {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The node exited, or printed something else, before listening.
    #[error("ordo dev did not start: {0}")]
    Startup(String),
    /// The node printed nothing within [`START_TIMEOUT`].
    #[error("ordo dev did not print its addresses within {0:?}")]
    StartTimeout(Duration),
    /// The node did not exit within [`STOP_TIMEOUT`] of SIGTERM.
    #[error("ordo dev did not exit within {0:?} of SIGTERM")]
    StopTimeout(Duration),
    /// Signalling or waiting for the process failed.
    #[error("controlling the ordo dev process: {0}")]
    Process(String),
}

/// A running `ordo dev` on loopback, killed when dropped.
#[derive(Debug)]
pub struct DevProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, for [`crate::Client::connect`].
    pub endpoint: String,
    /// `http://127.0.0.1:PORT/metrics`.
    pub metrics: String,
}

impl DevProcess {
    /// Starts `binary dev` with its files in `data_dir`, gRPC and metrics
    /// on free loopback ports, `extra` arguments after those, and its
    /// stderr sent to `stderr`; returns once it serves.
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> Result<Self, LaunchError> {
        Self::start_command(Command::new(binary), binary, data_dir, extra, stderr)
    }

    /// [`DevProcess::start`] through `command`, which runs `binary` (for
    /// example `taskset -c 0 BINARY`, to hold the node to one core).
    pub fn start_command(
        mut command: Command,
        binary: &Path,
        data_dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> Result<Self, LaunchError> {
        let loopback = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
        let mut child = command
            .arg("dev")
            .args(loopback)
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let lines = stdout_lines(&mut child)?;
        let next = || match lines.recv_timeout(START_TIMEOUT) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LaunchError::StartTimeout(START_TIMEOUT)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LaunchError::Startup(
                "it exited before printing its addresses".into(),
            )),
        };
        let metrics = expect_prefix(next()?, "ordo metrics on ")?;
        let address = expect_prefix(next()?, "ordo listening on ")?;
        Ok(Self {
            child,
            endpoint: format!("http://{address}"),
            metrics,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits, at most [`STOP_TIMEOUT`], for the exit.
    pub fn terminate(mut self) -> Result<ExitStatus, LaunchError> {
        let pid = i32::try_from(self.child.id())
            .map_err(|_| LaunchError::Process("process id out of range".into()))?;
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| LaunchError::Process(e.to_string()))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            let exited = self.child.try_wait();
            match exited.map_err(|e| LaunchError::Process(e.to_string()))? {
                Some(status) => return Ok(status),
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Err(LaunchError::StopTimeout(STOP_TIMEOUT))
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) -> Result<(), LaunchError> {
        self.child
            .kill()
            .and_then(|()| self.child.wait().map(|_| ()))
            .map_err(|e| LaunchError::Process(e.to_string()))
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        // Already gone after terminate or kill; otherwise do not leak it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's stdout as lines, read on a thread of their own that keeps
/// draining it, so a node that logs to stdout never blocks on the pipe.
fn stdout_lines(child: &mut Child) -> Result<mpsc::Receiver<String>, LaunchError> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| LaunchError::Startup("no stdout pipe".into()))?;
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            // Once the starter stops listening, keep draining.
            let _ = send.send(line);
        }
    });
    Ok(lines)
}

fn expect_prefix(line: String, prefix: &str) -> Result<String, LaunchError> {
    match line.strip_prefix(prefix) {
        Some(rest) => Ok(rest.trim().to_string()),
        None => Err(LaunchError::Startup(format!(
            "expected a line starting {prefix:?}, got {line:?}"
        ))),
    }
}
