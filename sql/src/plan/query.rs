//! Query planning: SELECT's clauses, FROM and joins, grouping, ordering
//! and limits, into a [`Plan`].

use crate::catalog::Table;
use crate::error::SqlError;
use crate::expr::{BinOp, Expr};
use crate::plan::access::{choose_access, conjuncts};
use crate::plan::compile::{
    Grouping, compile, compile_output, constant, has_aggregate, ident, object_name,
};
use crate::plan::tree::{Access, OutputColumn, Plan, QueryPlan, Scope, ScopeColumn, SortKey};
use crate::types::{DataType, Value};
use sqlparser::ast;

/// Resolves a table name to its definition (through the transaction, so
/// the read lands in its read set).
pub trait Tables {
    /// The definition of `name`.
    fn table(&mut self, name: &str) -> Result<Table, SqlError>;
}

/// Plans a query.
pub fn plan_query(tables: &mut dyn Tables, query: &ast::Query) -> Result<QueryPlan, SqlError> {
    if query.with.is_some() {
        return Err(SqlError::unsupported("WITH"));
    }
    if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() {
        return Err(SqlError::unsupported("FETCH / FOR UPDATE clauses"));
    }
    match query.body.as_ref() {
        ast::SetExpr::Select(select) => plan_select(tables, query, select),
        ast::SetExpr::Query(inner) if query.order_by.is_none() && query.limit_clause.is_none() => {
            plan_query(tables, inner)
        }
        other => Err(SqlError::unsupported(format!("query form {other}"))),
    }
}

/// What a SELECT computes per row, before its operators are stacked.
struct Outputs {
    /// Output expressions, then ORDER BY helpers.
    exprs: Vec<Expr>,
    /// Names and types of the real outputs (helpers excluded).
    columns: Vec<OutputColumn>,
    /// Set when the query aggregates.
    grouping: Option<Grouping>,
    /// The HAVING condition, over the aggregate's output.
    having: Option<Expr>,
    /// SELECT DISTINCT.
    distinct: bool,
    /// ORDER BY, as positions in `exprs`.
    keys: Vec<SortKey>,
}

fn plan_select(
    tables: &mut dyn Tables,
    query: &ast::Query,
    select: &ast::Select,
) -> Result<QueryPlan, SqlError> {
    let (source, scope) = plan_from(tables, &select.from)?;
    check_select_supported(select)?;
    let mut plan = source;
    if let Some(selection) = &select.selection {
        let (predicate, ty) = compile(&scope, selection)?;
        expect_boolean(ty, "WHERE")?;
        plan = Plan::Filter {
            input: Box::new(choose_access(plan, &predicate)),
            predicate,
        };
    }
    let outputs = compile_outputs(&scope, query, select)?;
    let columns = outputs.columns.clone();
    let plan = stack_operators(plan, outputs, limit_offset(query)?);
    Ok(QueryPlan { plan, columns })
}

/// Compiles the outputs, HAVING and ORDER BY over the input scope, or over
/// the aggregate's output when the query groups.
fn compile_outputs(
    scope: &Scope,
    query: &ast::Query,
    select: &ast::Select,
) -> Result<Outputs, SqlError> {
    let items = expand_projection(scope, &select.projection)?;
    let order_items = order_by_items(query)?;
    let group_exprs = group_by_exprs(&select.group_by, &items)?;
    let grouped = !group_exprs.is_empty()
        || select.having.is_some()
        || items.iter().any(|(e, _)| has_aggregate(e))
        || order_items.iter().any(|o| has_aggregate(&o.expr));
    let mut grouping = Grouping::default();
    if grouped {
        for g in &group_exprs {
            let (x, t) = compile(scope, g)?;
            grouping.groups.push((g.to_string(), x, t));
        }
    }
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    for (e, name) in &items {
        let (x, t) = compile_output(scope, &mut grouping, grouped, e)?;
        exprs.push(x);
        let name = name.clone();
        columns.push(OutputColumn { name, data_type: t });
    }
    let having = match &select.having {
        Some(h) => {
            let (x, t) = compile_output(scope, &mut grouping, true, h)?;
            expect_boolean(t, "HAVING")?;
            Some(x)
        }
        None => None,
    };
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(SqlError::unsupported("DISTINCT ON")),
    };
    let mut order = OrderCompiler {
        scope,
        grouping: &mut grouping,
        grouped,
        distinct,
        items: &items,
        exprs: &mut exprs,
    };
    let keys = order_items
        .iter()
        .map(|o| order.key(o))
        .collect::<Result<_, _>>()?;
    let grouping = grouped.then_some(grouping);
    Ok(Outputs {
        exprs,
        columns,
        grouping,
        having,
        distinct,
        keys,
    })
}

