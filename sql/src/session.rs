//! Sessions: statements, transaction blocks and their commits.
//!
//! Outside `BEGIN ... COMMIT` each statement is its own transaction: it
//! reads at the newest version, and if it wrote anything its reads and
//! writes are committed through the log, where replay decides them. A
//! conflict there (another transaction wrote what this one read) comes back
//! as SQLSTATE 40001, and running the statement (or the block) again is
//! safe. Inside a block, statements share one snapshot and commit together;
//! after an error the block only accepts ROLLBACK, as in PostgreSQL.

use crate::catalog::{self, Column, Index, Table, check_name};
use crate::encoding::{index_prefix, next_table_id_key, rows_prefix, table_key};
use crate::error::SqlError;
use crate::exec::{Exec, Row};
use crate::expr::{Expr, truth};
use crate::parse::{Parsed, parse_each};
use crate::plan::{
    Access, OutputColumn, Plan, Scope, choose_access, compile, constant, data_type, ident,
    object_name, plan_query,
};
use crate::store::{Store, Txn};
use crate::types::{DataType, Value};
use ordo_txn::Outcome;
use sqlparser::ast::{self, Statement};

/// What a statement returned.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Result columns (empty for statements that return no rows).
    pub columns: Vec<OutputColumn>,
    /// Result rows.
    pub rows: Vec<Row>,
    /// The command tag, as PostgreSQL prints it (`INSERT 0 3`, `SELECT 2`).
    pub tag: String,
    /// For a statement that committed: the commit version. For a read: the
    /// snapshot version it read.
    pub version: Option<u64>,
}

impl QueryResult {
    fn command(tag: impl Into<String>) -> Self {
        Self {
            columns: vec![],
            rows: vec![],
            tag: tag.into(),
            version: None,
        }
    }
}

/// A SQL session over a store.
#[derive(Debug)]
pub struct Session<S> {
    store: S,
    block: Option<Txn>,
    failed: bool,
}

