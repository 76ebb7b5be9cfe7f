//! The command line against a real `ordo dev` on its first start: the CLI
//! user's key and default stream exist, and `ordo kv` puts, gets, scans and
//! deletes with no set-up; `ordo keygen` makes keys and never overwrites one.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, ordo, stdout};
use std::process::Command;
#[test]
fn kv_commands_work_on_first_start_with_no_set_up() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let key = data.path().join("cli.key");
    let key = key.to_str().unwrap();
    let kv = |args: &[&str]| {
        let mut all = vec!["kv", "--endpoint", node.endpoint.as_str(), "--key", key];
        all.extend_from_slice(args);
        ordo(&all)
    };
    assert!(stdout(&kv(&["put", "greeting", "hello"])).starts_with("committed at version "));
    kv(&["put", "other", "x"]);
    assert_eq!(stdout(&kv(&["get", "greeting"])), "hello\n");
    let after_commit = kv(&["get", "greeting", "--min-version", "3"]);
    assert_eq!(stdout(&after_commit), "hello\n", "version 3 is applied");
    assert_eq!(
        stdout(&kv(&["get", "greeting", "--json"])).trim_end(),
        r#"{"key":"greeting","found":true,"value":"hello","version":2}"#
    );
    assert_eq!(stdout(&kv(&["scan"])), "greeting\thello\nother\tx\n");
    assert_eq!(
        stdout(&kv(&["scan", "--prefix", "gr"])),
        "greeting\thello\n"
    );
    stdout(&kv(&["del", "greeting"]));
    let missing = kv(&["get", "greeting"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    // Several writes at once, guarded by the versions the caller expects.
    let committed = stdout(&kv(&[
        "txn", "--put", "a=1", "--put", "b=2", "--del", "other", "--expect", "a@0",
    ]));
    let version: u64 = committed
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        stdout(&kv(&["scan"])),
        "a\t1\nb\t2\n",
        "all three writes, atomically"
    );
    let stale = kv(&["txn", "--put", "a=9", "--expect", "a@0"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&stale.stderr)
            .contains(&format!("a is at version {version}, expected 0"))
    );
    assert_eq!(
        stdout(&kv(&["get", "a"])),
        "1\n",
        "a failed guard writes nothing"
    );
    let guarded = format!("a@{version}");
    stdout(&kv(&["txn", "--put", "a=3", "--expect", &guarded]));
    assert_eq!(stdout(&kv(&["get", "a"])), "3\n");

    // Someone else's key cannot write the CLI user's stream.
    let other = data.path().join("other.key");
    let made = ordo(&["keygen", "--out", other.to_str().unwrap()]);
    assert!(stdout(&made).starts_with("0x"));
    assert!(
        !ordo(&["keygen", "--out", other.to_str().unwrap()])
            .status
            .success(),
        "keys are never overwritten"
    );
    let stream_id = {
        let owner = ordo_client::keyfile::load(std::path::Path::new(key)).unwrap();
        let id = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"default");
        ordo_log::hex(&id)
    };
    let denied = ordo(&[
        "kv",
        "--endpoint",
        &node.endpoint,
        "--key",
        other.to_str().unwrap(),
        "--stream-id",
        &stream_id,
        "put",
        "k",
        "v",
    ]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission_denied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(node.terminate().success());
}

