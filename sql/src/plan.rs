//! Planning: from sqlparser's syntax tree to a tree of operators over rows.
//!
//! Planning resolves names, checks types, chooses how each table is read
//! (a primary-key point or range, an index, or a full scan) and builds the
//! operators a query needs. EXPLAIN prints the same tree the executor runs,
//! so what it shows is what happens.

use crate::catalog::{Index, Table};
use crate::error::SqlError;
use crate::expr::{BinOp, Expr, Func};
use crate::types::{DataType, Value, compare, parse_text};
use sqlparser::ast;
use std::cmp::Ordering;
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
        let pad = if depth == 0 {
            String::new()
        } else {
            format!("{}-> ", "  ".repeat(depth - 1))
        };
        let mut line = pad;
        let children: Vec<&Plan> = match self {
            Plan::Single => {
                line.push_str("Result (one row)");
                vec![]
            }
            Plan::Scan {
                table,
                alias,
                access,
            } => {
                line.push_str(&describe_access(table, alias, access));
                vec![]
            }
            Plan::Filter { input, predicate } => {
                let _ = write!(line, "Filter {predicate}");
                vec![input]
            }
            Plan::Join {
                left,
                right,
                left_join,
                keys,
                on,
                ..
            } => {
                let kind = if *left_join { "Left" } else { "Inner" };
                if keys.is_empty() {
                    let _ = write!(line, "Nested loop {kind} join");
                } else {
                    let _ = write!(line, "Hash {kind} join");
                }
                if let Some(on) = on {
                    let _ = write!(line, " on {on}");
                }
                vec![left, right]
            }
            Plan::Aggregate {
                input,
                groups,
                aggs,
            } => {
                line.push_str("Aggregate");
                if !groups.is_empty() {
                    let keys: Vec<String> = groups.iter().map(ToString::to_string).collect();
                    let _ = write!(line, " by {}", keys.join(", "));
                }
                let plural = if aggs.len() == 1 { "" } else { "s" };
                let _ = write!(line, " ({} aggregate{plural})", aggs.len());
                vec![input]
            }
            Plan::Project { input, exprs } => {
                let items: Vec<String> = exprs.iter().map(ToString::to_string).collect();
                let _ = write!(line, "Project {}", items.join(", "));
                vec![input]
            }
            Plan::Distinct { input, .. } => {
                line.push_str("Distinct");
                vec![input]
            }
            Plan::Sort { input, keys } => {
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "#{}{}",
                            k.column + 1,
                            if k.descending { " DESC" } else { "" }
                        )
                    })
                    .collect();
                let _ = write!(line, "Sort by {}", items.join(", "));
                vec![input]
            }
            Plan::Limit {
                input,
                offset,
                limit,
            } => {
                let _ = write!(
                    line,
                    "Limit {}",
                    limit.map_or("ALL".into(), |l| l.to_string())
                );
                if *offset > 0 {
                    let _ = write!(line, " offset {offset}");
                }
                vec![input]
            }
            Plan::Keep { input, .. } => return input.explain_into(depth, lines),
        };
        lines.push(line);
        for child in children {
            child.explain_into(depth + 1, lines);
        }
    }
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

/// Which aggregates an expression compiler accepts.
enum Mode<'a> {
    /// No aggregates (WHERE, ON, UPDATE SET, ...).
    Plain,
    /// An aggregating query: group expressions become columns of the
    /// aggregate's output, aggregate calls are collected.
    Grouped(&'a mut Grouping),
}

/// The state of compiling a grouped query's outputs.
#[derive(Debug, Default)]
pub struct Grouping {
    /// GROUP BY expressions as text (to match output expressions) and compiled.
    groups: Vec<(String, Expr, Option<DataType>)>,
    /// Aggregate calls as text and compiled.
    aggs: Vec<(String, Agg, Option<DataType>)>,
}

/// Compiles an expression over `scope`.
pub fn compile(scope: &Scope, e: &ast::Expr) -> Result<(Expr, Option<DataType>), SqlError> {
    Compiler {
        scope,
        mode: Mode::Plain,
    }
    .expr(e)
}

/// Compiles a constant expression and evaluates it.
pub fn constant(e: &ast::Expr) -> Result<Value, SqlError> {
    let (expr, _) = compile(&Scope::default(), e)?;
    expr.eval(&[])
}

struct Compiler<'s, 'g> {
    scope: &'s Scope,
    mode: Mode<'g>,
}