fn unsupported(what: impl std::fmt::Display) -> SqlError {
    SqlError::NotSupported(what.to_string())
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
        self.select(&mut txn, query)
    }

    fn commit(&self, txn: Txn) -> Result<u64, SqlError> {
        let outcome = self.store.commit(txn.into_commit()?)?;
        committed_version(outcome)
    }

    /// Runs a statement inside `txn`.
    fn run(&mut self, txn: &mut Txn, statement: &Statement) -> Result<QueryResult, SqlError> {
        match statement {
            Statement::Query(query) => self.select(txn, query),
            Statement::Insert(insert) => self.insert(txn, insert),
            Statement::Update(update) => self.update(txn, update),
            Statement::Delete(delete) => self.delete(txn, delete),
            Statement::CreateTable(create) => self.create_table(txn, create),
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade: false,
                temporary: false,
                table: None,
                ..
            } => match object_type {
                ast::ObjectType::Table => self.drop_tables(txn, names, *if_exists),
                ast::ObjectType::Index => self.drop_indexes(txn, names, *if_exists),
                other => Err(unsupported(format!("DROP {other}"))),
            },
            Statement::ShowTables { .. } => self.show_tables(txn),
            Statement::ShowColumns { show_options, .. } => {
                let Some(name) = show_options
                    .show_in
                    .as_ref()
                    .and_then(|i| i.parent_name.as_ref())
                else {
                    return Err(unsupported("SHOW COLUMNS without FROM <table>"));
                };
                self.show_columns(txn, name)
            }
            Statement::CreateIndex(create) => self.create_index(txn, create),
            Statement::AlterTable(alter) => self.alter_table(txn, alter),
            Statement::Explain {
                statement,
                analyze: false,
                format: None,
                ..
            } => self.explain(txn, statement),
            other => Err(unsupported(format!(
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

    fn show_tables(&self, txn: &mut Txn) -> Result<QueryResult, SqlError> {
        let tables = self.exec(txn).all_tables()?;
        let rows: Vec<Row> = tables
            .iter()
            .map(|t| {
                vec![
                    Value::Text(t.name.clone()),
                    Value::Int(t.columns.len() as i64),
                    Value::Int(t.indexes.len() as i64),
                ]
            })
            .collect();
        Ok(listing(&["table", "columns", "indexes"], rows))
    }

    fn show_columns(&self, txn: &mut Txn, name: &ast::ObjectName) -> Result<QueryResult, SqlError> {
        let table = crate::plan::Tables::table(&mut self.exec(txn), &object_name(name)?)?;
        let rows: Vec<Row> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut notes = Vec::new();
                if let Some(k) = table.primary_key.iter().position(|&p| p == i) {
                    notes.push(format!("primary key ({})", k + 1));
                }
                for index in table.indexes.iter().filter(|x| x.columns.contains(&i)) {
                    let kind = if index.unique {
                        "unique index"
                    } else {
                        "index"
                    };
                    notes.push(format!("{kind} {}", index.name));
                }
                vec![
                    Value::Text(c.name.clone()),
                    Value::Text(c.data_type.name().to_string()),
                    Value::Bool(!c.not_null),
                    if c.default.is_null() {
                        Value::Null
                    } else {
                        Value::Text(c.default.literal())
                    },
                    Value::Text(notes.join(", ")),
                ]
            })
            .collect();
        Ok(listing(
            &["column", "type", "nullable", "default", "keys"],
            rows,
        ))
    }

    fn select(&self, txn: &mut Txn, query: &ast::Query) -> Result<QueryResult, SqlError> {
        let version = txn.version();
        let mut exec = self.exec(txn);
        let planned = plan_query(&mut exec, query)?;
        let rows = exec.run(&planned.plan)?;
        Ok(QueryResult {
            tag: format!("SELECT {}", rows.len()),
            columns: planned.columns,
            rows,
            version: Some(version),
        })
    }

    fn insert(&self, txn: &mut Txn, insert: &ast::Insert) -> Result<QueryResult, SqlError> {
        let ast::TableObject::TableName(name) = &insert.table else {
            return Err(unsupported("INSERT into a table function"));
        };
        if insert.returning.is_some()
            || !insert.assignments.is_empty()
            || insert.table_alias.is_some()
        {
            return Err(unsupported("INSERT ... RETURNING / SET / alias"));
        }
        let skip_conflicts = match &insert.on {
            None => false,
            Some(ast::OnInsert::OnConflict(ast::OnConflict {
                action: ast::OnConflictAction::DoNothing,
                ..
            })) => true,
            Some(other) => return Err(unsupported(format!("INSERT ... {other}"))),
        };
        let mut exec = self.exec(txn);
        let table = crate::plan::Tables::table(&mut exec, &object_name(name)?)?;
        let targets: Vec<usize> = if insert.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            insert
                .columns
                .iter()
                .map(|c| table.column(&object_name(c)?))
                .collect::<Result<_, _>>()?
        };
        let Some(source) = &insert.source else {
            return Err(unsupported("INSERT without VALUES or SELECT"));
        };
        let values = source_rows(&mut exec, source)?;
        let mut inserted = 0u64;
        for values in values {
            if values.len() != targets.len() {
                return Err(SqlError::InvalidDefinition(format!(
                    "INSERT has {} target columns but {} values",
                    targets.len(),
                    values.len()
                )));
            }
            let mut row: Row = table.columns.iter().map(|c| c.default.clone()).collect();
            for (&target, value) in targets.iter().zip(values) {
                row[target] = value;
            }
            let row = checked_row(&table, row)?;
            if exec.insert_row(&table, &row, skip_conflicts)? {
                inserted += 1;
            }
        }
        Ok(QueryResult::command(format!("INSERT 0 {inserted}")))
    }

    fn update(&self, txn: &mut Txn, update: &ast::Update) -> Result<QueryResult, SqlError> {
        if update.from.is_some()
            || update.returning.is_some()
            || !update.table.joins.is_empty()
            || update.limit.is_some()
        {
            return Err(unsupported("UPDATE ... FROM / RETURNING / LIMIT"));
        }
        let mut exec = self.exec(txn);
        let (table, alias) = dml_table(&mut exec, &update.table.relation)?;
        let scope = Scope::of_table(&table, &alias);
        let mut assignments = Vec::with_capacity(update.assignments.len());
        for a in &update.assignments {
            let ast::AssignmentTarget::ColumnName(name) = &a.target else {
                return Err(unsupported("UPDATE with a tuple target"));
            };
            let column = match name.0.as_slice() {
                [ast::ObjectNamePart::Identifier(c)] => table.column(&ident(c))?,
                _ => return Err(unsupported(format!("column name {name}"))),
            };
            let (expr, _) = compile(&scope, &a.value)?;
            assignments.push((column, expr));
        }
        let (access, predicate) = dml_access(&table, &scope, update.selection.as_ref())?;
        let mut count = 0u64;
        for (key, old) in matching(&mut exec, &table, &access, predicate.as_ref())? {
            let mut new = old.clone();
            for (column, expr) in &assignments {
                new[*column] = expr.eval(&old)?;
            }
            let new = checked_row(&table, new)?;
            exec.update_row(&table, key, &old, &new)?;
            count += 1;
        }
        Ok(QueryResult::command(format!("UPDATE {count}")))
    }

    fn delete(&self, txn: &mut Txn, delete: &ast::Delete) -> Result<QueryResult, SqlError> {
        let from = match &delete.from {
            ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
        };
        let [item] = from.as_slice() else {
            return Err(unsupported("DELETE from several tables"));
        };
        if !delete.tables.is_empty()
            || delete.using.is_some()
            || delete.returning.is_some()
            || !item.joins.is_empty()
            || delete.limit.is_some()
        {
            return Err(unsupported("DELETE ... USING / RETURNING / LIMIT"));
        }
        let mut exec = self.exec(txn);
        let (table, alias) = dml_table(&mut exec, &item.relation)?;
        let scope = Scope::of_table(&table, &alias);
        let (access, predicate) = dml_access(&table, &scope, delete.selection.as_ref())?;
        let rows = matching(&mut exec, &table, &access, predicate.as_ref())?;
        let count = rows.len();
        for (key, row) in rows {
            exec.delete_row(&table, key, &row)?;
        }
        Ok(QueryResult::command(format!("DELETE {count}")))
    }

    fn explain(&self, txn: &mut Txn, statement: &Statement) -> Result<QueryResult, SqlError> {
        let mut exec = self.exec(txn);
        let lines = match statement {
            Statement::Query(query) => plan_query(&mut exec, query)?.plan.explain(),
            Statement::Update(ast::Update {
                table, selection, ..
            }) => dml_explain(&mut exec, "Update", &table.relation, selection.as_ref())?,
            Statement::Delete(delete) => {
                let (ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from)) =
                    &delete.from;
                let item = from
                    .first()
                    .ok_or_else(|| unsupported("DELETE without a table"))?;
                dml_explain(
                    &mut exec,
                    "Delete",
                    &item.relation,
                    delete.selection.as_ref(),
                )?
            }
            Statement::Insert(insert) => vec![format!("Insert on {}", insert.table)],
            other => {
                return Err(unsupported(format!(
                    "EXPLAIN of {}",
                    other.to_string().split_whitespace().next().unwrap_or("")
                )));
            }
        };
        Ok(QueryResult {
            columns: vec![OutputColumn {
                name: "QUERY PLAN".into(),
                data_type: Some(DataType::Text),
            }],
            rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
            tag: "EXPLAIN".into(),
            version: None,
        })
    }

    fn create_table(
        &self,
        txn: &mut Txn,
        create: &ast::CreateTable,
    ) -> Result<QueryResult, SqlError> {
        if create.or_replace
            || create.temporary
            || create.external
            || create.query.is_some()
            || create.like.is_some()
            || create.clone.is_some()
        {
            return Err(unsupported(
                "CREATE TABLE form (OR REPLACE / TEMPORARY / AS / LIKE)",
            ));
        }
        let name = object_name(&create.name)?;
        check_name(&name)?;
        let mut exec = self.exec(txn);
        if exec.find_table(&name)?.is_some() {
            return if create.if_not_exists {
                Ok(QueryResult::command("CREATE TABLE"))
            } else {
                Err(SqlError::AlreadyExists {
                    kind: "table",
                    name,
                })
            };
        }
        let table = table_definition(&mut exec, &name, create)?;
        exec.txn.put(table_key(&name), table.encode())?;
        Ok(QueryResult::command("CREATE TABLE"))
    }

    fn drop_tables(
        &self,
        txn: &mut Txn,
        names: &[ast::ObjectName],
        if_exists: bool,
    ) -> Result<QueryResult, SqlError> {
        let mut exec = self.exec(txn);
        for name in names {
            let name = object_name(name)?;
            let Some(table) = exec.find_table(&name)? else {
                if if_exists {
                    continue;
                }
                return Err(SqlError::UnknownTable(name));
            };
            exec.txn.delete(table_key(&name))?;
            exec.delete_prefix(&rows_prefix(table.id))?;
            for index in &table.indexes {
                exec.delete_prefix(&index_prefix(table.id, index.id))?;
            }
        }
        Ok(QueryResult::command("DROP TABLE"))
    }

    fn drop_indexes(
        &self,
        txn: &mut Txn,
        names: &[ast::ObjectName],
        if_exists: bool,
    ) -> Result<QueryResult, SqlError> {
        let mut exec = self.exec(txn);
        for name in names {
            let name = object_name(name)?;
            let owner = exec
                .all_tables()?
                .into_iter()
                .find(|t| t.indexes.iter().any(|i| i.name == name));
            let Some(mut table) = owner else {
                if if_exists {
                    continue;
                }
                return Err(SqlError::UnknownIndex(name));
            };
            let position = table
                .indexes
                .iter()
                .position(|i| i.name == name)
                .unwrap_or(0);
            let index = table.indexes.remove(position);
            exec.delete_prefix(&index_prefix(table.id, index.id))?;
            exec.txn.put(table_key(&table.name), table.encode())?;
        }
        Ok(QueryResult::command("DROP INDEX"))
    }

    fn create_index(
        &self,
        txn: &mut Txn,
        create: &ast::CreateIndex,
    ) -> Result<QueryResult, SqlError> {
        if create.using.is_some()
            || !create.include.is_empty()
            || create.predicate.is_some()
            || !create.with.is_empty()
            || create.concurrently
        {
            return Err(unsupported(
                "CREATE INDEX options (USING / INCLUDE / WHERE / WITH / CONCURRENTLY)",
            ));
        }
        let mut exec = self.exec(txn);
        let mut table = crate::plan::Tables::table(&mut exec, &object_name(&create.table_name)?)?;
        let columns = index_columns(&table, &create.columns)?;
        let name = match &create.name {
            Some(n) => object_name(n)?,
            None => {
                let names: Vec<&str> = columns
                    .iter()
                    .map(|&c| table.columns[c].name.as_str())
                    .collect();
                format!("{}_{}_idx", table.name, names.join("_"))
            }
        };
        check_name(&name)?;
        if exec
            .all_tables()?
            .iter()
            .any(|t| t.indexes.iter().any(|i| i.name == name))
        {
            return if create.if_not_exists {
                Ok(QueryResult::command("CREATE INDEX"))
            } else {
                Err(SqlError::AlreadyExists {
                    kind: "index",
                    name,
                })
            };
        }
        if table.indexes.len() >= catalog::MAX_INDEXES {
            return Err(SqlError::LimitExceeded(format!(
                "a table has at most {} indexes",
                catalog::MAX_INDEXES
            )));
        }
        let index = Index {
            id: table.next_index_id,
            name,
            columns,
            unique: create.unique,
        };
        table.next_index_id += 1;
        exec.backfill_index(&table, &index)?;
        table.indexes.push(index);
        exec.txn.put(table_key(&table.name), table.encode())?;
        Ok(QueryResult::command("CREATE INDEX"))
    }

    fn alter_table(&self, txn: &mut Txn, alter: &ast::AlterTable) -> Result<QueryResult, SqlError> {
        let mut exec = self.exec(txn);
        let Some(mut table) = exec.find_table(&object_name(&alter.name)?)? else {
            return if alter.if_exists {
                Ok(QueryResult::command("ALTER TABLE"))
            } else {
                Err(SqlError::UnknownTable(object_name(&alter.name)?))
            };
        };
        for operation in &alter.operations {
            let ast::AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } = operation
            else {
                return Err(unsupported(format!("ALTER TABLE ... {operation}")));
            };
            let name = ident(&column_def.name);
            if table.columns.iter().any(|c| c.name == name) {
                if *if_not_exists {
                    continue;
                }
                return Err(SqlError::AlreadyExists {
                    kind: "column",
                    name,
                });
            }
            let (column, flags) = column_definition(&table, column_def)?;
            if flags.primary_key || flags.unique {
                return Err(unsupported(
                    "ADD COLUMN with PRIMARY KEY or UNIQUE (create an index afterwards)",
                ));
            }
            if column.not_null
                && column.default.is_null()
                && !exec.fetch(&table, &Access::Full)?.is_empty()
            {
                return Err(SqlError::NotNull {
                    table: table.name.clone(),
                    column: column.name,
                });
            }
            if table.columns.len() >= catalog::MAX_COLUMNS {
                return Err(SqlError::LimitExceeded(format!(
                    "a table has at most {} columns",
                    catalog::MAX_COLUMNS
                )));
            }
            table.columns.push(column);
            table.next_column_id += 1;
        }
        exec.txn.put(table_key(&table.name), table.encode())?;
        Ok(QueryResult::command("ALTER TABLE"))
    }
}

