//! End-to-end: the real `ordo` binary, started and stopped as a user would.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

mod common;

use common::DevNode;

#[tokio::test]
async fn dev_serves_health_and_status_then_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
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
    for subcommand in ["dev", "status", "replay"] {
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