/// Turns ORDER BY items into sort keys: a reference to an output, or a
/// helper expression appended after the outputs.
struct OrderCompiler<'a> {
    scope: &'a Scope,
    grouping: &'a mut Grouping,
    grouped: bool,
    distinct: bool,
    items: &'a [(ast::Expr, String)],
    exprs: &'a mut Vec<Expr>,
}

impl OrderCompiler<'_> {
    fn key(&mut self, o: &ast::OrderByExpr) -> Result<SortKey, SqlError> {
        let column = match output_reference(&o.expr, self.items)? {
            Some(i) => i,
            None if self.distinct => {
                return Err(SqlError::InvalidDefinition(
                    "for SELECT DISTINCT, ORDER BY expressions must appear in the select list"
                        .into(),
                ));
            }
            None => {
                let (x, _) = compile_output(self.scope, self.grouping, self.grouped, &o.expr)?;
                self.exprs.push(x);
                self.exprs.len() - 1
            }
        };
        if let Some(ast::OrderBySort::Using(_)) = o.options.sort {
            return Err(SqlError::unsupported("ORDER BY ... USING"));
        }
        let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
        Ok(SortKey {
            column,
            descending,
            nulls_first: o.options.nulls_first.unwrap_or(descending),
        })
    }
}

/// Stacks aggregation, HAVING, projection, DISTINCT, sorting, LIMIT and
/// the trim of helper columns on top of the filtered source.
fn stack_operators(mut plan: Plan, outputs: Outputs, (offset, limit): (u64, Option<u64>)) -> Plan {
    let wrap = |plan: Plan| Box::new(plan);
    if let Some(grouping) = outputs.grouping {
        plan = Plan::Aggregate {
            input: wrap(plan),
            groups: grouping.groups.into_iter().map(|(_, x, _)| x).collect(),
            aggs: grouping.aggs.into_iter().map(|(_, a, _)| a).collect(),
        };
        if let Some(predicate) = outputs.having {
            plan = Plan::Filter {
                input: wrap(plan),
                predicate,
            };
        }
    }
    let width = outputs.columns.len();
    let extra = outputs.exprs.len() > width;
    plan = Plan::Project {
        input: wrap(plan),
        exprs: outputs.exprs,
    };
    if outputs.distinct {
        plan = Plan::Distinct {
            input: wrap(plan),
            width,
        };
    }
    if !outputs.keys.is_empty() {
        plan = Plan::Sort {
            input: wrap(plan),
            keys: outputs.keys,
        };
    }
    if offset > 0 || limit.is_some() {
        plan = Plan::Limit {
            input: wrap(plan),
            offset,
            limit,
        };
    }
    if extra {
        plan = Plan::Keep {
            input: wrap(plan),
            width,
        };
    }
    plan
}

fn expect_boolean(ty: Option<DataType>, clause: &str) -> Result<(), SqlError> {
    match ty {
        Some(t) if t != DataType::Boolean => Err(SqlError::TypeMismatch {
            message: format!("argument of {clause} must be BOOLEAN, not {t}"),
        }),
        _ => Ok(()),
    }
}

fn check_select_supported(select: &ast::Select) -> Result<(), SqlError> {
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || !select.connect_by.is_empty()
        || select.exclude.is_some()
    {
        return Err(SqlError::unsupported(format!("SELECT clause in {select}")));
    }
    Ok(())
}

/// Projection items as (expression, output name), with `*` expanded.
fn expand_projection(
    scope: &Scope,
    projection: &[ast::SelectItem],
) -> Result<Vec<(ast::Expr, String)>, SqlError> {
    let mut items = Vec::new();
    let column_expr = |c: &ScopeColumn| -> ast::Expr {
        match &c.table {
            Some(t) => ast::Expr::CompoundIdentifier(vec![quoted(t), quoted(&c.name)]),
            None => ast::Expr::Identifier(quoted(&c.name)),
        }
    };
    for item in projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => items.push((e.clone(), output_name(e))),
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), ident(alias)))
            }
            ast::SelectItem::Wildcard(_) => {
                if scope.columns.is_empty() {
                    return Err(SqlError::InvalidDefinition(
                        "SELECT * with no tables specified".into(),
                    ));
                }
                items.extend(
                    scope
                        .columns
                        .iter()
                        .map(|c| (column_expr(c), c.name.clone())),
                );
            }
            ast::SelectItem::QualifiedWildcard(
                ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                _,
            ) => {
                let table = object_name(name)?;
                let matching: Vec<&ScopeColumn> = scope
                    .columns
                    .iter()
                    .filter(|c| c.table.as_deref() == Some(table.as_str()))
                    .collect();
                if matching.is_empty() {
                    return Err(SqlError::UnknownTable(table));
                }
                items.extend(
                    matching
                        .into_iter()
                        .map(|c| (column_expr(c), c.name.clone())),
                );
            }
            other => return Err(SqlError::unsupported(format!("select item {other}"))),
        }
    }
    Ok(items)
}