/// A result of text-ish catalog rows (SHOW).
fn listing(names: &[&str], rows: Vec<Row>) -> QueryResult {
    let columns = names
        .iter()
        .enumerate()
        .map(|(i, name)| OutputColumn {
            name: (*name).to_string(),
            data_type: rows
                .first()
                .and_then(|r| r.get(i))
                .and_then(Value::data_type)
                .or(Some(DataType::Text)),
        })
        .collect();
    QueryResult {
        tag: format!("SELECT {}", rows.len()),
        columns,
        rows,
        version: None,
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
        other => Err(SqlError::Store(format!(
            "the commit was refused: {other:?}"
        ))),
    }
}

/// Rows of an INSERT's source: VALUES lists (constant expressions) or a query.
fn source_rows<S: Store>(
    exec: &mut Exec<'_, S>,
    source: &ast::Query,
) -> Result<Vec<Row>, SqlError> {
    match source.body.as_ref() {
        ast::SetExpr::Values(values)
            if source.order_by.is_none() && source.limit_clause.is_none() =>
        {
            values
                .rows
                .iter()
                .map(|row| row.content.iter().map(constant).collect())
                .collect()
        }
        _ => {
            let planned = plan_query(exec, source)?;
            exec.run(&planned.plan)
        }
    }
}