fn unsupported(what: impl std::fmt::Display) -> SqlError {
    SqlError::NotSupported(what.to_string())
}

/// The name of an identifier as PostgreSQL folds it: lower case unless quoted.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The single name of an object (`schema.table` is not supported).
pub fn object_name(name: &ast::ObjectName) -> Result<String, SqlError> {
    match name.0.as_slice() {
        [ast::ObjectNamePart::Identifier(i)] => Ok(ident(i)),
        _ => Err(unsupported(format!("qualified name {name}"))),
    }
}

/// Maps a SQL type name to a column type.
pub fn data_type(t: &ast::DataType) -> Result<DataType, SqlError> {
    use ast::DataType as T;
    Ok(match t {
        T::BigInt(_) | T::Int8(_) => DataType::BigInt,
        T::Int(_) | T::Integer(_) | T::Int4(_) | T::SmallInt(_) => DataType::Int,
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Real | T::Float4 | T::Float(_) => {
            DataType::Double
        }
        T::Bool | T::Boolean => DataType::Boolean,
        T::Text | T::Varchar(_) | T::CharacterVarying(_) | T::Char(_) => DataType::Text,
        T::Bytea => DataType::Bytea,
        T::Timestamp(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
            DataType::Timestamp
        }
        other => return Err(unsupported(format!("type {other}"))),
    })
}

fn literal(v: &ast::Value) -> Result<Value, SqlError> {
    use ast::Value as V;
    Ok(match v {
        V::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Double(n.parse().map_err(|_| SqlError::OutOfRange {
                message: format!("number {n}"),
            })?),
        },
        V::SingleQuotedString(s) | V::EscapedStringLiteral(s) => Value::Text(s.clone()),
        V::DollarQuotedString(s) => Value::Text(s.value.clone()),
        V::HexStringLiteral(h) => parse_text(&format!("\\x{h}"), DataType::Bytea)?,
        V::Boolean(b) => Value::Bool(*b),
        V::Null => Value::Null,
        other => return Err(unsupported(format!("literal {other}"))),
    })
}

/// Whether two types can be compared.
fn comparable(a: DataType, b: DataType) -> bool {
    a == b || (a.is_numeric() && b.is_numeric())
}

/// A text literal used where a value of `ty` is expected is read as one,
/// as PostgreSQL reads an untyped literal (`id = '5'`, `ts < '2024-01-01'`).
fn adapt_literal(e: Expr, ty: Option<DataType>) -> Result<Expr, SqlError> {
    match (e, ty) {
        (Expr::Literal(Value::Text(s)), Some(ty)) if ty != DataType::Text => {
            Ok(Expr::Literal(parse_text(&s, ty)?))
        }
        (e, _) => Ok(e),
    }
}

/// The type of an operand for type checks: a literal's own type (after
/// [`adapt_literal`] may have converted it), else what compiling said.
fn operand_type(e: &Expr, compiled: Option<DataType>) -> Option<DataType> {
    match e {
        Expr::Literal(v) => v.data_type(),
        _ => compiled,
    }
}

fn agg_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "avg" => AggFunc::Avg,
        _ => return None,
    })
}

