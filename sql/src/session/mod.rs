//! Sessions: statements, transaction blocks and their commits.
//!
//! Outside `BEGIN ... COMMIT` each statement is its own transaction: it
//! reads at the newest version, and if it wrote anything its reads and
//! writes are committed through the log, where replay decides them. A
//! conflict there (another transaction wrote what this one read) comes back
//! as SQLSTATE 40001, and running the statement (or the block) again is
//! safe. Inside a block, statements share one snapshot and commit together;
//! after an error the block only accepts ROLLBACK, as in PostgreSQL.

//!
//! ## Layout
//!
//! - this module: [`Session`], the block state machine (BEGIN, COMMIT,
//!   ROLLBACK, a failed block, AS OF VERSION) and the commit's decision;
//!   [`Session::start_statement`], which stops at the commit ([`Step`]) so
//!   a server can wait for the log without holding a thread; and
//!   [`Session::is_brief_here`], which tells statements of a few point
//!   reads from those that may scan.
//! - [`result`]: [`QueryResult`], what a statement returns.
//! - [`dml`]: SELECT, INSERT, UPDATE, DELETE, EXPLAIN.
//! - [`ddl`]: CREATE/DROP TABLE and INDEX, ALTER TABLE.
//! - [`show`]: SHOW TABLES, SHOW COLUMNS.

pub mod ddl;
pub mod dml;
pub mod result;
pub mod show;

pub use result::QueryResult;

use crate::error::SqlError;
use crate::exec::Exec;
use crate::parse::{Parsed, parse_each};
use crate::store::{Commit, Store, Txn};
use ordo_txn::Outcome;
use sqlparser::ast::{self, Statement};

/// A SQL session over a store.
#[derive(Debug)]
pub struct Session<S> {
    store: S,
    block: Option<Txn>,
    failed: bool,
}