/// Converts each value to its column's type and checks NOT NULL.
fn checked_row(table: &Table, row: Row) -> Result<Row, SqlError> {
    table
        .columns
        .iter()
        .zip(row)
        .map(|(column, value)| {
            let value = value.coerce_to(column.data_type).map_err(|e| match e {
                SqlError::TypeMismatch { message } => SqlError::TypeMismatch {
                    message: format!("column \"{}\": {message}", column.name),
                },
                other => other,
            })?;
            if value.is_null() && column.not_null {
                return Err(SqlError::NotNull {
                    table: table.name.clone(),
                    column: column.name.clone(),
                });
            }
            Ok(value)
        })
        .collect()
}

fn dml_table<S: Store>(
    exec: &mut Exec<'_, S>,
    relation: &ast::TableFactor,
) -> Result<(Table, String), SqlError> {
    let ast::TableFactor::Table { name, alias, .. } = relation else {
        return Err(unsupported(format!("target {relation}")));
    };
    let table = crate::plan::Tables::table(exec, &object_name(name)?)?;
    let alias = alias
        .as_ref()
        .map_or_else(|| table.name.clone(), |a| ident(&a.name));
    Ok((table, alias))
}

fn dml_access(
    table: &Table,
    scope: &Scope,
    selection: Option<&ast::Expr>,
) -> Result<(Access, Option<Expr>), SqlError> {
    let Some(selection) = selection else {
        return Ok((Access::Full, None));
    };
    let (predicate, _) = compile(scope, selection)?;
    let scan = choose_access(
        Plan::Scan {
            table: table.clone(),
            alias: table.name.clone(),
            access: Access::Full,
        },
        &predicate,
    );
    let access = match scan {
        Plan::Scan { access, .. } => access,
        _ => Access::Full,
    };
    Ok((access, Some(predicate)))
}

