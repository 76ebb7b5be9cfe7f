//! Data manipulation: SELECT, INSERT, UPDATE, DELETE and EXPLAIN, run
//! inside a statement's or block's transaction.

use crate::catalog::Table;
use crate::error::SqlError;
use crate::exec::{Exec, Row};
use crate::expr::{Expr, truth};
use crate::plan::{
    Access, OutputColumn, Plan, Scope, Tables, choose_access, compile, constant, ident,
    object_name, plan_query,
};
use crate::session::result::QueryResult;
use crate::store::Store;
use crate::types::{DataType, Value};
use sqlparser::ast::{self, Statement};

/// SELECT, at the transaction's snapshot.
pub fn select<S: Store>(
    exec: &mut Exec<'_, S>,
    query: &ast::Query,
) -> Result<QueryResult, SqlError> {
    let version = exec.txn.version();
    let planned = plan_query(exec, query)?;
    let rows = exec.run(&planned.plan)?;
    Ok(QueryResult {
        tag: format!("SELECT {}", rows.len()),
        columns: planned.columns,
        rows,
        version: Some(version),
    })
}

/// INSERT of VALUES or of a query's rows, optionally ON CONFLICT DO NOTHING.
pub fn insert<S: Store>(
    exec: &mut Exec<'_, S>,
    insert: &ast::Insert,
) -> Result<QueryResult, SqlError> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(SqlError::unsupported("INSERT into a table function"));
    };
    if insert.returning.is_some() || !insert.assignments.is_empty() || insert.table_alias.is_some()
    {
        return Err(SqlError::unsupported("INSERT ... RETURNING / SET / alias"));
    }
    let skip_conflicts = match &insert.on {
        None => false,
        Some(ast::OnInsert::OnConflict(ast::OnConflict {
            action: ast::OnConflictAction::DoNothing,
            ..
        })) => true,
        Some(other) => return Err(SqlError::unsupported(format!("INSERT ... {other}"))),
    };
    let table = crate::system::writable(exec.table(&object_name(name)?)?)?;
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
        return Err(SqlError::unsupported("INSERT without VALUES or SELECT"));
    };
    let values = source_rows(exec, source)?;
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

/// UPDATE of the rows the WHERE clause selects.
pub fn update<S: Store>(
    exec: &mut Exec<'_, S>,
    update: &ast::Update,
) -> Result<QueryResult, SqlError> {
    if update.from.is_some()
        || update.returning.is_some()
        || !update.table.joins.is_empty()
        || update.limit.is_some()
    {
        return Err(SqlError::unsupported("UPDATE ... FROM / RETURNING / LIMIT"));
    }
    let (table, alias) = dml_table(exec, &update.table.relation)?;
    let scope = Scope::of_table(&table, &alias);
    let mut assignments = Vec::with_capacity(update.assignments.len());
    for a in &update.assignments {
        let ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(SqlError::unsupported("UPDATE with a tuple target"));
        };
        let column = match name.0.as_slice() {
            [ast::ObjectNamePart::Identifier(c)] => table.column(&ident(c))?,
            _ => return Err(SqlError::unsupported(format!("column name {name}"))),
        };
        let (expr, _) = compile(&scope, &a.value)?;
        assignments.push((column, expr));
    }
    let (access, predicate) = dml_access(&table, &scope, update.selection.as_ref())?;
    let mut count = 0u64;
    for (key, old) in matching(exec, &table, &access, predicate.as_ref())? {
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

/// DELETE of the rows the WHERE clause selects.
pub fn delete<S: Store>(
    exec: &mut Exec<'_, S>,
    delete: &ast::Delete,
) -> Result<QueryResult, SqlError> {
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [item] = from.as_slice() else {
        return Err(SqlError::unsupported("DELETE from several tables"));
    };
    if !delete.tables.is_empty()
        || delete.using.is_some()
        || delete.returning.is_some()
        || !item.joins.is_empty()
        || delete.limit.is_some()
    {
        return Err(SqlError::unsupported(
            "DELETE ... USING / RETURNING / LIMIT",
        ));
    }
    let (table, alias) = dml_table(exec, &item.relation)?;
    let scope = Scope::of_table(&table, &alias);
    let (access, predicate) = dml_access(&table, &scope, delete.selection.as_ref())?;
    let rows = matching(exec, &table, &access, predicate.as_ref())?;
    let count = rows.len();
    for (key, row) in rows {
        exec.delete_row(&table, key, &row)?;
    }
    Ok(QueryResult::command(format!("DELETE {count}")))
}

/// EXPLAIN: the plan a statement would run, one line per operator.
pub fn explain<S: Store>(
    exec: &mut Exec<'_, S>,
    statement: &Statement,
) -> Result<QueryResult, SqlError> {
    let lines = match statement {
        Statement::Query(query) => plan_query(exec, query)?.plan.explain(),
        Statement::Update(ast::Update {
            table, selection, ..
        }) => dml_explain(exec, "Update", &table.relation, selection.as_ref())?,
        Statement::Delete(delete) => {
            let (ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from)) =
                &delete.from;
            let item = from
                .first()
                .ok_or_else(|| SqlError::unsupported("DELETE without a table"))?;
            dml_explain(exec, "Delete", &item.relation, delete.selection.as_ref())?
        }
        Statement::Insert(insert) => vec![format!("Insert on {}", insert.table)],
        other => {
            return Err(SqlError::unsupported(format!(
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
        return Err(SqlError::unsupported(format!("target {relation}")));
    };
    let table = crate::system::writable(exec.table(&object_name(name)?)?)?;
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
