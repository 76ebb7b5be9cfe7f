//! Data definition: CREATE and DROP of tables and indexes, ALTER TABLE.
//! The catalog ([`crate::catalog`]) owns the rules of a definition (names,
//! limits, implicit index names); these functions turn statements into its
//! calls and keep the stored rows in step.

use crate::catalog::{IndexName, NewColumn, NewIndex, Table};
use crate::encoding::{index_prefix, next_table_id_key, rows_prefix, table_key};
use crate::error::SqlError;
use crate::exec::Exec;
use crate::plan::{Access, Tables, constant, data_type, ident, object_name};
use crate::session::result::QueryResult;
use crate::store::Store;
use crate::types::Value;
use sqlparser::ast;
use std::collections::HashSet;

/// CREATE TABLE.
pub fn create_table<S: Store>(
    exec: &mut Exec<'_, S>,
    create: &ast::CreateTable,
) -> Result<QueryResult, SqlError> {
    if create.or_replace
        || create.temporary
        || create.external
        || create.query.is_some()
        || create.like.is_some()
        || create.clone.is_some()
    {
        return Err(SqlError::unsupported(
            "CREATE TABLE form (OR REPLACE / TEMPORARY / AS / LIKE)",
        ));
    }
    let name = object_name(&create.name)?;
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
    let table = table_definition(exec, &name, create)?;
    exec.txn.put(table_key(&name), table.encode())?;
    Ok(QueryResult::command("CREATE TABLE"))
}

/// The definition CREATE TABLE describes: columns, primary key, and an
/// index for each UNIQUE column or constraint.
fn table_definition<S: Store>(
    exec: &mut Exec<'_, S>,
    name: &str,
    create: &ast::CreateTable,
) -> Result<Table, SqlError> {
    let mut table = Table::new(next_table_id(exec)?, name)?;
    let mut unique = Vec::new();
    for def in &create.columns {
        let (column, flags) = column_definition(def)?;
        let position = table.add_column(column)?;
        if flags.primary_key {
            table.set_primary_key(vec![position])?;
        }
        if flags.unique {
            unique.push(vec![position]);
        }
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                table.set_primary_key(index_columns(&table, &pk.columns)?)?
            }
            ast::TableConstraint::Unique(u) => unique.push(index_columns(&table, &u.columns)?),
            other => return Err(SqlError::unsupported(format!("table constraint {other}"))),
        }
    }
    if table.primary_key.is_empty() {
        return Err(SqlError::InvalidDefinition(format!(
            "table \"{name}\" needs a PRIMARY KEY: ordo stores rows by their primary key"
        )));
    }
    let existing = index_names(exec)?;
    for columns in unique {
        let index = NewIndex {
            name: IndexName::Implicit("key"),
            columns,
            unique: true,
        };
        table.add_index(index, &|name| existing.contains(name))?;
    }
    Ok(table)
}

/// The names of every index in the catalog (they share one namespace).
fn index_names<S: Store>(exec: &mut Exec<'_, S>) -> Result<HashSet<String>, SqlError> {
    Ok(exec
        .all_tables()?
        .into_iter()
        .flat_map(|t| t.indexes.into_iter().map(|i| i.name))
        .collect())
}

/// CREATE INDEX: the definition, then an entry for every existing row.
pub fn create_index<S: Store>(
    exec: &mut Exec<'_, S>,
    create: &ast::CreateIndex,
) -> Result<QueryResult, SqlError> {
    if create.using.is_some()
        || !create.include.is_empty()
        || create.predicate.is_some()
        || !create.with.is_empty()
        || create.concurrently
    {
        return Err(SqlError::unsupported(
            "CREATE INDEX options (USING / INCLUDE / WHERE / WITH / CONCURRENTLY)",
        ));
    }
    let mut table = crate::system::writable(exec.table(&object_name(&create.table_name)?)?)?;
    let existing = index_names(exec)?;
    let name = match &create.name {
        Some(n) => IndexName::Given(object_name(n)?),
        None => IndexName::Implicit("idx"),
    };
    if let IndexName::Given(given) = &name
        && create.if_not_exists
        && existing.contains(given)
    {
        return Ok(QueryResult::command("CREATE INDEX"));
    }
    let new = NewIndex {
        name,
        columns: index_columns(&table, &create.columns)?,
        unique: create.unique,
    };
    let index = table.add_index(new, &|n| existing.contains(n))?.clone();
    exec.backfill_index(&table, &index)?;
    exec.txn.put(table_key(&table.name), table.encode())?;
    Ok(QueryResult::command("CREATE INDEX"))
}