fn dml_explain<S: Store>(
    exec: &mut Exec<'_, S>,
    verb: &str,
    relation: &ast::TableFactor,
    selection: Option<&ast::Expr>,
) -> Result<Vec<String>, SqlError> {
    let (table, alias) = dml_table(exec, relation)?;
    let scope = Scope::of_table(&table, &alias);
    let (access, predicate) = dml_access(&table, &scope, selection)?;
    let name = table.name.clone();
    let mut plan = Plan::Scan {
        table,
        alias,
        access,
    };
    if let Some(predicate) = predicate {
        plan = Plan::Filter {
            input: Box::new(plan),
            predicate,
        };
    }
    let mut lines = vec![format!("{verb} on {name}")];
    lines.extend(plan.explain().into_iter().map(|l| {
        if l.starts_with("->") || l.starts_with(' ') {
            format!("  {l}")
        } else {
            format!("-> {l}")
        }
    }));
    Ok(lines)
}

/// Rows `access` finds that satisfy `predicate`, with their keys.
fn matching<S: Store>(
    exec: &mut Exec<'_, S>,
    table: &Table,
    access: &Access,
    predicate: Option<&Expr>,
) -> Result<Vec<(Vec<u8>, Row)>, SqlError> {
    let mut out = Vec::new();
    for (key, row) in exec.fetch(table, access)? {
        let keep = match predicate {
            Some(p) => truth(p.eval(&row)?)? == Some(true),
            None => true,
        };
        if keep {
            out.push((key, row));
        }
    }
    Ok(out)
}

