//! Compiled scalar expressions and their evaluation.
//!
//! Columns are resolved to positions when a statement is planned, so
//! evaluating an expression over a row is a walk of this tree with no name
//! lookups. NULL follows SQL's three-valued logic.

use crate::error::SqlError;
use crate::types::{DataType, Value, compare};
use std::cmp::Ordering;
use std::fmt;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `||`
    Concat,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinOp {
    /// The operator as SQL writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Concat => "||",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }

    /// Whether the operator compares its operands.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }

    /// The comparison with its operands swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> BinOp {
        match self {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            other => other,
        }
    }
}

/// A built-in scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `lower(text)`
    Lower,
    /// `upper(text)`
    Upper,
    /// `length(text)` in characters, or bytes of BYTEA.
    Length,
    /// `abs(number)`
    Abs,
    /// `coalesce(a, b, ...)`: the first non-NULL argument.
    Coalesce,
}

impl Func {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Length => "length",
            Func::Abs => "abs",
            Func::Coalesce => "coalesce",
        }
    }
}

/// A compiled expression over a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// The row's value at a position; the name is kept for EXPLAIN.
    Column(usize, String),
    /// `NOT e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `l op r`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `e IS [NOT] NULL`
    IsNull(Box<Expr>, bool),
    /// `e [NOT] IN (list)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] BETWEEN low AND high`
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `e [NOT] LIKE pattern` (`ILIKE` when the last flag is set).
    Like(Box<Expr>, Box<Expr>, bool, bool),
    /// `CAST(e AS type)`
    Cast(Box<Expr>, DataType),
    /// `CASE WHEN c THEN r ... ELSE e END`
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// A built-in function call.
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression over `row`.
    pub fn eval(&self, row: &[Value]) -> Result<Value, SqlError> {
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Column(i, name) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| SqlError::Store(format!("column {name} missing from row")))?,
            Expr::Not(e) => match e.eval(row)? {
                Value::Null => Value::Null,
                Value::Bool(b) => Value::Bool(!b),
                other => return Err(not_boolean(&other)),
            },
            Expr::Neg(e) => match e.eval(row)? {
                Value::Null => Value::Null,
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(overflow)?),
                Value::Double(d) => Value::Double(-d),
                other => return Err(mismatch(format!("cannot negate {}", other.literal()))),
            },
            Expr::Binary(BinOp::And, l, r) => and(truth(l.eval(row)?)?, || truth(r.eval(row)?))?,
            Expr::Binary(BinOp::Or, l, r) => or(truth(l.eval(row)?)?, || truth(r.eval(row)?))?,
            Expr::Binary(op, l, r) => binary(*op, l.eval(row)?, r.eval(row)?)?,
            Expr::IsNull(e, negated) => Value::Bool(e.eval(row)?.is_null() != *negated),
            Expr::InList(e, list, negated) => in_list(e.eval(row)?, list, row, *negated)?,
            Expr::Between(e, low, high, negated) => {
                let v = e.eval(row)?;
                let within = and(
                    truth(binary(BinOp::GtEq, v.clone(), low.eval(row)?)?)?,
                    || truth(binary(BinOp::LtEq, v, high.eval(row)?)?),
                )?;
                negate_if(within, *negated)
            }
            Expr::Like(e, pattern, negated, ci) => match (e.eval(row)?, pattern.eval(row)?) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (Value::Text(s), Value::Text(p)) => {
                    let hit = if *ci {
                        like(&s.to_lowercase(), &p.to_lowercase())
                    } else {
                        like(&s, &p)
                    };
                    Value::Bool(hit != *negated)
                }
                (a, b) => {
                    return Err(mismatch(format!(
                        "LIKE needs text, got {} and {}",
                        a.literal(),
                        b.literal()
                    )));
                }
            },
            Expr::Cast(e, ty) => cast(e.eval(row)?, *ty)?,
            Expr::Case(arms, otherwise) => {
                for (condition, result) in arms {
                    if truth(condition.eval(row)?)? == Some(true) {
                        return result.eval(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row)?,
                    None => Value::Null,
                }
            }
            Expr::Call(f, args) => call(*f, args, row)?,
        })
    }

    /// Whether the expression reads no column (its value is known at plan time).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(e, Expr::Column(..)) {
                constant = false;
            }
        });
        constant
    }

    /// Positions of the columns the expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(i, _) = e {
                out.push(*i);
            }
        });
        out
    }

    /// Calls `f` on this expression and every expression inside it.
    fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Literal(_) | Expr::Column(..) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::Cast(e, _) => e.visit(f),
            Expr::Binary(_, l, r) | Expr::Like(l, r, _, _) => {
                l.visit(f);
                r.visit(f);
            }
            Expr::InList(e, list, _) => {
                e.visit(f);
                list.iter().for_each(|x| x.visit(f));
            }
            Expr::Between(a, b, c, _) => [a, b, c].iter().for_each(|x| x.visit(f)),
            Expr::Case(arms, otherwise) => {
                for (c, r) in arms {
                    c.visit(f);
                    r.visit(f);
                }
                if let Some(e) = otherwise {
                    e.visit(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|x| x.visit(f)),
        }
    }

    /// The same expression with every column position moved by `by`
    /// (for a predicate over the right side of a join).
    pub fn shifted(&self, by: isize) -> Expr {
        let mut e = self.clone();
        e.shift(by);
        e
    }

    fn shift(&mut self, by: isize) {
        match self {
            Expr::Literal(_) => {}
            Expr::Column(i, _) => *i = (*i as isize + by) as usize,
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::Cast(e, _) => e.shift(by),
            Expr::Binary(_, l, r) | Expr::Like(l, r, _, _) => {
                l.shift(by);
                r.shift(by);
            }
            Expr::InList(e, list, _) => {
                e.shift(by);
                list.iter_mut().for_each(|x| x.shift(by));
            }
            Expr::Between(a, b, c, _) => {
                a.shift(by);
                b.shift(by);
                c.shift(by);
            }
            Expr::Case(arms, otherwise) => {
                for (c, r) in arms {
                    c.shift(by);
                    r.shift(by);
                }
                if let Some(e) = otherwise {
                    e.shift(by);
                }
            }
            Expr::Call(_, args) => args.iter_mut().for_each(|x| x.shift(by)),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(v) => f.write_str(&v.literal()),
            Expr::Column(_, name) => f.write_str(name),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::Neg(e) => write!(f, "(-{e})"),
            Expr::Binary(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            Expr::IsNull(e, negated) => {
                write!(f, "({e} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            Expr::InList(e, list, negated) => {
                let items: Vec<String> = list.iter().map(ToString::to_string).collect();
                let not = if *negated { "NOT " } else { "" };
                write!(f, "({e} {not}IN ({}))", items.join(", "))
            }
            Expr::Between(e, low, high, negated) => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "({e} {not}BETWEEN {low} AND {high})")
            }
            Expr::Like(e, p, negated, ci) => {
                let not = if *negated { "NOT " } else { "" };
                let op = if *ci { "ILIKE" } else { "LIKE" };
                write!(f, "({e} {not}{op} {p})")
            }
            Expr::Cast(e, ty) => write!(f, "CAST({e} AS {ty})"),
            Expr::Case(arms, otherwise) => {
                f.write_str("CASE")?;
                for (c, r) in arms {
                    write!(f, " WHEN {c} THEN {r}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Call(func, args) => {
                let items: Vec<String> = args.iter().map(ToString::to_string).collect();
                write!(f, "{}({})", func.name(), items.join(", "))
            }
        }
    }
}

fn mismatch(message: String) -> SqlError {
    SqlError::TypeMismatch { message }
}

fn overflow() -> SqlError {
    SqlError::OutOfRange {
        message: "integer overflow".into(),
    }
}

fn not_boolean(v: &Value) -> SqlError {
    mismatch(format!("argument must be boolean, not {}", v.literal()))
}

/// A value as a truth value: NULL is unknown.
pub fn truth(v: Value) -> Result<Option<bool>, SqlError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        other => Err(not_boolean(&other)),
    }
}

