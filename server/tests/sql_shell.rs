//! SQL end to end: `ordo sql` against a real `ordo dev`, scripted and
//! interactive (through a pseudo-terminal), concurrent sessions, and SQL
//! commits surviving kill -9.
#![allow(clippy::unwrap_used)]

mod common;

use common::DevNode;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn sql(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["sql", "--endpoint", endpoint])
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn scripts_print_tables_and_stop_at_the_first_failure() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let out = sql(
        &node.endpoint,
        &[
            "-c",
            "CREATE TABLE fruit (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION)",
            "-c",
            "INSERT INTO fruit VALUES (1, 'apple', 0.5), (2, 'pear', 0.75); SELECT * FROM fruit ORDER BY id",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("INSERT 0 2"), "{stdout}");
    assert!(
        stdout.contains(" id | name  | price\n----+-------+-------\n  1 | apple |   0.5\n  2 | pear  |  0.75\n(2 rows)"),
        "{stdout}"
    );

    // -f: statements before the failure ran; the failure is on stderr with
    // its SQLSTATE and position; the exit status is 1.
    let script = data.path().join("script.sql");
    std::fs::write(
        &script,
        "INSERT INTO fruit VALUES (3, 'fig', 2.0);\nSELECT *\nFROM fruit\nWHERE id = = 3;\nINSERT INTO fruit VALUES (4, 'kiwi', 1.0);\n",
    )
    .unwrap();
    let out = sql(&node.endpoint, &["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("SQLSTATE: 42601"), "{stderr}");
    assert!(stderr.contains("LINE 4, COLUMN"), "{stderr}");
    let out = sql(&node.endpoint, &["-c", "SELECT id FROM fruit ORDER BY id"]);
    assert!(
        text(&out.stdout).contains("  1\n  2\n  3\n(3 rows)"),
        "{}",
        text(&out.stdout)
    );

    // Typed errors: nothing changes.
    for (statement, state) in [
        ("INSERT INTO fruit VALUES (1, 'again', 1.0)", "23505"),
        ("INSERT INTO fruit (id) VALUES (9)", "23502"),
        ("INSERT INTO fruit VALUES (9, 'x', 'cheap')", "42804"),
        ("SELECT * FROM vegetables", "42P01"),
        ("SELECT colour FROM fruit", "42703"),
    ] {
        let out = sql(&node.endpoint, &["-c", statement]);
        assert_eq!(out.status.code(), Some(1), "{statement}");
        assert!(
            text(&out.stderr).contains(&format!("SQLSTATE: {state}")),
            "{statement}: {}",
            text(&out.stderr)
        );
    }
    let out = sql(
        &node.endpoint,
        &["-c", "SELECT count(*) FROM fruit", "-c", "\\d fruit"],
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("     3\n(1 row)"), "{stdout}");
    assert!(stdout.contains("primary key (1)"), "{stdout}");
}

/// A pseudo-terminal running `ordo sql`, with its output collected.
struct Terminal {
    master: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
    child: std::process::Child,
}

impl Terminal {
    fn open(endpoint: &str, history: &std::path::Path) -> Self {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = pty.slave;
        let child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["sql", "--endpoint", endpoint, "--history"])
            .arg(history)
            .env("TERM", "dumb")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (send, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || send.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            master,
            output,
            seen: String::new(),
            child,
        }
    }

    /// Types a line.
    fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }

    /// Waits until the output since the last wait contains `expected`;
    /// returns that output.
    fn expect(&mut self, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(expected) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self
                    .seen
                    .push_str(&String::from_utf8_lossy(&bytes).replace('\r', "")),
                Err(_) => panic!("waited for {expected:?}; the shell printed:\n{}", self.seen),
            }
        }
        let at = self.seen.find(expected).unwrap() + expected.len();
        let shown = self.seen[..at].to_string();
        self.seen = self.seen[at..].to_string();
        shown
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interactive_shell_prints_tables_and_a_lost_race() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let mut shell = Terminal::open(&node.endpoint, &data.path().join("history"));
    shell.expect("ordo=> ");
    shell.type_line("CREATE TABLE acct (id INT PRIMARY KEY,");
    shell.expect("ordo-> ");
    shell.type_line("  owner TEXT, balance BIGINT NOT NULL);");
    shell.expect("CREATE TABLE");
    shell.type_line("INSERT INTO acct VALUES (1, 'ann', 100), (2, 'ben', 50);");
    shell.expect("INSERT 0 2");
    shell.type_line("SELECT * FROM acct ORDER BY id;");
    let table = shell.expect("(2 rows)");
    assert!(
        table.contains(" id | owner | balance\n----+-------+---------\n  1 | ann   |     100\n  2 | ben   |      50\n(2 rows)"),
        "{table}"
    );
    shell.expect("Time: ");
    shell.type_line("\\dt");
    shell.expect("acct");

    // The shell's block and another session update the same row; the other
    // commits first, so the shell's COMMIT is a serialization failure.
    shell.type_line("BEGIN;");
    shell.expect("ordo=*> ");
    shell.type_line("UPDATE acct SET balance = balance - 10 WHERE id = 1;");
    shell.expect("UPDATE 1");
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let mut other = client.sql_session().await.unwrap();
    let outcome = other
        .run("UPDATE acct SET balance = balance + 1000 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(outcome.failure, None);
    shell.type_line("COMMIT;");
    let failure = shell.expect("HINT");
    assert!(
        failure.contains("ERROR:  could not serialize access"),
        "{failure}"
    );
    assert!(failure.contains("SQLSTATE: 40001"), "{failure}");
    shell.type_line("SELECT balance FROM acct WHERE id = 1;");
    let table = shell.expect("(1 row)");
    assert!(table.contains("    1100\n(1 row)"), "{table}");
    shell.type_line("\\q");
    let status = shell.child.wait().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_updating_one_row_one_commits_one_must_retry() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let mut a = client.sql_session().await.unwrap();
    let mut b = client.sql_session().await.unwrap();
    let setup = a
        .run("CREATE TABLE c (id INT PRIMARY KEY, n BIGINT); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    assert_eq!(setup.failure, None);
    for (first, step) in [
        (true, "BEGIN"),
        (false, "BEGIN"),
        (true, "UPDATE c SET n = n + 1 WHERE id = 1"),
        (false, "UPDATE c SET n = n + 10 WHERE id = 1"),
        (true, "COMMIT"),
    ] {
        let session = if first { &mut a } else { &mut b };
        let outcome = session.run(step).await.unwrap();
        assert_eq!(outcome.failure, None, "{step}");
    }
    let lost = b.run("COMMIT").await.unwrap();
    let failure = lost.failure.expect("the second commit must fail");
    assert_eq!(failure.sqlstate, "40001", "{}", failure.message);
    assert!(!lost.in_transaction);
    // Retrying the loser's transaction works and sees the winner's write.
    let retried = b
        .run("UPDATE c SET n = n + 10 WHERE id = 1; SELECT n FROM c")
        .await
        .unwrap();
    assert_eq!(retried.failure, None);
    let n = ordo_client::sql::value_text(&retried.results[1].rows[0][0]);
    assert_eq!(n, "11");
}

#[test]
fn acknowledged_sql_commits_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let mut statements = vec![
        "-c".to_string(),
        "CREATE TABLE d (id INT PRIMARY KEY, v TEXT)".to_string(),
    ];
    for i in 0..20 {
        statements.push("-c".into());
        statements.push(format!("INSERT INTO d VALUES ({i}, 'row {i}')"));
    }
    let args: Vec<&str> = statements.iter().map(String::as_str).collect();
    let out = sql(&node.endpoint, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    node.kill();
    let node = DevNode::start(data.path());
    // The restarted node replays the log; wait until it has caught up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sql(&node.endpoint, &["-c", "SELECT count(*), max(v) FROM d"]);
        let stdout = text(&out.stdout);
        if stdout.contains("20 | row 9") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart: {stdout} {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_too_long_to_parse_inline_runs_up_to_its_first_bad_statement() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let mut session = client.sql_session().await.unwrap();
    let mut script = String::from("CREATE TABLE s (id INT PRIMARY KEY, v TEXT);");
    for i in 0..100 {
        script.push_str(&format!(
            "INSERT INTO s VALUES ({i}, 'a value that makes the script long');"
        ));
    }
    assert!(script.len() > ordo_server::node::services::sql::INLINE_PARSE_BYTES);
    script.push_str("SELEC 1; INSERT INTO s VALUES (999, 'after the error');");
    let outcome = session.run(&script).await.unwrap();
    assert_eq!(
        outcome.results.len(),
        101,
        "every statement before the error ran"
    );
    let failure = outcome.failure.expect("the misspelt statement fails");
    assert_eq!(failure.sqlstate, "42601", "{}", failure.message);
    let count = session.run("SELECT count(*) FROM s").await.unwrap();
    assert_eq!(count.failure, None);
    let n = ordo_client::sql::value_text(&count.results[0].rows[0][0]);
    assert_eq!(n, "100", "nothing after the error ran");
}