#[test]
fn stream_commands_create_grant_and_show_roles() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let owner_key = data.path().join("cli.key");
    let friend_key = data.path().join("friend.key");
    let friend = stdout(&ordo(&["keygen", "--out", friend_key.to_str().unwrap()]));
    let friend = friend.split_whitespace().next().unwrap().to_string();
    let run = |key: &std::path::Path, args: &[&str]| {
        let mut all = vec![
            "stream",
            "--endpoint",
            node.endpoint.as_str(),
            "--key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        ordo(&all)
    };
    let created = stdout(&run(&owner_key, &["create", "shared"]));
    assert!(created.starts_with("created stream "), "{created}");
    let id = created.split_whitespace().nth(2).unwrap().to_string();
    // The friend cannot grant itself anything; the owner can grant it writer.
    let denied = run(&friend_key, &["--stream-id", &id, "grant-writer", &friend]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("permission_denied"));
    stdout(&run(
        &owner_key,
        &["--stream", "shared", "grant-writer", &friend],
    ));
    let info = stdout(&run(
        &owner_key,
        &["--stream", "shared", "info", &friend, "--for-key", "k"],
    ));
    assert!(info.contains("writer         yes"), "{info}");
    assert!(info.contains("admin          no"), "{info}");
    assert!(info.contains("can write      yes"), "{info}");
    let info = stdout(&run(
        &owner_key,
        &[
            "--stream",
            "shared",
            "info",
            &friend,
            "--for-key",
            "k",
            "--json",
        ],
    ));
    let info: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(info["account"], friend.as_str());
    assert_eq!(
        (
            &info["exists"],
            &info["admin"],
            &info["writer"],
            &info["can_write"]
        ),
        (&true.into(), &false.into(), &true.into(), &true.into())
    );
    // Now the friend writes the owner's stream through `kv`.
    let put = ordo(&[
        "kv",
        "--endpoint",
        &node.endpoint,
        "--key",
        friend_key.to_str().unwrap(),
        "--stream-id",
        &id,
        "put",
        "k",
        "v",
    ]);
    stdout(&put);
    assert!(node.terminate().success());
}

#[test]
fn watch_prints_changes_as_they_commit_and_resumes() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let key = data.path().join("cli.key");
    let key = key.to_str().unwrap();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "watch",
            "--endpoint",
            &node.endpoint,
            "--key",
            key,
            "--prefix",
            "w/",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let kv = |args: &[&str]| {
        let mut all = vec!["kv", "--endpoint", node.endpoint.as_str(), "--key", key];
        all.extend_from_slice(args);
        stdout(&ordo(&all))
    };
    kv(&["put", "w/a", "1"]);
    kv(&["put", "elsewhere", "x"]);
    kv(&["del", "w/a"]);
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    assert_eq!(first, "2\tput\tw/a\t1");
    assert_eq!(second, "4\tdel\tw/a\t");
    // Resuming after version 2 starts with the delete.
    let resumed = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "watch",
            "--endpoint",
            &node.endpoint,
            "--key",
            key,
            "--prefix",
            "w/",
            "--after-version",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut resumed = resumed;
    let line = BufReader::new(resumed.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    assert_eq!(line, "4\tdel\tw/a\t");
    assert!(node.terminate().success());
}

/// Bytes as `--json` writes them (see `ordo_server::commands::json`): a
/// string when UTF-8, else `{"base64": ...}`.
fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    ordo_server::commands::json::JsonBytes::decode(value)
        .unwrap_or_else(|| panic!("neither form: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_of_binary_keys_and_values_parses_and_round_trips() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let key_file = data.path().join("cli.key");
    let signer = ordo_client::keyfile::load(&key_file).unwrap();
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&signer), b"default");
    let written: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"j/ctl\x01\n\"\\".to_vec(), b"tab\there\x1b[0m".to_vec()),
        (b"j/\xff\xfe".to_vec(), vec![0, 159, 146, 150, 0xc3]),
        (b"j/plain".to_vec(), "caf\u{e9}".as_bytes().to_vec()),
    ];
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let pairs = written.clone();
    client
        .transact(&signer, async |tx| {
            pairs.iter().for_each(|(k, v)| tx.put(stream, k, v));
            Ok(())
        })
        .await
        .unwrap();
    let key = key_file.to_str().unwrap();
    let endpoint = node.endpoint.as_str();
    let scan = ordo(&[
        "kv",
        "--endpoint",
        endpoint,
        "--key",
        key,
        "scan",
        "--prefix",
        "j/",
        "--json",
    ]);
    let mut read: Vec<(Vec<u8>, Vec<u8>)> = stdout(&scan)
        .lines()
        .map(|line| {
            let row: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            (json_bytes(&row["key"]), json_bytes(&row["value"]))
        })
        .collect();
    read.sort();
    let mut expected = written;
    expected.sort();
    assert_eq!(
        read, expected,
        "every key and value must come back byte for byte"
    );
    let get = ordo(&[
        "kv",
        "--endpoint",
        endpoint,
        "--key",
        key,
        "get",
        "j/plain",
        "--json",
    ]);
    let row: serde_json::Value = serde_json::from_str(stdout(&get).trim()).unwrap();
    assert_eq!(row["value"], "caf\u{e9}", "valid UTF-8 stays a string");
    assert!(node.terminate().success());
}