fn from_truth(t: Option<bool>) -> Value {
    t.map_or(Value::Null, Value::Bool)
}

fn negate_if(v: Value, negated: bool) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(b != negated),
        other => other,
    }
}

fn and(
    left: Option<bool>,
    right: impl FnOnce() -> Result<Option<bool>, SqlError>,
) -> Result<Value, SqlError> {
    if left == Some(false) {
        return Ok(Value::Bool(false));
    }
    Ok(from_truth(match (left, right()?) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }))
}

fn or(
    left: Option<bool>,
    right: impl FnOnce() -> Result<Option<bool>, SqlError>,
) -> Result<Value, SqlError> {
    if left == Some(true) {
        return Ok(Value::Bool(true));
    }
    Ok(from_truth(match (left, right()?) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }))
}

/// Applies a non-logical binary operator.
pub fn binary(op: BinOp, l: Value, r: Value) -> Result<Value, SqlError> {
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    if op.is_comparison() {
        let ordering = compare(&l, &r).ok_or_else(|| {
            mismatch(format!(
                "cannot compare {} with {}",
                l.literal(),
                r.literal()
            ))
        })?;
        return Ok(Value::Bool(match op {
            BinOp::Eq => ordering == Ordering::Equal,
            BinOp::NotEq => ordering != Ordering::Equal,
            BinOp::Lt => ordering == Ordering::Less,
            BinOp::LtEq => ordering != Ordering::Greater,
            BinOp::Gt => ordering == Ordering::Greater,
            _ => ordering != Ordering::Less,
        }));
    }
    match (op, l, r) {
        (BinOp::Concat, a, b) => Ok(Value::Text(format!("{a}{b}"))),
        (op, Value::Int(a), Value::Int(b)) => int_arith(op, a, b),
        (op, Value::Int(a), Value::Double(b)) => double_arith(op, a as f64, b),
        (op, Value::Double(a), Value::Int(b)) => double_arith(op, a, b as f64),
        (op, Value::Double(a), Value::Double(b)) => double_arith(op, a, b),
        (op, a, b) => Err(mismatch(format!(
            "operator {} does not apply to {} and {}",
            op.symbol(),
            a.literal(),
            b.literal()
        ))),
    }
}