/// Whether `e` contains an aggregate call (walking the syntax tree, so a
/// string literal such as `'max(x)'` is not mistaken for one).
pub fn has_aggregate(e: &ast::Expr) -> bool {
    use ast::Expr as E;
    let any = |items: &[ast::Expr]| items.iter().any(has_aggregate);
    match e {
        E::Function(f) => {
            let ast::FunctionArguments::List(list) = &f.args else {
                return false;
            };
            let named_aggregate = object_name(&f.name).is_ok_and(|n| agg_func(&n).is_some());
            named_aggregate
                || list.args.iter().any(|arg| {
                    matches!(arg, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) if has_aggregate(x))
                })
        }
        E::Nested(x)
        | E::UnaryOp { expr: x, .. }
        | E::IsNull(x)
        | E::IsNotNull(x)
        | E::Cast { expr: x, .. } => has_aggregate(x),
        E::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        E::InList { expr, list, .. } => has_aggregate(expr) || any(list),
        E::Between {
            expr, low, high, ..
        } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            has_aggregate(expr) || has_aggregate(pattern)
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions
                    .iter()
                    .any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

impl Compiler<'_, '_> {
    fn expr(&mut self, e: &ast::Expr) -> Result<(Expr, Option<DataType>), SqlError> {
        if let Mode::Grouped(g) = &self.mode {
            let text = e.to_string();
            if let Some(i) = g.groups.iter().position(|(t, _, _)| *t == text) {
                return Ok((Expr::Column(i, text), g.groups[i].2));
            }
        }
        use ast::Expr as E;
        match e {
            E::Identifier(i) => self.column(None, &ident(i)),
            E::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => self.column(Some(&ident(t)), &ident(c)),
                _ => Err(unsupported(format!("name {e}"))),
            },
            E::Value(v) => {
                let v = literal(&v.value)?;
                let ty = v.data_type();
                Ok((Expr::Literal(v), ty))
            }
            E::Nested(inner) => self.expr(inner),
            E::UnaryOp { op, expr } => self.unary(*op, expr),
            E::BinaryOp { left, op, right } => self.binary(left, op, right),
            E::IsNull(inner) | E::IsNotNull(inner) => {
                let (x, _) = self.expr(inner)?;
                Ok((
                    Expr::IsNull(Box::new(x), matches!(e, E::IsNotNull(_))),
                    Some(DataType::Boolean),
                ))
            }
            E::InList {
                expr,
                list,
                negated,
            } => {
                let (x, ty) = self.expr(expr)?;
                let items = list
                    .iter()
                    .map(|item| {
                        let (item, item_ty) = self.expr(item)?;
                        let item = adapt_literal(item, ty)?;
                        self.check_comparable(ty, operand_type(&item, item_ty), "IN")?;
                        Ok(item)
                    })
                    .collect::<Result<_, SqlError>>()?;
                Ok((
                    Expr::InList(Box::new(x), items, *negated),
                    Some(DataType::Boolean),
                ))
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, ty) = self.expr(expr)?;
                let (lo, lo_ty) = self.expr(low)?;
                let (hi, hi_ty) = self.expr(high)?;
                let lo = adapt_literal(lo, ty)?;
                let hi = adapt_literal(hi, ty)?;
                self.check_comparable(ty, operand_type(&lo, lo_ty), "BETWEEN")?;
                self.check_comparable(ty, operand_type(&hi, hi_ty), "BETWEEN")?;
                Ok((
                    Expr::Between(Box::new(x), Box::new(lo), Box::new(hi), *negated),
                    Some(DataType::Boolean),
                ))
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            } => {
                let (x, ty) = self.expr(expr)?;
                let (p, _) = self.expr(pattern)?;
                if ty.is_some_and(|t| t != DataType::Text) {
                    return Err(SqlError::TypeMismatch {
                        message: format!(
                            "LIKE needs text, {expr} is {}",
                            ty.map_or("", DataType::name)
                        ),
                    });
                }
                Ok((
                    Expr::Like(
                        Box::new(x),
                        Box::new(p),
                        *negated,
                        matches!(e, E::ILike { .. }),
                    ),
                    Some(DataType::Boolean),
                ))
            }
            E::Cast {
                expr, data_type: t, ..
            } => {
                let to = data_type(t)?;
                let (x, _) = self.expr(expr)?;
                Ok((Expr::Cast(Box::new(x), to), Some(to)))
            }
            E::TypedString(typed) => {
                let to = data_type(&typed.data_type)?;
                let v = literal(&typed.value.value)?;
                Ok((Expr::Literal(crate::expr::cast(v, to)?), Some(to)))
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            E::Function(f) => self.function(f),
            other => Err(unsupported(format!("expression {other}"))),
        }
    }

    fn column(
        &mut self,
        table: Option<&str>,
        name: &str,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        if let Mode::Grouped(_) = self.mode {
            let shown = table.map_or_else(|| name.to_string(), |t| format!("{t}.{name}"));
            // A column that resolves but is not grouped is a grouping error;
            // one that does not resolve at all is an unknown column.
            self.scope.resolve(table, name)?;
            return Err(SqlError::Grouping(format!(
                "column \"{shown}\" must appear in the GROUP BY clause or be used in an aggregate function"
            )));
        }
        let i = self.scope.resolve(table, name)?;
        let shown = table.map_or_else(|| name.to_string(), |t| format!("{t}.{name}"));
        Ok((Expr::Column(i, shown), self.scope.columns[i].data_type))
    }

    fn check_comparable(
        &self,
        a: Option<DataType>,
        b: Option<DataType>,
        op: &str,
    ) -> Result<(), SqlError> {
        match (a, b) {
            (Some(a), Some(b)) if !comparable(a, b) => Err(SqlError::TypeMismatch {
                message: format!("operator does not exist: {a} {op} {b}"),
            }),
            _ => Ok(()),
        }
    }

    fn unary(
        &mut self,
        op: ast::UnaryOperator,
        e: &ast::Expr,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        let (x, ty) = self.expr(e)?;
        match op {
            ast::UnaryOperator::Not => Ok((Expr::Not(Box::new(x)), Some(DataType::Boolean))),
            ast::UnaryOperator::Minus => match x {
                Expr::Literal(Value::Int(i)) => Ok((Expr::Literal(Value::Int(-i)), ty)),
                Expr::Literal(Value::Double(d)) => Ok((Expr::Literal(Value::Double(-d)), ty)),
                x => Ok((Expr::Neg(Box::new(x)), ty)),
            },
            ast::UnaryOperator::Plus => Ok((x, ty)),
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        use ast::BinaryOperator as B;
        let op = match op {
            B::Plus => BinOp::Add,
            B::Minus => BinOp::Sub,
            B::Multiply => BinOp::Mul,
            B::Divide => BinOp::Div,
            B::Modulo => BinOp::Mod,
            B::StringConcat => BinOp::Concat,
            B::Eq => BinOp::Eq,
            B::NotEq => BinOp::NotEq,
            B::Lt => BinOp::Lt,
            B::LtEq => BinOp::LtEq,
            B::Gt => BinOp::Gt,
            B::GtEq => BinOp::GtEq,
            B::And => BinOp::And,
            B::Or => BinOp::Or,
            other => return Err(unsupported(format!("operator {other}"))),
        };
        let (l, lt) = self.expr(left)?;
        let (r, rt) = self.expr(right)?;
        let (l, r) = if op.is_comparison() {
            (adapt_literal(l, rt)?, adapt_literal(r, lt)?)
        } else {
            (l, r)
        };
        let ty = match op {
            BinOp::And | BinOp::Or => Some(DataType::Boolean),
            _ if op.is_comparison() => {
                let (lt, rt) = (operand_type(&l, lt), operand_type(&r, rt));
                self.check_comparable(lt, rt, op.symbol())?;
                Some(DataType::Boolean)
            }
            BinOp::Concat => Some(DataType::Text),
            _ => match (lt, rt) {
                (Some(a), Some(b)) if !(a.is_numeric() && b.is_numeric()) => {
                    return Err(SqlError::TypeMismatch {
                        message: format!("operator does not exist: {a} {} {b}", op.symbol()),
                    });
                }
                (Some(DataType::Double), _) | (_, Some(DataType::Double)) => Some(DataType::Double),
                (Some(_), Some(_)) => Some(DataType::BigInt),
                (a, b) => a.or(b),
            },
        };
        Ok((Expr::Binary(op, Box::new(l), Box::new(r)), ty))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        let operand = operand.map(|o| self.expr(o)).transpose()?;
        let mut ty = None;
        let mut arms = Vec::with_capacity(conditions.len());
        for arm in conditions {
            let (c, _) = self.expr(&arm.condition)?;
            let c = match &operand {
                Some((o, _)) => Expr::Binary(BinOp::Eq, Box::new(o.clone()), Box::new(c)),
                None => c,
            };
            let (r, rt) = self.expr(&arm.result)?;
            ty = ty.or(rt);
            arms.push((c, r));
        }
        let otherwise = match otherwise {
            Some(e) => {
                let (x, t) = self.expr(e)?;
                ty = ty.or(t);
                Some(Box::new(x))
            }
            None => None,
        };
        Ok((Expr::Case(arms, otherwise), ty))
    }

    fn function(&mut self, f: &ast::Function) -> Result<(Expr, Option<DataType>), SqlError> {
        let name = object_name(&f.name)?;
        let ast::FunctionArguments::List(list) = &f.args else {
            return Err(unsupported(format!("function call {f}")));
        };
        if f.filter.is_some()
            || f.over.is_some()
            || !f.within_group.is_empty()
            || !list.clauses.is_empty()
        {
            return Err(unsupported(format!("function call {f}")));
        }
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        if let Some(func) = agg_func(&name) {
            return self.aggregate(f, func, &list.args, distinct);
        }
        if distinct {
            return Err(unsupported(format!("DISTINCT in {name}()")));
        }
        let func = match name.as_str() {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" => Func::Length,
            "abs" => Func::Abs,
            "coalesce" => Func::Coalesce,
            other => return Err(unsupported(format!("function {other}()"))),
        };
        let mut args = Vec::with_capacity(list.args.len());
        let mut types = Vec::with_capacity(list.args.len());
        for arg in &list.args {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg else {
                return Err(unsupported(format!("argument {arg}")));
            };
            let (x, t) = self.expr(e)?;
            args.push(x);
            types.push(t);
        }
        let ty = match func {
            Func::Lower | Func::Upper => Some(DataType::Text),
            Func::Length => Some(DataType::BigInt),
            Func::Abs => types.first().copied().flatten(),
            Func::Coalesce => types.iter().copied().flatten().next(),
        };
        Ok((Expr::Call(func, args), ty))
    }

    fn aggregate(
        &mut self,
        f: &ast::Function,
        func: AggFunc,
        args: &[ast::FunctionArg],
        distinct: bool,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        let Mode::Grouped(_) = self.mode else {
            return Err(SqlError::Grouping(format!(
                "aggregate function {f} is not allowed here"
            )));
        };
        let (arg, arg_ty) = match args {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)]
                if func == AggFunc::Count =>
            {
                (None, None)
            }
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
                // The argument is over the input rows, and may not itself aggregate.
                let (x, t) = Compiler {
                    scope: self.scope,
                    mode: Mode::Plain,
                }
                .expr(e)?;
                (Some(x), t)
            }
            _ => return Err(unsupported(format!("arguments of {f}"))),
        };
        let ty = match func {
            AggFunc::Count => Some(DataType::BigInt),
            AggFunc::Avg => Some(DataType::Double),
            AggFunc::Sum => match arg_ty {
                Some(DataType::Double) => Some(DataType::Double),
                Some(t) if t.is_numeric() => Some(DataType::BigInt),
                None => None,
                Some(t) => {
                    return Err(SqlError::TypeMismatch {
                        message: format!("function sum({t}) does not exist"),
                    });
                }
            },
            AggFunc::Min | AggFunc::Max => arg_ty,
        };
        if func == AggFunc::Avg && arg_ty.is_some_and(|t| !t.is_numeric()) {
            return Err(SqlError::TypeMismatch {
                message: format!(
                    "function avg({}) does not exist",
                    arg_ty.map_or("", DataType::name)
                ),
            });
        }
        let Mode::Grouped(g) = &mut self.mode else {
            return Err(SqlError::Grouping(
                "aggregate outside a grouped query".into(),
            ));
        };
        let text = f.to_string();
        let position = match g.aggs.iter().position(|(t, _, _)| *t == text) {
            Some(i) => i,
            None => {
                g.aggs.push((
                    text.clone(),
                    Agg {
                        func,
                        arg,
                        distinct,
                    },
                    ty,
                ));
                g.aggs.len() - 1
            }
        };
        Ok((Expr::Column(g.groups.len() + position, text), ty))
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