impl<S: Store> Session<S> {
    /// A session with no transaction open.
    pub fn new(store: S) -> Self {
        Self {
            store,
            block: None,
            failed: false,
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Whether a `BEGIN` block is open.
    pub fn in_transaction(&self) -> bool {
        self.block.is_some()
    }

    /// Runs every statement of `sql` in order and returns their results;
    /// stops at the first failure and returns it.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, SqlError> {
        parse_each(sql)
            .into_iter()
            .map(|statement| self.execute_statement(statement))
            .collect()
    }

    /// Runs a statement as [`parse_each`] gave it: a statement that did not
    /// parse fails like any other, aborting an open block.
    pub fn execute_statement(
        &mut self,
        statement: Result<Parsed, SqlError>,
    ) -> Result<QueryResult, SqlError> {
        let step = self.start_statement(statement)?;
        self.complete(step)
    }

    /// Runs one parsed statement.
    pub fn execute_parsed(&mut self, parsed: &Parsed) -> Result<QueryResult, SqlError> {
        let step = self.start_parsed(parsed)?;
        self.complete(step)
    }

    /// Runs a statement up to its commit, if it has one: the caller hands
    /// the commit to the log by whatever path it likes and gives the
    /// outcome to [`AwaitingOutcome::finish`]. A node uses this to
    /// wait for the log without holding a thread; [`Session::execute_statement`]
    /// is the same with [`Store::commit`] in between.
    ///
    /// Nothing in the session waits on the commit: by the time a statement
    /// commits, its block (if any) is already closed, so the session takes
    /// its next statement whatever the outcome.
    pub fn start_statement(
        &mut self,
        statement: Result<Parsed, SqlError>,
    ) -> Result<Step, SqlError> {
        match statement {
            Ok(parsed) => self.start_parsed(&parsed),
            Err(e) => {
                if self.block.is_some() {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }

    /// [`Session::start_statement`] for a statement that parsed.
    pub fn start_parsed(&mut self, parsed: &Parsed) -> Result<Step, SqlError> {
        match &parsed.statement {
            Statement::StartTransaction { .. } => return self.begin().map(Step::Done),
            Statement::Commit { chain: false, .. } => return self.commit_block(),
            Statement::Rollback {
                chain: false,
                savepoint: None,
            } => {
                self.block = None;
                self.failed = false;
                return Ok(Step::Done(QueryResult::command("ROLLBACK")));
            }
            _ => {}
        }
        if self.failed {
            return Err(SqlError::InFailedTransaction);
        }
        if let Some(version) = parsed.as_of {
            return self.as_of(&parsed.statement, version).map(Step::Done);
        }
        match self.block.take() {
            Some(mut txn) => {
                let result = self.run(&mut txn, &parsed.statement);
                self.block = Some(txn);
                if result.is_err() {
                    self.failed = true;
                }
                result.map(Step::Done)
            }
            None => {
                let mut txn = Txn::new(self.store.latest_version()?);
                let result = self.run(&mut txn, &parsed.statement)?;
                Step::commit_if_written(txn, result)
            }
        }
    }

    /// Commits a started statement through [`Store::commit`].
    fn complete(&self, step: Step) -> Result<QueryResult, SqlError> {
        match step {
            Step::Done(result) => Ok(result),
            Step::Commit(pending) => {
                let (commit, awaiting) = pending.into_parts();
                awaiting.finish(self.store.commit(commit)?)
            }
        }
    }

    /// [`is_brief`], or a SELECT whose plan, made against this session's
    /// snapshot, reads at most [`BRIEF_POINT_READS`] rows, each by whole
    /// primary key (`WHERE id = 7`, `WHERE id IN (1, 2)`, joins of such).
    ///
    /// Planning reads only table definitions; the statement is planned
    /// again when it runs. A SELECT that does not plan here (a table
    /// created in the open block, a mistake) is not brief: it runs where
    /// any statement may, and fails there if it must.
    pub fn is_brief_here(&self, parsed: &Parsed) -> bool {
        if is_brief(parsed) {
            return true;
        }
        let Statement::Query(query) = &parsed.statement else {
            return false;
        };
        let version = match (parsed.as_of, &self.block) {
            (Some(version), _) => version,
            (None, Some(block)) => block.version(),
            (None, None) => match self.store.latest_version() {
                Ok(version) => version,
                Err(_) => return false,
            },
        };
        let mut txn = Txn::read_only(version);
        let planned = crate::plan::query::plan_query(&mut self.exec(&mut txn), query);
        planned.is_ok_and(|planned| {
            planned
                .plan
                .point_reads()
                .is_some_and(|reads| reads <= BRIEF_POINT_READS)
        })
    }

    /// Opens a block; its snapshot is the newest version at BEGIN.
    fn begin(&mut self) -> Result<QueryResult, SqlError> {
        if self.block.is_none() {
            self.block = Some(Txn::new(self.store.latest_version()?));
            self.failed = false;
        }
        Ok(QueryResult::command("BEGIN"))
    }

    fn commit_block(&mut self) -> Result<Step, SqlError> {
        let Some(txn) = self.block.take() else {
            return Ok(Step::Done(QueryResult::command("COMMIT")));
        };
        if std::mem::take(&mut self.failed) {
            return Ok(Step::Done(QueryResult::command("ROLLBACK")));
        }
        Step::commit_if_written(txn, QueryResult::command("COMMIT"))
    }

    fn as_of(&mut self, statement: &Statement, version: u64) -> Result<QueryResult, SqlError> {
        if self.block.is_some() {
            return Err(SqlError::InvalidTransactionState(
                "AS OF VERSION reads outside a transaction block only".into(),
            ));
        }
        let Statement::Query(query) = statement else {
            return Err(SqlError::InvalidTransactionState(
                "AS OF VERSION applies to SELECT only".into(),
            ));
        };
        let latest = self.store.latest_version()?;
        if version > latest {
            return Err(SqlError::InvalidTransactionState(format!(
                "version {version} is not committed yet (the newest is {latest})"
            )));
        }
        let mut txn = Txn::read_only(version);
        dml::select(&mut self.exec(&mut txn), query)
    }

    /// Runs a statement inside `txn`.
    fn run(&mut self, txn: &mut Txn, statement: &Statement) -> Result<QueryResult, SqlError> {
        let exec = &mut self.exec(txn);
        match statement {
            Statement::Query(query) => dml::select(exec, query),
            Statement::Insert(insert) => dml::insert(exec, insert),
            Statement::Update(update) => dml::update(exec, update),
            Statement::Delete(delete) => dml::delete(exec, delete),
            Statement::Explain {
                statement,
                analyze: false,
                format: None,
                ..
            } => dml::explain(exec, statement),
            Statement::CreateTable(create) => ddl::create_table(exec, create),
            Statement::CreateIndex(create) => ddl::create_index(exec, create),
            Statement::AlterTable(alter) => ddl::alter_table(exec, alter),
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade: false,
                temporary: false,
                table: None,
                ..
            } => match object_type {
                ast::ObjectType::Table => ddl::drop_tables(exec, names, *if_exists),
                ast::ObjectType::Index => ddl::drop_indexes(exec, names, *if_exists),
                other => Err(SqlError::unsupported(format!("DROP {other}"))),
            },
            Statement::ShowTables { .. } => show::tables(exec),
            Statement::ShowColumns { show_options, .. } => {
                let Some(name) = show_options
                    .show_in
                    .as_ref()
                    .and_then(|i| i.parent_name.as_ref())
                else {
                    return Err(SqlError::unsupported("SHOW COLUMNS without FROM <table>"));
                };
                show::columns(exec, name)
            }
            other => Err(SqlError::unsupported(format!(
                "statement {}",
                other
                    .to_string()
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    fn exec<'a>(&'a self, txn: &'a mut Txn) -> Exec<'a, S> {
        Exec {
            store: &self.store,
            txn,
        }
    }
}

/// Most VALUES rows an INSERT may carry and still be [`is_brief`]: each
/// row costs a few point reads (its primary key, each unique index), so 64
/// rows stay within a millisecond or so of work.
pub const BRIEF_INSERT_ROWS: usize = 64;

/// Whether running `parsed` costs no more than a few point reads: `BEGIN`,
/// `COMMIT`, `ROLLBACK`, and an INSERT of at most [`BRIEF_INSERT_ROWS`]
/// VALUES rows (constant expressions, so no query hides in them).
///
/// A server may run such a statement on an event-loop thread; anything
/// else may scan a table and belongs on a thread that can block.
pub fn is_brief(parsed: &Parsed) -> bool {
    match &parsed.statement {
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => true,
        Statement::Insert(insert) => insert.source.as_deref().is_some_and(|source| {
            source.order_by.is_none()
                && source.limit_clause.is_none()
                && matches!(source.body.as_ref(), ast::SetExpr::Values(values)
                    if values.rows.len() <= BRIEF_INSERT_ROWS)
        }),
        _ => false,
    }
}

/// Most rows a SELECT may read by primary key and still be brief in
/// [`Session::is_brief_here`]: as many point reads as the longest brief
/// INSERT makes.
pub const BRIEF_POINT_READS: usize = BRIEF_INSERT_ROWS;

/// Where a statement stands after [`Session::start_statement`].
#[derive(Debug)]
pub enum Step {
    /// The statement is finished (it wrote nothing, or it is part of an
    /// open block).
    Done(QueryResult),
    /// The statement's transaction waits for the log's decision.
    Commit(PendingCommit),
}

impl Step {
    /// `result`, once `txn` is committed if it wrote anything.
    fn commit_if_written(txn: Txn, result: QueryResult) -> Result<Step, SqlError> {
        if !txn.has_writes() {
            return Ok(Step::Done(result));
        }
        Ok(Step::Commit(PendingCommit {
            commit: txn.into_commit()?,
            result: AwaitingOutcome(result),
        }))
    }
}

/// A statement whose transaction is ready to commit.
#[derive(Debug)]
pub struct PendingCommit {
    commit: Commit,
    result: AwaitingOutcome,
}

impl PendingCommit {
    /// What to commit, and the statement's result waiting for the outcome.
    pub fn into_parts(self) -> (Commit, AwaitingOutcome) {
        (self.commit, self.result)
    }
}

/// A statement's result, complete but for its commit's outcome.
#[derive(Debug)]
pub struct AwaitingOutcome(QueryResult);

impl AwaitingOutcome {
    /// The statement's result once the log decided `outcome` on its
    /// commit: the commit's version, or the error the outcome means
    /// (SQLSTATE 40001 for a conflict).
    pub fn finish(self, outcome: Outcome) -> Result<QueryResult, SqlError> {
        let mut result = self.0;
        result.version = Some(committed_version(outcome)?);
        Ok(result)
    }
}

/// Maps the log's decision on a commit to its version or an error.
fn committed_version(outcome: Outcome) -> Result<u64, SqlError> {
    match outcome {
        Outcome::Committed { version } => Ok(version),
        Outcome::Duplicate { original } => committed_version(*original),
        Outcome::Conflict { key, .. } => Err(SqlError::SerializationFailure(format!(
            "a concurrent transaction wrote key {} after this one read it; retry the transaction",
            ordo_txn::ids::hex(&key)
        ))),
        Outcome::TooOld {
            read_version,
            oldest,
        } => Err(SqlError::SerializationFailure(format!(
            "the snapshot (version {read_version}) is older than the oldest checkable version {oldest}; retry the transaction"
        ))),
        Outcome::PermissionDenied { op, .. } => Err(SqlError::PermissionDenied(format!(
            "this session may not {op} in the SQL stream"
        ))),
        other => Err(SqlError::Store(format!("the commit was refused: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStore;
    use crate::parse::parse;
    use ordo_kv::MemEngine;
    use std::sync::Arc;

    fn parsed(sql: &str) -> Parsed {
        parse(sql).expect("parses").remove(0)
    }

    fn values(rows: usize) -> String {
        let rows: Vec<String> = (0..rows).map(|i| format!("({i})")).collect();
        format!("INSERT INTO t VALUES {}", rows.join(", "))
    }

    #[test]
    fn brief_statements_are_transaction_control_and_short_value_inserts() {
        for sql in [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            &values(1),
            &values(BRIEF_INSERT_ROWS),
        ] {
            assert!(is_brief(&parsed(sql)), "{sql}");
        }
        let long = values(BRIEF_INSERT_ROWS + 1);
        for sql in [
            long.as_str(),
            "INSERT INTO t SELECT * FROM u",
            "SELECT * FROM t WHERE id = 1",
            "UPDATE t SET v = 1 WHERE id = 1",
            "DELETE FROM t WHERE id = 1",
            "CREATE TABLE u (id INT PRIMARY KEY)",
        ] {
            assert!(!is_brief(&parsed(sql)), "{sql}");
        }
    }

    type TestSession = Session<Arc<LocalStore<MemEngine>>>;

    #[test]
    fn a_select_is_brief_here_when_it_reads_a_few_rows_by_whole_primary_key() {
        let (mut session, _) = session_pair();
        let ids: Vec<String> = (0..=BRIEF_POINT_READS).map(|i| i.to_string()).collect();
        let too_many = format!("SELECT v FROM t WHERE id IN ({})", ids.join(", "));
        let few = format!("SELECT v FROM t WHERE id IN ({})", ids[1..].join(", "));
        for (sql, brief) in [
            ("SELECT v FROM t WHERE id = 1", true),
            (few.as_str(), true),
            ("SELECT 1", true),
            ("SELECT 1 AS OF VERSION 1", true),
            (too_many.as_str(), false),
            ("SELECT * FROM t", false),
            ("SELECT * FROM t WHERE v = 'a'", false),
            ("SELECT count(*) FROM t WHERE id > 3", false),
            ("SELECT * FROM missing WHERE id = 1", false),
        ] {
            assert_eq!(session.is_brief_here(&parsed(sql)), brief, "{sql}");
        }
        // A table that exists only inside the open block does not plan
        // against the block's snapshot: not brief, and still runs.
        session
            .execute("BEGIN; CREATE TABLE u (id INT PRIMARY KEY)")
            .expect("block");
        let in_block = parsed("SELECT * FROM u WHERE id = 1");
        assert!(!session.is_brief_here(&in_block));
        assert!(session.execute_parsed(&in_block).is_ok());
    }

    fn session_pair() -> (TestSession, TestSession) {
        let store = Arc::new(LocalStore::open(MemEngine::new()).expect("store"));
        let mut first = Session::new(store.clone());
        first
            .execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
            .expect("table");
        (first, Session::new(store))
    }

    fn started_commit(session: &mut TestSession, sql: &str) -> PendingCommit {
        match session.start_parsed(&parsed(sql)).expect("starts") {
            Step::Commit(pending) => pending,
            Step::Done(result) => panic!("{sql} finished without a commit: {result:?}"),
        }
    }

    #[test]
    fn a_started_insert_is_visible_only_after_its_commit_and_reports_its_version() {
        let (mut session, mut other) = session_pair();
        let (commit, awaiting) =
            started_commit(&mut session, "INSERT INTO t VALUES (1, 'a')").into_parts();
        let before = other.execute("SELECT count(*) FROM t").expect("select");
        assert_eq!(before[0].rows, vec![vec![crate::Value::Int(0)]]);
        let outcome = session.store().commit(commit).expect("commit");
        let result = awaiting.finish(outcome).expect("committed");
        assert_eq!(result.tag, "INSERT 0 1");
        let version = result.version.expect("a committed statement has a version");
        assert_eq!(version, session.store().latest_version().expect("version"));
        let after = other
            .execute("SELECT v FROM t WHERE id = 1")
            .expect("select");
        assert_eq!(after[0].rows, vec![vec![crate::Value::Text("a".into())]]);
    }

    #[test]
    fn of_two_started_inserts_of_one_key_the_later_commit_is_a_serialization_failure() {
        let (mut first, mut second) = session_pair();
        let a = started_commit(&mut first, "INSERT INTO t VALUES (7, 'first')");
        let b = started_commit(&mut second, "INSERT INTO t VALUES (7, 'second')");
        let (commit, awaiting) = a.into_parts();
        awaiting
            .finish(first.store().commit(commit).expect("commit"))
            .expect("the first commits");
        let (commit, awaiting) = b.into_parts();
        let lost = awaiting.finish(second.store().commit(commit).expect("commit"));
        let error = lost.expect_err("the second read the key as absent, then it was written");
        assert_eq!(error.sqlstate(), "40001", "{error}");
        assert!(!second.in_transaction());
        let rows = second
            .execute("SELECT v FROM t WHERE id = 7")
            .expect("select");
        assert_eq!(rows[0].rows, vec![vec![crate::Value::Text("first".into())]]);
    }
}