fn int_arith(op: BinOp, a: i64, b: i64) -> Result<Value, SqlError> {
    let result = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div | BinOp::Mod if b == 0 => return Err(SqlError::DivisionByZero),
        BinOp::Div => a.checked_div(b),
        BinOp::Mod => a.checked_rem(b),
        _ => None,
    };
    result.map(Value::Int).ok_or_else(overflow)
}

fn double_arith(op: BinOp, a: f64, b: f64) -> Result<Value, SqlError> {
    Ok(Value::Double(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div | BinOp::Mod if b == 0.0 => return Err(SqlError::DivisionByZero),
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        _ => return Err(mismatch(format!("operator {} on numbers", op.symbol()))),
    }))
}

fn in_list(v: Value, list: &[Expr], row: &[Value], negated: bool) -> Result<Value, SqlError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for item in list {
        match binary(BinOp::Eq, v.clone(), item.eval(row)?)? {
            Value::Bool(true) => return Ok(Value::Bool(!negated)),
            Value::Null => saw_null = true,
            _ => {}
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(negated)
    })
}

/// SQL LIKE: `%` matches any run of characters, `_` exactly one, `\`
/// escapes the next character.
pub fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matching with one backtrack point for the last `%`: linear
    // in practice, never exponential.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some('\\') if p.get(pi + 1) == Some(&t[ti]) => {
                pi += 2;
                ti += 1;
            }
            Some('_') => {
                pi += 1;
                ti += 1;
            }
            Some(&c) if c != '\\' && c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

