//! Plan types: the operator tree the executor runs, the scopes that name
//! its columns, and how EXPLAIN prints it.

use crate::catalog::{Index, Table};
use crate::error::SqlError;
use crate::expr::Expr;
use crate::types::{DataType, Value};
use std::fmt::Write as _;

/// One column visible to expressions: where it comes from and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeColumn {
    /// The table (or alias) it belongs to, if any.
    pub table: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type, when known.
    pub data_type: Option<DataType>,
}

/// The columns of the rows an operator produces, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// The columns.
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    /// The scope of a table read under `alias`.
    pub fn of_table(table: &Table, alias: &str) -> Self {
        Scope {
            columns: table
                .columns
                .iter()
                .map(|c| ScopeColumn {
                    table: Some(alias.to_string()),
                    name: c.name.clone(),
                    data_type: Some(c.data_type),
                })
                .collect(),
        }
    }

    /// Columns of `self` followed by those of `other` (a join's output).
    pub fn join(&self, other: &Scope) -> Scope {
        let mut columns = self.columns.clone();
        columns.extend(other.columns.iter().cloned());
        Scope { columns }
    }

    /// The position of `name` (qualified by `table` when given).
    pub fn resolve(&self, table: Option<&str>, name: &str) -> Result<usize, SqlError> {
        let mut found =
            self.columns.iter().enumerate().filter(|(_, c)| {
                c.name == name && table.is_none_or(|t| c.table.as_deref() == Some(t))
            });
        let shown = || table.map_or_else(|| name.to_string(), |t| format!("{t}.{name}"));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(SqlError::AmbiguousColumn(shown())),
            (None, _) => Err(SqlError::UnknownColumn(shown())),
        }
    }
}

