//! SHOW TABLES and SHOW COLUMNS: the catalog as rows.

use crate::error::SqlError;
use crate::exec::{Exec, Row};
use crate::plan::{OutputColumn, Tables, object_name};
use crate::session::result::QueryResult;
use crate::store::Store;
use crate::types::{DataType, Value};
use sqlparser::ast;

/// SHOW TABLES: each table with its numbers of columns and indexes.
pub fn tables<S: Store>(exec: &mut Exec<'_, S>) -> Result<QueryResult, SqlError> {
    let tables = exec.all_tables()?;
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

/// SHOW COLUMNS FROM a table: types, nullability, defaults, keys.
pub fn columns<S: Store>(
    exec: &mut Exec<'_, S>,
    name: &ast::ObjectName,
) -> Result<QueryResult, SqlError> {
    let table = exec.table(&object_name(name)?)?;
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