/// Resolves a table name to its definition (through the transaction).
pub trait Tables {
    /// The definition of `name`.
    fn table(&mut self, name: &str) -> Result<Table, SqlError>;
}

/// Plans a query.
pub fn plan_query(tables: &mut dyn Tables, query: &ast::Query) -> Result<QueryPlan, SqlError> {
    if query.with.is_some() {
        return Err(unsupported("WITH"));
    }
    if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() {
        return Err(unsupported("FETCH / FOR UPDATE clauses"));
    }
    let select = match query.body.as_ref() {
        ast::SetExpr::Select(select) => select,
        ast::SetExpr::Query(inner) if query.order_by.is_none() && query.limit_clause.is_none() => {
            return plan_query(tables, inner);
        }
        other => return Err(unsupported(format!("query form {other}"))),
    };
    let (source, scope) = plan_from(tables, &select.from)?;
    check_select_supported(select)?;
    let mut plan = source;
    if let Some(selection) = &select.selection {
        let (predicate, ty) = compile(&scope, selection)?;
        expect_boolean(ty, "WHERE")?;
        plan = choose_access(plan, &predicate);
        plan = Plan::Filter {
            input: Box::new(plan),
            predicate,
        };
    }
    let items = expand_projection(&scope, &select.projection)?;
    let order_items = order_by_items(query)?;
    let group_exprs = group_by_exprs(&select.group_by, &items)?;
    let grouped = !group_exprs.is_empty()
        || select.having.is_some()
        || items.iter().any(|(e, _)| has_aggregate(e))
        || order_items.iter().any(|o| has_aggregate(&o.expr));
    let mut grouping = Grouping::default();
    if grouped {
        for g in &group_exprs {
            let (x, t) = compile(&scope, g)?;
            grouping.groups.push((g.to_string(), x, t));
        }
    }
    // Outputs, then ORDER BY helpers, compiled over the input scope or over
    // the aggregate's output.
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    for (e, name) in &items {
        let (x, t) = compile_output(&scope, &mut grouping, grouped, e)?;
        exprs.push(x);
        columns.push(OutputColumn {
            name: name.clone(),
            data_type: t,
        });
    }
    let having = match &select.having {
        Some(h) => {
            let (x, t) = compile_output(&scope, &mut grouping, true, h)?;
            expect_boolean(t, "HAVING")?;
            Some(x)
        }
        None => None,
    };
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(unsupported("DISTINCT ON")),
    };
    let mut keys = Vec::new();
    for o in &order_items {
        let column = match output_reference(&o.expr, &items)? {
            Some(i) => i,
            None => {
                if distinct {
                    return Err(SqlError::InvalidDefinition(
                        "for SELECT DISTINCT, ORDER BY expressions must appear in the select list"
                            .into(),
                    ));
                }
                let (x, _) = compile_output(&scope, &mut grouping, grouped, &o.expr)?;
                exprs.push(x);
                exprs.len() - 1
            }
        };
        let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
        if let Some(ast::OrderBySort::Using(_)) = o.options.sort {
            return Err(unsupported("ORDER BY ... USING"));
        }
        keys.push(SortKey {
            column,
            descending,
            nulls_first: o.options.nulls_first.unwrap_or(descending),
        });
    }
    if grouped {
        plan = Plan::Aggregate {
            input: Box::new(plan),
            groups: grouping.groups.into_iter().map(|(_, x, _)| x).collect(),
            aggs: grouping.aggs.into_iter().map(|(_, a, _)| a).collect(),
        };
        if let Some(predicate) = having {
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate,
            };
        }
    }
    let width = columns.len();
    let extra = exprs.len() > width;
    plan = Plan::Project {
        input: Box::new(plan),
        exprs,
    };
    if distinct {
        plan = Plan::Distinct {
            input: Box::new(plan),
            width,
        };
    }
    if !keys.is_empty() {
        plan = Plan::Sort {
            input: Box::new(plan),
            keys,
        };
    }
    let (offset, limit) = limit_offset(query)?;
    if offset > 0 || limit.is_some() {
        plan = Plan::Limit {
            input: Box::new(plan),
            offset,
            limit,
        };
    }
    if extra {
        plan = Plan::Keep {
            input: Box::new(plan),
            width,
        };
    }
    Ok(QueryPlan { plan, columns })
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
        return Err(unsupported(format!("SELECT clause in {select}")));
    }
    Ok(())
}

