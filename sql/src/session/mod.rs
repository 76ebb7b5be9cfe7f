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
//!   ROLLBACK, a failed block, AS OF VERSION) and the commit's decision.
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
use crate::store::{Store, Txn};
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
        match statement {
            Ok(parsed) => self.execute_parsed(&parsed),
            Err(e) => {
                if self.block.is_some() {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }

    /// Runs one parsed statement.
    pub fn execute_parsed(&mut self, parsed: &Parsed) -> Result<QueryResult, SqlError> {
        match &parsed.statement {
            Statement::StartTransaction { .. } => return self.begin(),
            Statement::Commit { chain: false, .. } => return self.commit_block(),
            Statement::Rollback {
                chain: false,
                savepoint: None,
            } => {
                self.block = None;
                self.failed = false;
                return Ok(QueryResult::command("ROLLBACK"));
            }
            _ => {}
        }
        if self.failed {
            return Err(SqlError::InFailedTransaction);
        }
        if let Some(version) = parsed.as_of {
            return self.as_of(&parsed.statement, version);
        }
        match self.block.take() {
            Some(mut txn) => {
                let result = self.run(&mut txn, &parsed.statement);
                self.block = Some(txn);
                if result.is_err() {
                    self.failed = true;
                }
                result
            }
            None => {
                let mut txn = Txn::new(self.store.latest_version()?);
                let mut result = self.run(&mut txn, &parsed.statement)?;
                if txn.has_writes() {
                    result.version = Some(self.commit(txn)?);
                }
                Ok(result)
            }
        }
    }

    /// Opens a block; its snapshot is the newest version at BEGIN.
    fn begin(&mut self) -> Result<QueryResult, SqlError> {
        if self.block.is_none() {
            self.block = Some(Txn::new(self.store.latest_version()?));
            self.failed = false;
        }
        Ok(QueryResult::command("BEGIN"))
    }

    fn commit_block(&mut self) -> Result<QueryResult, SqlError> {
        let Some(txn) = self.block.take() else {
            return Ok(QueryResult::command("COMMIT"));
        };
        if std::mem::take(&mut self.failed) {
            return Ok(QueryResult::command("ROLLBACK"));
        }
        let mut result = QueryResult::command("COMMIT");
        if txn.has_writes() {
            result.version = Some(self.commit(txn)?);
        }
        Ok(result)
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

    fn commit(&self, txn: Txn) -> Result<u64, SqlError> {
        let outcome = self.store.commit(txn.into_commit()?)?;
        committed_version(outcome)
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