fn quoted(name: &str) -> ast::Ident {
    ast::Ident::with_quote('"', name)
}

/// The column name PostgreSQL gives an unnamed output.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(parts) => {
            parts.last().map_or_else(|| "?column?".into(), ident)
        }
        ast::Expr::Function(f) => object_name(&f.name).unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => output_name(expr),
        _ => "?column?".into(),
    }
}

fn order_by_items(query: &ast::Query) -> Result<Vec<ast::OrderByExpr>, SqlError> {
    match &query.order_by {
        None => Ok(Vec::new()),
        Some(ast::OrderBy {
            kind: ast::OrderByKind::Expressions(items),
            interpolate: None,
        }) => {
            if items.iter().any(|o| o.with_fill.is_some()) {
                return Err(SqlError::unsupported("ORDER BY ... WITH FILL"));
            }
            Ok(items.clone())
        }
        Some(other) => Err(SqlError::unsupported(format!("ORDER BY form {other}"))),
    }
}

/// An ORDER BY or GROUP BY item that names an output column: by position
/// (`ORDER BY 2`) or by output name (`ORDER BY total`).
fn output_reference(
    e: &ast::Expr,
    items: &[(ast::Expr, String)],
) -> Result<Option<usize>, SqlError> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => {
                let position: usize = n
                    .parse()
                    .map_err(|_| SqlError::InvalidDefinition(format!("position {n}")))?;
                if position == 0 || position > items.len() {
                    return Err(SqlError::InvalidDefinition(format!(
                        "position {position} is not in the select list"
                    )));
                }
                Ok(Some(position - 1))
            }
            _ => Ok(None),
        },
        ast::Expr::Identifier(i) => {
            let name = ident(i);
            Ok(items.iter().position(|(_, out)| *out == name))
        }
        other => Ok(items
            .iter()
            .position(|(expr, _)| expr.to_string() == other.to_string())),
    }
}

fn group_by_exprs(
    group_by: &ast::GroupByExpr,
    items: &[(ast::Expr, String)],
) -> Result<Vec<ast::Expr>, SqlError> {
    let ast::GroupByExpr::Expressions(exprs, modifiers) = group_by else {
        return Err(SqlError::unsupported("GROUP BY ALL"));
    };
    if !modifiers.is_empty() {
        return Err(SqlError::unsupported("GROUP BY modifiers"));
    }
    exprs
        .iter()
        .map(|e| match e {
            ast::Expr::Value(_) => match output_reference(e, items)? {
                Some(i) => Ok(items[i].0.clone()),
                None => Err(SqlError::unsupported(format!("GROUP BY {e}"))),
            },
            ast::Expr::Identifier(i) => {
                // An output alias that is not also an input column.
                let name = ident(i);
                match items
                    .iter()
                    .find(|(expr, out)| *out == name && !matches!(expr, ast::Expr::Identifier(_)))
                {
                    Some((expr, _)) => Ok(expr.clone()),
                    None => Ok(e.clone()),
                }
            }
            other => Ok(other.clone()),
        })
        .collect()
}

fn limit_offset(query: &ast::Query) -> Result<(u64, Option<u64>), SqlError> {
    let count = |e: &ast::Expr, what: &str| -> Result<u64, SqlError> {
        match constant(e)? {
            Value::Int(n) if n >= 0 => Ok(n as u64),
            other => Err(SqlError::InvalidDefinition(format!(
                "{what} must be a non-negative integer, not {}",
                other.literal()
            ))),
        }
    };
    match &query.limit_clause {
        None => Ok((0, None)),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::unsupported("LIMIT BY"));
            }
            let limit = match limit {
                Some(e) if !matches!(e, ast::Expr::Value(v) if v.value == ast::Value::Null) => {
                    Some(count(e, "LIMIT")?)
                }
                _ => None,
            };
            let offset = offset
                .as_ref()
                .map(|o| count(&o.value, "OFFSET"))
                .transpose()?
                .unwrap_or(0);
            Ok((offset, limit))
        }
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            Err(SqlError::unsupported("LIMIT offset, count"))
        }
    }
}