fn compile_output(
    scope: &Scope,
    grouping: &mut Grouping,
    grouped: bool,
    e: &ast::Expr,
) -> Result<(Expr, Option<DataType>), SqlError> {
    if grouped {
        Compiler {
            scope,
            mode: Mode::Grouped(grouping),
        }
        .expr(e)
    } else {
        compile(scope, e)
    }
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
            other => return Err(unsupported(format!("select item {other}"))),
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
                return Err(unsupported("ORDER BY ... WITH FILL"));
            }
            Ok(items.clone())
        }
        Some(other) => Err(unsupported(format!("ORDER BY form {other}"))),
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
        return Err(unsupported("GROUP BY ALL"));
    };
    if !modifiers.is_empty() {
        return Err(unsupported("GROUP BY modifiers"));
    }
    exprs
        .iter()
        .map(|e| match e {
            ast::Expr::Value(_) => match output_reference(e, items)? {
                Some(i) => Ok(items[i].0.clone()),
                None => Err(unsupported(format!("GROUP BY {e}"))),
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
                return Err(unsupported("LIMIT BY"));
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
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => Err(unsupported("LIMIT offset, count")),
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
        return Err(unsupported(format!("FROM item {factor}")));
    };
    if !with_hints.is_empty() || !partitions.is_empty() {
        return Err(unsupported(format!("FROM item {factor}")));
    }
    let table = tables.table(&object_name(name)?)?;
    let alias = match alias {
        Some(a) if a.columns.is_empty() => ident(&a.name),
        Some(a) => return Err(unsupported(format!("column aliases in {a}"))),
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
            return Err(unsupported(
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
            return Err(unsupported(
                "JOIN ... USING / NATURAL JOIN (write the ON condition)",
            ));
        }
        ast::JoinConstraint::None => return Err(unsupported("JOIN without ON")),
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