/// ALTER TABLE ... ADD COLUMN, the one alteration ordo has.
pub fn alter_table<S: Store>(
    exec: &mut Exec<'_, S>,
    alter: &ast::AlterTable,
) -> Result<QueryResult, SqlError> {
    let name = object_name(&alter.name)?;
    let Some(table) = exec.find_table(&name)? else {
        return if alter.if_exists {
            Ok(QueryResult::command("ALTER TABLE"))
        } else {
            Err(SqlError::UnknownTable(name))
        };
    };
    let mut table = crate::system::writable(table)?;
    for operation in &alter.operations {
        let ast::AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            column_position: None,
            ..
        } = operation
        else {
            return Err(SqlError::unsupported(format!(
                "ALTER TABLE ... {operation}"
            )));
        };
        if *if_not_exists && table.column(&ident(&column_def.name)).is_ok() {
            continue;
        }
        add_column(exec, &mut table, column_def)?;
    }
    exec.txn.put(table_key(&table.name), table.encode())?;
    Ok(QueryResult::command("ALTER TABLE"))
}

/// Adds one column to `table`, whose existing rows read it as its default.
fn add_column<S: Store>(
    exec: &mut Exec<'_, S>,
    table: &mut Table,
    def: &ast::ColumnDef,
) -> Result<(), SqlError> {
    let (column, flags) = column_definition(def)?;
    if flags.primary_key || flags.unique {
        return Err(SqlError::unsupported(
            "ADD COLUMN with PRIMARY KEY or UNIQUE (create an index afterwards)",
        ));
    }
    if column.not_null && column.default.is_null() && !exec.fetch(table, &Access::Full)?.is_empty()
    {
        return Err(SqlError::NotNull {
            table: table.name.clone(),
            column: column.name,
        });
    }
    table.add_column(column)?;
    Ok(())
}

/// What a column definition says beyond the column itself.
#[derive(Default)]
struct ColumnFlags {
    primary_key: bool,
    unique: bool,
}

/// A column as its definition describes it.
fn column_definition(def: &ast::ColumnDef) -> Result<(NewColumn, ColumnFlags), SqlError> {
    let ty = data_type(&def.data_type)?;
    let mut column = NewColumn {
        name: ident(&def.name),
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
            other => return Err(SqlError::unsupported(format!("column option {other}"))),
        }
    }
    Ok((column, flags))
}

/// Positions of an index's or key's columns; the catalog checks the rest.
fn index_columns(table: &Table, columns: &[ast::IndexColumn]) -> Result<Vec<usize>, SqlError> {
    let mut positions = Vec::with_capacity(columns.len());
    for c in columns {
        if c.operator_class.is_some()
            || matches!(
                c.column.options.sort,
                Some(ast::OrderBySort::Desc | ast::OrderBySort::Using(_))
            )
        {
            return Err(SqlError::unsupported(
                "index column options (DESC, operator classes)",
            ));
        }
        let ast::Expr::Identifier(name) = &c.column.expr else {
            return Err(SqlError::unsupported(format!(
                "index on expression {}",
                c.column.expr
            )));
        };
        positions.push(table.column(&ident(name))?);
    }
    Ok(positions)
}

/// DROP TABLE: the definition, its rows and its index entries.
pub fn drop_tables<S: Store>(
    exec: &mut Exec<'_, S>,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<QueryResult, SqlError> {
    for name in names {
        let name = object_name(name)?;
        let Some(table) = exec.find_table(&name)? else {
            if if_exists {
                continue;
            }
            return Err(SqlError::UnknownTable(name));
        };
        let table = crate::system::writable(table)?;
        exec.txn.delete(table_key(&name))?;
        exec.delete_prefix(&rows_prefix(table.id))?;
        for index in &table.indexes {
            exec.delete_prefix(&index_prefix(table.id, index.id))?;
        }
    }
    Ok(QueryResult::command("DROP TABLE"))
}

/// DROP INDEX: the definition and its entries.
pub fn drop_indexes<S: Store>(
    exec: &mut Exec<'_, S>,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<QueryResult, SqlError> {
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