/// Plans the FROM clause: tables and joins, left to right.
fn plan_from(
    tables: &mut dyn Tables,
    from: &[ast::TableWithJoins],
) -> Result<(Plan, Scope), SqlError> {
    let mut result: Option<(Plan, Scope)> = None;
    for item in from {
        let mut current = plan_table(tables, &item.relation)?;
        for join in &item.joins {
            let right = plan_table(tables, &join.relation)?;
            current = plan_join(current, right, &join.join_operator)?;
        }
        result = Some(match result {
            None => current,
            Some(left) => cross(left, current),
        });
    }
    Ok(result.unwrap_or((Plan::Single, Scope::default())))
}

fn cross(left: (Plan, Scope), right: (Plan, Scope)) -> (Plan, Scope) {
    let scope = left.1.join(&right.1);
    let right_width = right.1.columns.len();
    (
        Plan::Join {
            left: Box::new(left.0),
            right: Box::new(right.0),
            left_join: false,
            keys: vec![],
            on: None,
            right_width,
        },
        scope,
    )
}

fn plan_table(
    tables: &mut dyn Tables,
    factor: &ast::TableFactor,
) -> Result<(Plan, Scope), SqlError> {
    let ast::TableFactor::Table {
        name,
        alias,
        args: None,
        with_hints,
        version: None,
        partitions,
        ..
    } = factor
    else {
        return Err(SqlError::unsupported(format!("FROM item {factor}")));
    };
    if !with_hints.is_empty() || !partitions.is_empty() {
        return Err(SqlError::unsupported(format!("FROM item {factor}")));
    }
    let table = tables.table(&object_name(name)?)?;
    let alias = match alias {
        Some(a) if a.columns.is_empty() => ident(&a.name),
        Some(a) => return Err(SqlError::unsupported(format!("column aliases in {a}"))),
        None => table.name.clone(),
    };
    let scope = Scope::of_table(&table, &alias);
    Ok((
        Plan::Scan {
            table,
            alias,
            access: Access::Full,
        },
        scope,
    ))
}

fn plan_join(
    left: (Plan, Scope),
    right: (Plan, Scope),
    op: &ast::JoinOperator,
) -> Result<(Plan, Scope), SqlError> {
    use ast::JoinOperator as J;
    let (constraint, left_join) = match op {
        J::Join(c) | J::Inner(c) => (c, false),
        J::Left(c) | J::LeftOuter(c) => (c, true),
        J::CrossJoin(ast::JoinConstraint::None) => return Ok(cross(left, right)),
        other => {
            return Err(SqlError::unsupported(
                format!("join {other:?}")
                    .split('(')
                    .next()
                    .unwrap_or("join")
                    .to_string(),
            ));
        }
    };
    let scope = left.1.join(&right.1);
    let on = match constraint {
        ast::JoinConstraint::On(e) => {
            let (x, t) = compile(&scope, e)?;
            expect_boolean(t, "JOIN ... ON")?;
            x
        }
        ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural => {
            return Err(SqlError::unsupported(
                "JOIN ... USING / NATURAL JOIN (write the ON condition)",
            ));
        }
        ast::JoinConstraint::None => return Err(SqlError::unsupported("JOIN without ON")),
    };
    let left_width = left.1.columns.len();
    let keys = equi_keys(&on, left_width);
    let right_width = right.1.columns.len();
    Ok((
        Plan::Join {
            left: Box::new(left.0),
            right: Box::new(right.0),
            left_join,
            keys,
            on: Some(on),
            right_width,
        },
        scope,
    ))
}

/// The `left-side = right-side` conjuncts of a join condition, as hash keys.
fn equi_keys(on: &Expr, left_width: usize) -> Vec<(Expr, Expr)> {
    let mut keys = Vec::new();
    for conjunct in conjuncts(on) {
        let Expr::Binary(BinOp::Eq, a, b) = conjunct else {
            continue;
        };
        let side = |e: &Expr| {
            let cols = e.columns();
            if cols.is_empty() {
                None
            } else if cols.iter().all(|&c| c < left_width) {
                Some(true)
            } else if cols.iter().all(|&c| c >= left_width) {
                Some(false)
            } else {
                None
            }
        };
        match (side(a), side(b)) {
            (Some(true), Some(false)) => {
                keys.push(((**a).clone(), b.shifted(-(left_width as isize))))
            }
            (Some(false), Some(true)) => {
                keys.push(((**b).clone(), a.shifted(-(left_width as isize))))
            }
            _ => {}
        }
    }
    keys
}