/// `CAST(v AS ty)`: like assignment, plus conversions to text.
pub fn cast(v: Value, ty: DataType) -> Result<Value, SqlError> {
    match (v, ty) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::Text(s), DataType::Text) => Ok(Value::Text(s)),
        (other, DataType::Text) => Ok(Value::Text(other.to_string())),
        (Value::Bool(b), DataType::Int | DataType::BigInt) => Ok(Value::Int(i64::from(b))),
        (Value::Int(i), DataType::Boolean) => Ok(Value::Bool(i != 0)),
        (Value::Double(d), DataType::BigInt | DataType::Int) if d.fract() != 0.0 => {
            Value::Double(d.round()).coerce_to(ty)
        }
        (other, ty) => other.coerce_to(ty),
    }
}

fn call(f: Func, args: &[Expr], row: &[Value]) -> Result<Value, SqlError> {
    if f == Func::Coalesce {
        for arg in args {
            let v = arg.eval(row)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(Value::Null);
    }
    let [arg] = args else {
        return Err(mismatch(format!("{} takes one argument", f.name())));
    };
    Ok(match (f, arg.eval(row)?) {
        (_, Value::Null) => Value::Null,
        (Func::Lower, Value::Text(s)) => Value::Text(s.to_lowercase()),
        (Func::Upper, Value::Text(s)) => Value::Text(s.to_uppercase()),
        (Func::Length, Value::Text(s)) => Value::Int(s.chars().count() as i64),
        (Func::Length, Value::Bytes(b)) => Value::Int(b.len() as i64),
        (Func::Abs, Value::Int(i)) => Value::Int(i.checked_abs().ok_or_else(overflow)?),
        (Func::Abs, Value::Double(d)) => Value::Double(d.abs()),
        (f, v) => {
            return Err(mismatch(format!(
                "function {}({}) does not exist",
                f.name(),
                v.data_type().map_or("unknown", DataType::name)
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("", "%"));
        assert!(like("abcabc", "%bc"));
        assert!(!like("Hello", "hello"));
    }

    #[test]
    fn three_valued_logic() {
        let null = || Box::new(Expr::Literal(Value::Null));
        let t = || Box::new(Expr::Literal(Value::Bool(true)));
        let f = || Box::new(Expr::Literal(Value::Bool(false)));
        let eval = |e: Expr| e.eval(&[]).expect("evaluates");
        assert_eq!(
            eval(Expr::Binary(BinOp::And, null(), f())),
            Value::Bool(false)
        );
        assert_eq!(eval(Expr::Binary(BinOp::And, null(), t())), Value::Null);
        assert_eq!(
            eval(Expr::Binary(BinOp::Or, null(), t())),
            Value::Bool(true)
        );
        assert_eq!(eval(Expr::Not(null())), Value::Null);
        let in_with_null = Expr::InList(
            Box::new(Expr::Literal(Value::Int(1))),
            vec![Expr::Literal(Value::Int(2)), Expr::Literal(Value::Null)],
            false,
        );
        assert_eq!(eval(in_with_null), Value::Null);
    }

    #[test]
    fn arithmetic_errors_are_typed() {
        assert_eq!(
            binary(BinOp::Div, Value::Int(1), Value::Int(0)),
            Err(SqlError::DivisionByZero)
        );
        assert!(matches!(
            binary(BinOp::Add, Value::Int(i64::MAX), Value::Int(1)),
            Err(SqlError::OutOfRange { .. })
        ));
        assert!(matches!(
            binary(BinOp::Lt, Value::Int(1), Value::Text("a".into())),
            Err(SqlError::TypeMismatch { .. })
        ));
        assert_eq!(
            binary(BinOp::Div, Value::Int(7), Value::Int(2)),
            Ok(Value::Int(3))
        );
    }
}
