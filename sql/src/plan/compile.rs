//! The expression compiler: sqlparser expressions to [`Expr`] trees over a
//! [`Scope`], with their types checked, and the names and types of the SQL
//! surface (identifiers, object names, type names).

use crate::error::SqlError;
use crate::expr::{BinOp, Expr, Func};
use crate::plan::tree::{Agg, AggFunc, Scope};
use crate::types::{DataType, Value, parse_text};
use sqlparser::ast;

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
    pub(crate) groups: Vec<(String, Expr, Option<DataType>)>,
    /// Aggregate calls as text and compiled.
    pub(crate) aggs: Vec<(String, Agg, Option<DataType>)>,
}

/// Compiles an expression over `scope`.
pub fn compile(scope: &Scope, e: &ast::Expr) -> Result<(Expr, Option<DataType>), SqlError> {
    Compiler {
        scope,
        mode: Mode::Plain,
    }
    .expr(e)
}

/// Compiles an output expression of a query: over `scope`, or, when the
/// query is `grouped`, over the aggregate's output (group expressions and
/// aggregate calls, collected into `grouping`).
pub fn compile_output(
    scope: &Scope,
    grouping: &mut Grouping,
    grouped: bool,
    e: &ast::Expr,
) -> Result<(Expr, Option<DataType>), SqlError> {
    if !grouped {
        return compile(scope, e);
    }
    Compiler {
        scope,
        mode: Mode::Grouped(grouping),
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
        _ => Err(SqlError::unsupported(format!("qualified name {name}"))),
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
        other => return Err(SqlError::unsupported(format!("type {other}"))),
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
        other => return Err(SqlError::unsupported(format!("literal {other}"))),
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
                _ => Err(SqlError::unsupported(format!("name {e}"))),
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
                let negated = matches!(e, E::IsNotNull(_));
                Ok((Expr::IsNull(Box::new(x), negated), Some(DataType::Boolean)))
            }
            E::InList {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, low, high, *negated),
            E::Like {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            } => self.like(expr, pattern, *negated, false),
            E::ILike {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            } => self.like(expr, pattern, *negated, true),
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
            other => Err(SqlError::unsupported(format!("expression {other}"))),
        }
    }

    /// `x [NOT] IN (items)`: every item comparable with `x`.
    fn in_list(
        &mut self,
        expr: &ast::Expr,
        list: &[ast::Expr],
        negated: bool,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
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
            Expr::InList(Box::new(x), items, negated),
            Some(DataType::Boolean),
        ))
    }

    /// `x [NOT] BETWEEN low AND high`: both bounds comparable with `x`.
    fn between(
        &mut self,
        expr: &ast::Expr,
        low: &ast::Expr,
        high: &ast::Expr,
        negated: bool,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
        let (x, ty) = self.expr(expr)?;
        let (lo, lo_ty) = self.expr(low)?;
        let (hi, hi_ty) = self.expr(high)?;
        let lo = adapt_literal(lo, ty)?;
        let hi = adapt_literal(hi, ty)?;
        self.check_comparable(ty, operand_type(&lo, lo_ty), "BETWEEN")?;
        self.check_comparable(ty, operand_type(&hi, hi_ty), "BETWEEN")?;
        Ok((
            Expr::Between(Box::new(x), Box::new(lo), Box::new(hi), negated),
            Some(DataType::Boolean),
        ))
    }

    /// `x [NOT] LIKE pattern` (ILIKE when `case_insensitive`): text only.
    fn like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        case_insensitive: bool,
    ) -> Result<(Expr, Option<DataType>), SqlError> {
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
        let like = Expr::Like(Box::new(x), Box::new(p), negated, case_insensitive);
        Ok((like, Some(DataType::Boolean)))
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
            other => Err(SqlError::unsupported(format!("operator {other}"))),
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
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
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
            return Err(SqlError::unsupported(format!("function call {f}")));
        };
        if f.filter.is_some()
            || f.over.is_some()
            || !f.within_group.is_empty()
            || !list.clauses.is_empty()
        {
            return Err(SqlError::unsupported(format!("function call {f}")));
        }
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        if let Some(func) = agg_func(&name) {
            return self.aggregate(f, func, &list.args, distinct);
        }
        if distinct {
            return Err(SqlError::unsupported(format!("DISTINCT in {name}()")));
        }
        let func = match name.as_str() {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" => Func::Length,
            "abs" => Func::Abs,
            "coalesce" => Func::Coalesce,
            other => return Err(SqlError::unsupported(format!("function {other}()"))),
        };
        let mut args = Vec::with_capacity(list.args.len());
        let mut types = Vec::with_capacity(list.args.len());
        for arg in &list.args {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg else {
                return Err(SqlError::unsupported(format!("argument {arg}")));
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
            _ => return Err(SqlError::unsupported(format!("arguments of {f}"))),
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