/// What a column definition says beyond the column itself.
#[derive(Default)]
struct ColumnFlags {
    primary_key: bool,
    unique: bool,
}

fn column_definition(
    table: &Table,
    def: &ast::ColumnDef,
) -> Result<(Column, ColumnFlags), SqlError> {
    let name = ident(&def.name);
    check_name(&name)?;
    let ty = data_type(&def.data_type)?;
    let mut column = Column {
        id: table.next_column_id,
        name,
        data_type: ty,
        not_null: false,
        default: Value::Null,
    };
    let mut flags = ColumnFlags::default();
    for option in &def.options {
        match &option.option {
            ast::ColumnOption::Null => column.not_null = false,
            ast::ColumnOption::NotNull => column.not_null = true,
            ast::ColumnOption::Default(e) => {
                column.default = constant(e)?.coerce_to(ty)?;
            }
            ast::ColumnOption::PrimaryKey(_) => flags.primary_key = true,
            ast::ColumnOption::Unique(_) => flags.unique = true,
            other => return Err(unsupported(format!("column option {other}"))),
        }
    }
    Ok((column, flags))
}

fn index_columns(table: &Table, columns: &[ast::IndexColumn]) -> Result<Vec<usize>, SqlError> {
    let mut positions = Vec::with_capacity(columns.len());
    for c in columns {
        if c.operator_class.is_some()
            || matches!(
                c.column.options.sort,
                Some(ast::OrderBySort::Desc | ast::OrderBySort::Using(_))
            )
        {
            return Err(unsupported("index column options (DESC, operator classes)"));
        }
        let ast::Expr::Identifier(name) = &c.column.expr else {
            return Err(unsupported(format!(
                "index on expression {}",
                c.column.expr
            )));
        };
        let position = table.column(&ident(name))?;
        if positions.contains(&position) {
            return Err(SqlError::InvalidDefinition(format!(
                "column \"{}\" appears twice",
                ident(name)
            )));
        }
        positions.push(position);
    }
    if positions.is_empty() {
        return Err(SqlError::InvalidDefinition(
            "an index needs at least one column".into(),
        ));
    }
    Ok(positions)
}

