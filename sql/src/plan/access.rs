//! Access-path choice: what a WHERE clause says about each column, and the
//! cheapest way it allows to find a table's rows (primary-key points, a
//! primary-key range, an index, or every row).

use crate::catalog::Table;
use crate::expr::{BinOp, Expr};
use crate::plan::tree::{Access, Plan};
use crate::types::{DataType, Value, compare};
use std::cmp::Ordering;

/// The AND-ed parts of a condition.
pub fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Binary(BinOp::And, l, r) => {
            let mut out = conjuncts(l);
            out.extend(conjuncts(r));
            out
        }
        other => vec![other],
    }
}

/// What the WHERE clause says about one column.
#[derive(Debug, Default, Clone)]
struct Bounds {
    eq: Option<Value>,
    any_of: Option<Vec<Value>>,
    lower: Option<(Value, bool)>,
    upper: Option<(Value, bool)>,
}

/// The value `v` as stored in a column of `ty`, only if the conversion is
/// exact (so a key built from it finds exactly the rows the predicate means).
fn exact(v: &Value, ty: DataType) -> Option<Value> {
    if v.is_null() {
        return None;
    }
    let converted = v.clone().coerce_to(ty).ok()?;
    (compare(v, &converted) == Some(Ordering::Equal)).then_some(converted)
}

fn column_bounds(predicate: &Expr, table: &Table) -> Vec<Bounds> {
    let mut bounds = vec![Bounds::default(); table.columns.len()];
    for conjunct in conjuncts(predicate) {
        match conjunct {
            Expr::Binary(op, l, r) if op.is_comparison() && *op != BinOp::NotEq => {
                let (column, value, op) = match (l.as_ref(), r.as_ref()) {
                    (Expr::Column(c, _), Expr::Literal(v)) => (*c, v, *op),
                    (Expr::Literal(v), Expr::Column(c, _)) => (*c, v, op.flipped()),
                    _ => continue,
                };
                let Some(v) = exact(value, table.columns[column].data_type) else {
                    continue;
                };
                let b = &mut bounds[column];
                match op {
                    BinOp::Eq => b.eq = Some(v),
                    BinOp::Gt => tighten_lower(b, v, false),
                    BinOp::GtEq => tighten_lower(b, v, true),
                    BinOp::Lt => tighten_upper(b, v, false),
                    _ => tighten_upper(b, v, true),
                }
            }
            Expr::InList(e, list, false) => {
                let Expr::Column(column, _) = e.as_ref() else {
                    continue;
                };
                let ty = table.columns[*column].data_type;
                let values: Option<Vec<Value>> = list
                    .iter()
                    .map(|item| match item {
                        Expr::Literal(v) => exact(v, ty),
                        _ => None,
                    })
                    .collect();
                if let Some(values) = values {
                    bounds[*column].any_of = Some(values);
                }
            }
            Expr::Between(e, low, high, false) => {
                let (Expr::Column(column, _), Expr::Literal(lo), Expr::Literal(hi)) =
                    (e.as_ref(), low.as_ref(), high.as_ref())
                else {
                    continue;
                };
                let ty = table.columns[*column].data_type;
                if let (Some(lo), Some(hi)) = (exact(lo, ty), exact(hi, ty)) {
                    tighten_lower(&mut bounds[*column], lo, true);
                    tighten_upper(&mut bounds[*column], hi, true);
                }
            }
            _ => {}
        }
    }
    bounds
}

fn tighten_lower(b: &mut Bounds, v: Value, inclusive: bool) {
    let replace = match &b.lower {
        None => true,
        Some((old, old_inclusive)) => match compare(&v, old) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => *old_inclusive && !inclusive,
            _ => false,
        },
    };
    if replace {
        b.lower = Some((v, inclusive));
    }
}

fn tighten_upper(b: &mut Bounds, v: Value, inclusive: bool) {
    let replace = match &b.upper {
        None => true,
        Some((old, old_inclusive)) => match compare(&v, old) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => *old_inclusive && !inclusive,
            _ => false,
        },
    };
    if replace {
        b.upper = Some((v, inclusive));
    }
}

/// Picks the access path of a single-table scan from its WHERE predicate.
/// The predicate is still applied to every row found, so the access path
/// only has to find a superset of the matching rows.
pub fn choose_access(plan: Plan, predicate: &Expr) -> Plan {
    let Plan::Scan {
        table,
        alias,
        access: Access::Full,
    } = plan
    else {
        return plan;
    };
    // A view is read whole; the predicate filters it.
    if crate::system::is_view(&table) {
        return Plan::Scan {
            table,
            alias,
            access: Access::Full,
        };
    }
    let access = access_for(&table, predicate);
    Plan::Scan {
        table,
        alias,
        access,
    }
}

fn access_for(table: &Table, predicate: &Expr) -> Access {
    let bounds = column_bounds(predicate, table);
    let pk: Vec<&Bounds> = table.primary_key.iter().map(|&i| &bounds[i]).collect();
    let eq_prefix = pk.iter().take_while(|b| b.eq.is_some()).count();
    if eq_prefix == pk.len() {
        return Access::PkPoints(vec![pk.iter().filter_map(|b| b.eq.clone()).collect()]);
    }
    if eq_prefix == pk.len() - 1
        && let Some(values) = &pk[eq_prefix].any_of
    {
        let prefix: Vec<Value> = pk[..eq_prefix]
            .iter()
            .filter_map(|b| b.eq.clone())
            .collect();
        return Access::PkPoints(
            values
                .iter()
                .map(|v| {
                    let mut key = prefix.clone();
                    key.push(v.clone());
                    key
                })
                .collect(),
        );
    }
    let prefix: Vec<Value> = pk[..eq_prefix]
        .iter()
        .filter_map(|b| b.eq.clone())
        .collect();
    let next = pk[eq_prefix];
    let ranged = next.lower.is_some() || next.upper.is_some();
    if eq_prefix > 0 || ranged {
        let index = best_index(table, &bounds);
        if eq_prefix == 0
            && let Some(access) = index
        {
            return access;
        }
        return Access::PkRange {
            prefix,
            lower: next.lower.clone(),
            upper: next.upper.clone(),
        };
    }
    best_index(table, &bounds).unwrap_or(Access::Full)
}

/// The index with the longest run of equality-constrained leading columns
/// (unique indexes win ties).
fn best_index(table: &Table, bounds: &[Bounds]) -> Option<Access> {
    table
        .indexes
        .iter()
        .map(|index| {
            let values: Vec<Value> = index
                .columns
                .iter()
                .map_while(|&c| bounds[c].eq.clone())
                .collect();
            (index, values)
        })
        .filter(|(_, values)| !values.is_empty())
        .max_by_key(|(index, values)| (values.len(), index.unique))
        .map(|(index, values)| Access::IndexEq {
            index: index.clone(),
            values,
        })
}
