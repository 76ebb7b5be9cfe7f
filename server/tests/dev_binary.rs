//! End-to-end: the real `ordo` binary, started and stopped as a user would.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

mod common;

use common::DevNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    assert_eq!(
        status.log_tail, 1,
        "a fresh node's log holds only the genesis record it wrote"
    );
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
    for subcommand in ["dev", "status", "replay", "kv", "stream", "watch", "keygen"] {
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

/// Every service the node serves, by gRPC name.
const SERVICES: [&str; 6] = [
    "ordo.v1.Status",
    "ordo.v1.Log",
    "ordo.v1.Kv",
    "ordo.v1.Txn",
    "ordo.v1.Acl",
    "ordo.v1.Sql",
];

/// Asserts that a reflection listing names every service and health.
fn assert_lists_everything(names: &[String]) {
    for service in SERVICES.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

/// The service names a reflection client of version `$v` (the generated
/// module: `v1` or `v1alpha`, alike but for their types) lists.
macro_rules! list_services {
    ($v:ident, $channel:expr) => {{
        use $v::server_reflection_request::MessageRequest;
        use $v::server_reflection_response::MessageResponse;
        let mut client = $v::server_reflection_client::ServerReflectionClient::new($channel);
        let request = $v::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let stream = tokio_stream::iter([request]);
        let mut responses = client
            .server_reflection_info(stream)
            .await
            .unwrap()
            .into_inner();
        let response = responses.message().await.unwrap().expect("one response");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected reflection answer {response:?}");
        };
        list.service
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<String>>()
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let channel = common::channel(&node.endpoint).await;

    assert_lists_everything(&list_services!(v1, channel.clone()));
    // Python's grpcio-reflection and older tools speak v1alpha.
    assert_lists_everything(&list_services!(v1alpha, channel));
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_its_own_health_check() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let mut health = HealthClient::new(common::channel(&node.endpoint).await);
    for service in SERVICES {
        let request = HealthCheckRequest {
            service: service.to_string(),
        };
        let answer = health
            .check(request)
            .await
            .unwrap_or_else(|e| panic!("{service}: {e}"));
        assert_eq!(
            answer.into_inner().status(),
            ServingStatus::Serving,
            "{service}"
        );
    }
    let unknown = HealthCheckRequest {
        service: "ordo.v1.Nothing".into(),
    };
    let refused = health.check(unknown).await.expect_err("an unknown service");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    assert!(node.terminate().success());
}

#[test]
fn a_config_file_with_a_typo_or_a_limit_out_of_range_is_refused_clearly() {
    let data = tempfile::tempdir().unwrap();
    let check = |text: &str, needle: &str| {
        let path = data.path().join("ordo.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["dev", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    };
    check("listne = \"127.0.0.1:1\"\n", "listne");
    check(
        "batch_max_transactions = 99999999\n",
        "batch_max_transactions",
    );
    check("listen = [1]\n", "listen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_the_config_file_unless_flags_override_them() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("ordo.toml");
    let file_dir = data.path().join("from-file");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nbatch_linger_ms = 1\nbatch_max_transactions = 2\n",
            file_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    // DevNode passes --data-dir, which must win over the file's data_dir.
    let flag_dir = data.path().join("from-flag");
    let node = DevNode::start_with(
        &flag_dir,
        &["--no-cli-key", "--config", config.to_str().unwrap()],
    );
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    assert!(client.is_serving().await.unwrap());
    assert!(
        flag_dir.join("log-db").exists(),
        "the flag's data dir is used"
    );
    assert!(!file_dir.exists(), "the file's data dir is overridden");
    assert!(node.terminate().success());
}