fn table_definition<S: Store>(
    exec: &mut Exec<'_, S>,
    name: &str,
    create: &ast::CreateTable,
) -> Result<Table, SqlError> {
    let id = next_table_id(exec)?;
    let mut table = Table {
        id,
        name: name.to_string(),
        columns: vec![],
        primary_key: vec![],
        indexes: vec![],
        next_column_id: 0,
        next_index_id: 0,
    };
    let mut unique = Vec::new();
    if create.columns.len() > catalog::MAX_COLUMNS {
        return Err(SqlError::LimitExceeded(format!(
            "a table has at most {} columns",
            catalog::MAX_COLUMNS
        )));
    }
    for def in &create.columns {
        let (column, flags) = column_definition(&table, def)?;
        if table.columns.iter().any(|c| c.name == column.name) {
            return Err(SqlError::AlreadyExists {
                kind: "column",
                name: column.name,
            });
        }
        let position = table.columns.len();
        if flags.primary_key {
            if !table.primary_key.is_empty() {
                return Err(SqlError::InvalidDefinition("multiple primary keys".into()));
            }
            table.primary_key.push(position);
        }
        if flags.unique {
            unique.push(vec![position]);
        }
        table.columns.push(column);
        table.next_column_id += 1;
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                if !table.primary_key.is_empty() {
                    return Err(SqlError::InvalidDefinition("multiple primary keys".into()));
                }
                table.primary_key = index_columns(&table, &pk.columns)?;
            }
            ast::TableConstraint::Unique(u) => unique.push(index_columns(&table, &u.columns)?),
            other => return Err(unsupported(format!("table constraint {other}"))),
        }
    }
    if table.primary_key.is_empty() {
        return Err(SqlError::InvalidDefinition(format!(
            "table \"{name}\" needs a PRIMARY KEY: ordo stores rows by their primary key"
        )));
    }
    for &p in &table.primary_key {
        table.columns[p].not_null = true;
    }
    for columns in unique {
        let names: Vec<&str> = columns
            .iter()
            .map(|&c| table.columns[c].name.as_str())
            .collect();
        table.indexes.push(Index {
            id: table.next_index_id,
            name: format!("{name}_{}_key", names.join("_")),
            columns,
            unique: true,
        });
        table.next_index_id += 1;
    }
    Ok(table)
}

/// Takes the next table id from the catalog counter (ids are never reused).
fn next_table_id<S: Store>(exec: &mut Exec<'_, S>) -> Result<u32, SqlError> {
    let key = next_table_id_key();
    let next = match exec.txn.get(exec.store, &key)? {
        Some(bytes) => u32::from_be_bytes(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SqlError::Store("corrupt table id counter".into()))?,
        ),
        None => 1,
    };
    let after = next
        .checked_add(1)
        .ok_or_else(|| SqlError::LimitExceeded("table ids are exhausted".into()))?;
    exec.txn.put(key, after.to_be_bytes().to_vec())?;
    Ok(next)
}