/// How a table's rows are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every row, in primary-key order.
    Full,
    /// Rows by whole primary keys: one point get each.
    PkPoints(Vec<Vec<Value>>),
    /// Rows whose primary key starts with `prefix` and whose next key column
    /// lies within the bounds: one bounded scan.
    PkRange {
        /// Equal values of the leading key columns.
        prefix: Vec<Value>,
        /// Lower bound of the next key column, and whether it is inclusive.
        lower: Option<(Value, bool)>,
        /// Upper bound of the next key column, and whether it is inclusive.
        upper: Option<(Value, bool)>,
    },
    /// Rows whose indexed columns start with `values`: a scan of the index
    /// entries, then a point get per row.
    IndexEq {
        /// The index.
        index: Index,
        /// Equal values of the index's leading columns.
        values: Vec<Value>,
    },
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)` or `count(e)`.
    Count,
    /// `sum(e)`
    Sum,
    /// `min(e)`
    Min,
    /// `max(e)`
    Max,
    /// `avg(e)`
    Avg,
}

/// One aggregate call: the function, its argument (none for `count(*)`)
/// and whether it sees distinct values only.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    /// The function.
    pub func: AggFunc,
    /// Its argument over the input rows.
    pub arg: Option<Expr>,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
}

/// One ORDER BY key: an output column and its direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// Position in the projected row.
    pub column: usize,
    /// Descending order.
    pub descending: bool,
    /// NULLs before other values.
    pub nulls_first: bool,
}

/// An operator tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// One row without columns (SELECT without FROM).
    Single,
    /// Rows of a table.
    Scan {
        /// The table.
        table: Table,
        /// The name it is known by in the query.
        alias: String,
        /// How rows are found.
        access: Access,
    },
    /// Rows for which `predicate` is true.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Condition.
        predicate: Expr,
    },
    /// An inner or left join; `keys` are equalities used to hash-match rows
    /// (left expression over the left rows, right over the right rows) and
    /// `on` is the whole condition over the joined row.
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// LEFT JOIN: unmatched left rows are kept, padded with NULLs.
        left_join: bool,
        /// The hash keys.
        keys: Vec<(Expr, Expr)>,
        /// The join condition.
        on: Option<Expr>,
        /// Columns on the right side (for NULL padding).
        right_width: usize,
    },
    /// Groups of rows reduced to one row each: group values, then aggregates.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// GROUP BY expressions.
        groups: Vec<Expr>,
        /// Aggregate calls.
        aggs: Vec<Agg>,
    },
    /// Computed columns.
    Project {
        /// Input.
        input: Box<Plan>,
        /// One expression per output column.
        exprs: Vec<Expr>,
    },
    /// Duplicate rows removed (over the first `width` columns).
    Distinct {
        /// Input.
        input: Box<Plan>,
        /// Columns compared.
        width: usize,
    },
    /// Rows in order.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys, most significant first.
        keys: Vec<SortKey>,
    },
    /// OFFSET and LIMIT.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Rows skipped.
        offset: u64,
        /// Rows kept after that.
        limit: Option<u64>,
    },
    /// Only the first `width` columns (drops ORDER BY helper columns).
    Keep {
        /// Input.
        input: Box<Plan>,
        /// Columns kept.
        width: usize,
    },
}

impl Plan {
    /// The plan as EXPLAIN prints it, one operator per line.
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.explain_into(0, &mut lines);
        lines
    }

    fn explain_into(&self, depth: usize, lines: &mut Vec<String>) {
        // Keep only trims helper columns: EXPLAIN shows what it keeps.
        if let Plan::Keep { input, .. } = self {
            return input.explain_into(depth, lines);
        }
        let pad = match depth {
            0 => String::new(),
            d => format!("{}-> ", "  ".repeat(d - 1)),
        };
        lines.push(format!("{pad}{}", self.operator_line()));
        for child in self.inputs() {
            child.explain_into(depth + 1, lines);
        }
    }

    /// How many rows the plan reads, if it reads every row by whole
    /// primary key (`None` if any table is scanned, in whole or in part).
    /// Every input runs once (joins hash-match), so the reads add up.
    pub fn point_reads(&self) -> Option<usize> {
        match self {
            Plan::Scan {
                access: Access::PkPoints(points),
                ..
            } => Some(points.len()),
            Plan::Scan { .. } => None,
            other => other
                .inputs()
                .iter()
                .try_fold(0usize, |sum, input| Some(sum + input.point_reads()?)),
        }
    }

    /// The operators this one reads from, left to right.
    pub fn inputs(&self) -> Vec<&Plan> {
        match self {
            Plan::Single | Plan::Scan { .. } => vec![],
            Plan::Join { left, right, .. } => vec![left, right],
            Plan::Filter { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Project { input, .. }
            | Plan::Distinct { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Keep { input, .. } => vec![input],
        }
    }

    /// This operator's line in EXPLAIN, without its inputs.
    fn operator_line(&self) -> String {
        match self {
            Plan::Single => "Result (one row)".to_string(),
            Plan::Scan {
                table,
                alias,
                access,
            } => describe_access(table, alias, access),
            Plan::Filter { predicate, .. } => format!("Filter {predicate}"),
            Plan::Join {
                left_join,
                keys,
                on,
                ..
            } => join_line(*left_join, !keys.is_empty(), on.as_ref()),
            Plan::Aggregate { groups, aggs, .. } => aggregate_line(groups, aggs.len()),
            Plan::Project { exprs, .. } => format!("Project {}", listed(exprs)),
            Plan::Distinct { .. } => "Distinct".to_string(),
            Plan::Sort { keys, .. } => sort_line(keys),
            Plan::Limit { offset, limit, .. } => limit_line(*offset, *limit),
            Plan::Keep { input, .. } => input.operator_line(),
        }
    }
}

/// Items shown comma-separated.
fn listed(items: &[impl std::fmt::Display]) -> String {
    let shown: Vec<String> = items.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

fn join_line(left_join: bool, hashed: bool, on: Option<&Expr>) -> String {
    let kind = if left_join { "Left" } else { "Inner" };
    let method = if hashed { "Hash" } else { "Nested loop" };
    let mut line = format!("{method} {kind} join");
    if let Some(on) = on {
        let _ = write!(line, " on {on}");
    }
    line
}

fn aggregate_line(groups: &[Expr], aggregates: usize) -> String {
    let mut line = "Aggregate".to_string();
    if !groups.is_empty() {
        let _ = write!(line, " by {}", listed(groups));
    }
    let plural = if aggregates == 1 { "" } else { "s" };
    let _ = write!(line, " ({aggregates} aggregate{plural})");
    line
}

fn sort_line(keys: &[SortKey]) -> String {
    let items: Vec<String> = keys
        .iter()
        .map(|k| {
            let order = if k.descending { " DESC" } else { "" };
            format!("#{}{order}", k.column + 1)
        })
        .collect();
    format!("Sort by {}", items.join(", "))
}

fn limit_line(offset: u64, limit: Option<u64>) -> String {
    let mut line = format!("Limit {}", limit.map_or("ALL".into(), |l| l.to_string()));
    if offset > 0 {
        let _ = write!(line, " offset {offset}");
    }
    line
}

fn describe_access(table: &Table, alias: &str, access: &Access) -> String {
    let name = if alias == table.name {
        table.name.clone()
    } else {
        format!("{} {alias}", table.name)
    };
    let key_names = |n: usize| -> Vec<&str> {
        table.primary_key[..n.min(table.primary_key.len())]
            .iter()
            .map(|&i| table.columns[i].name.as_str())
            .collect()
    };
    let equalities = |names: &[&str], values: &[Value]| -> String {
        names
            .iter()
            .zip(values)
            .map(|(n, v)| format!("{n} = {}", v.literal()))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    match access {
        Access::Full => format!("Full scan on {name}"),
        Access::PkPoints(keys) => {
            let names = key_names(table.primary_key.len());
            let shown: Vec<String> = keys.iter().map(|k| equalities(&names, k)).collect();
            format!(
                "Primary key lookup on {name} ({} key{}: {})",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                shown.join("; ")
            )
        }
        Access::PkRange {
            prefix,
            lower,
            upper,
        } => {
            let names = key_names(prefix.len() + 1);
            let mut conditions = vec![equalities(&names, prefix)];
            let next = names.get(prefix.len()).copied().unwrap_or("?");
            if let Some((v, inclusive)) = lower {
                conditions.push(format!(
                    "{next} {} {}",
                    if *inclusive { ">=" } else { ">" },
                    v.literal()
                ));
            }
            if let Some((v, inclusive)) = upper {
                conditions.push(format!(
                    "{next} {} {}",
                    if *inclusive { "<=" } else { "<" },
                    v.literal()
                ));
            }
            conditions.retain(|c| !c.is_empty());
            format!(
                "Primary key range scan on {name} ({})",
                conditions.join(" AND ")
            )
        }
        Access::IndexEq { index, values } => {
            let names: Vec<&str> = index
                .columns
                .iter()
                .map(|&i| table.columns[i].name.as_str())
                .collect();
            format!(
                "Index scan on {name} using {} ({})",
                index.name,
                equalities(&names, values)
            )
        }
    }
}

/// A query's output: column names and types.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    /// Name.
    pub name: String,
    /// Type (None when only NULL was seen, e.g. `SELECT NULL`).
    pub data_type: Option<DataType>,
}

/// A planned query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The operators.
    pub plan: Plan,
    /// The output columns.
    pub columns: Vec<OutputColumn>,
}
