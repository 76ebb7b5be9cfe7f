//! Runs every sqllogictest script in `tests/slt/` against an in-process
//! store. Each script gets a fresh store; `connection` blocks inside a
//! script are separate sessions on that one store, so scripts can race
//! transactions against each other.

use ordo_kv::MemEngine;
use ordo_sql::{LocalStore, Session, SqlError, Value};
use sqllogictest::{DBOutput, DefaultColumnType};
use std::path::PathBuf;
use std::sync::Arc;

/// One session, as the runner sees it.
struct Db(Session<Arc<LocalStore<MemEngine>>>);

/// The runner matches `statement error <regex>` against this text: the
/// SQLSTATE first, then the message.
#[derive(Debug, thiserror::Error)]
#[error("[{state}] {0}", state = .0.sqlstate())]
struct DbError(SqlError);

fn cell(v: &Value) -> String {
    match v {
        Value::Text(s) if s.is_empty() => "(empty)".into(),
        other => other.to_string(),
    }
}

fn column_type(t: Option<ordo_sql::DataType>) -> DefaultColumnType {
    use ordo_sql::DataType as T;
    match t {
        Some(T::BigInt | T::Int) => DefaultColumnType::Integer,
        Some(T::Double) => DefaultColumnType::FloatingPoint,
        Some(_) => DefaultColumnType::Text,
        None => DefaultColumnType::Any,
    }
}

impl sqllogictest::DB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let results = self.0.execute(sql).map_err(DbError)?;
        let Some(last) = results.into_iter().last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if last.columns.is_empty() {
            let count = last
                .tag
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return Ok(DBOutput::StatementComplete(count));
        }
        Ok(DBOutput::Rows {
            types: last
                .columns
                .iter()
                .map(|c| column_type(c.data_type))
                .collect(),
            rows: last
                .rows
                .iter()
                .map(|row| row.iter().map(cell).collect())
                .collect(),
        })
    }

    fn engine_name(&self) -> &str {
        "ordo"
    }
}

fn scripts() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn sqllogictest_scripts_pass() {
    let files = scripts();
    assert!(!files.is_empty(), "no .slt scripts found");
    let mut failures = Vec::new();
    let mut records = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable script");
        records += text
            .lines()
            .filter(|l| l.starts_with("statement ") || l.starts_with("query "))
            .count();
        let store = Arc::new(LocalStore::open(MemEngine::new()).expect("store opens"));
        let mut runner = sqllogictest::Runner::new(move || {
            let store = store.clone();
            async move { Ok::<_, DbError>(Db(Session::new(store))) }
        });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{}: {}", file.display(), e.display(false)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The suite is meant to stay broad: see the acceptance list.
    assert!(records >= 300, "only {records} records in the suite");
}
