//! Retention against a real `ordo dev`: only the log's admin sets the
//! policy, a compaction refuses reads, SQL snapshots and watch resumes
//! below the horizon with the oldest version still kept, status and
//! metrics show the horizon, it survives a restart, and the node's own
//! compactor keeps the policy unasked.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, eventually, metric, ordo, put_in_turn, stdout};
use ordo_client::ClientError;
use std::path::Path;
use std::time::Duration;

/// `ordo retention set` as `key`.
fn set_policy(
    endpoint: &str,
    key: &Path,
    keep_versions: &str,
    keep_secs: &str,
) -> std::process::Output {
    ordo(&[
        "retention",
        "set",
        "--endpoint",
        endpoint,
        "--key",
        key.to_str().unwrap(),
        "--keep-versions",
        keep_versions,
        "--keep-secs",
        keep_secs,
    ])
}

/// `ordo compact --to` as `key`.
fn compact(endpoint: &str, key: &Path, to: u64) -> std::process::Output {
    let to = to.to_string();
    ordo(&[
        "compact",
        "--endpoint",
        endpoint,
        "--key",
        key.to_str().unwrap(),
        "--to",
        &to,
    ])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status(endpoint: &str) -> serde_json::Value {
    serde_json::from_str(&stdout(&ordo(&[
        "status",
        "--endpoint",
        endpoint,
        "--json",
    ])))
    .unwrap()
}

fn sql(endpoint: &str, statement: &str) -> std::process::Output {
    ordo(&["sql", "--endpoint", endpoint, "-c", statement])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_refuses_reads_sql_and_watches_below_it_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let endpoint = node.endpoint.clone();
    let (admin, cli) = (data.path().join("node.key"), data.path().join("cli.key"));
    let out = sql(
        &endpoint,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let signer = ordo_client::keyfile::load(&cli).unwrap();
    let client = ordo_client::Client::connect(&endpoint).await.unwrap();
    let versions = put_in_turn(&client, &signer, 12).await;
    let horizon = versions[8];

    let stranger = set_policy(&endpoint, &cli, "2", "3600");
    assert!(
        stderr(&stranger).contains("permission denied"),
        "{}",
        stderr(&stranger)
    );
    assert!(
        stdout(&set_policy(&endpoint, &admin, "2", "3600")).starts_with("retention policy set")
    );
    let past_floor = compact(&endpoint, &admin, versions[11]);
    assert!(
        stderr(&past_floor).contains("keeps the newest 2 versions"),
        "{}",
        stderr(&past_floor)
    );
    assert!(
        !compact(&endpoint, &cli, horizon).status.success(),
        "a stranger may not compact"
    );
    assert!(stdout(&compact(&endpoint, &admin, horizon)).starts_with("compacted at version"));

    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&signer), b"default");
    match client.get_at(stream, b"k", horizon - 1).await {
        Err(ClientError::Compacted { oldest, .. }) => assert_eq!(oldest, horizon),
        other => panic!("read below the horizon: {other:?}"),
    }
    assert_eq!(
        client.get_at(stream, b"k", horizon).await.unwrap().value,
        b"v8"
    );
    let watch = ordo(&[
        "watch",
        "--endpoint",
        &endpoint,
        "--key",
        cli.to_str().unwrap(),
        "--after-version",
        "1",
    ]);
    let said = format!(
        "the oldest version a watch may resume after is {}",
        horizon - 1
    );
    assert!(stderr(&watch).contains(&said), "{}", stderr(&watch));
    let old = sql(
        &endpoint,
        &format!("SELECT v FROM t AS OF VERSION {}", horizon - 1),
    );
    assert!(stderr(&old).contains("SQLSTATE: 72000"), "{}", stderr(&old));
    let kept = sql(
        &endpoint,
        &format!("SELECT v FROM t AS OF VERSION {horizon}"),
    );
    assert!(
        String::from_utf8_lossy(&kept.stdout).contains("(1 row)"),
        "{}",
        stderr(&kept)
    );

    let seen = status(&endpoint);
    assert_eq!(seen["retention"]["horizon"], horizon, "{seen}");
    assert_eq!(seen["retention"]["keep_versions"], 2, "{seen}");
    let page = common::scrape(&node.metrics).await;
    assert_eq!(metric(&page, "ordo_retention_horizon"), horizon);

    assert!(node.terminate().success());
    let node = DevNode::start_with(data.path(), &[]);
    assert_eq!(
        status(&node.endpoint)["retention"]["horizon"],
        horizon,
        "after a restart"
    );
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let below = client.get_at(stream, b"k", horizon - 1).await;
    assert!(
        matches!(below, Err(ClientError::Compacted { .. })),
        "{below:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_compactor_keeps_the_policy_and_its_sweeper_takes_deleted_keys_away() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let admin = data.path().join("node.key");
    let policy = set_policy(&node.endpoint, &admin, "10", "0");
    assert!(policy.status.success());
    let signer = ordo_client::keyfile::load(&data.path().join("cli.key")).unwrap();
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&signer), b"default");
    for value in [Some(&b"soon gone"[..]), None] {
        client
            .transact(&signer, async |tx| {
                match value {
                    Some(value) => tx.put(stream, b"gone", value),
                    None => tx.delete(stream, b"gone"),
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let versions = put_in_turn(&client, &signer, 90).await;
    let newest = *versions.last().unwrap();
    let retention = |field: &str| status(&node.endpoint)["retention"][field].as_u64().unwrap();
    let horizon = eventually(Duration::from_secs(30), "the compactor compacts", || {
        let horizon = retention("horizon");
        (horizon > 0).then_some(horizon)
    });
    assert!(
        horizon >= 64 && horizon + 10 <= newest + 1,
        "horizon {horizon}, newest {newest}"
    );
    eventually(
        Duration::from_secs(30),
        "the sweeper sweeps the delete",
        || (retention("swept_deletes") >= 1).then_some(()),
    );
    assert_eq!(client.get(stream, b"gone").await.unwrap(), None);
}
