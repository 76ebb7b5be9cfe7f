//! SQL types and values: what a column holds, how values compare, convert
//! and print.
//!
//! The semantics follow PostgreSQL where the two can differ: integer
//! arithmetic that overflows is an error (not a silent float), comparing a
//! number with text is a type error (not an ordering by storage class), and
//! text compares byte-wise (the C collation).

use crate::error::SqlError;
use std::cmp::Ordering;
use std::fmt;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// 64-bit signed integer.
    BigInt,
    /// 32-bit signed integer (stored as 64 bits, range checked on write).
    Int,
    /// IEEE 754 double precision.
    Double,
    /// true / false.
    Boolean,
    /// UTF-8 text of any length.
    Text,
    /// Raw bytes.
    Bytea,
    /// Microseconds since 1970-01-01 00:00:00, without time zone.
    Timestamp,
}

impl DataType {
    /// The type's name as SQL spells it.
    pub fn name(self) -> &'static str {
        match self {
            DataType::BigInt => "BIGINT",
            DataType::Int => "INT",
            DataType::Double => "DOUBLE PRECISION",
            DataType::Boolean => "BOOLEAN",
            DataType::Text => "TEXT",
            DataType::Bytea => "BYTEA",
            DataType::Timestamp => "TIMESTAMP",
        }
    }

    /// Whether values of this type are integers or floats.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::BigInt | DataType::Int | DataType::Double)
    }

    /// The stable one-byte tag stored in the catalog.
    pub(crate) fn tag(self) -> u8 {
        match self {
            DataType::BigInt => 1,
            DataType::Int => 2,
            DataType::Double => 3,
            DataType::Boolean => 4,
            DataType::Text => 5,
            DataType::Bytea => 6,
            DataType::Timestamp => 7,
        }
    }

    /// The type of a catalog tag.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => DataType::BigInt,
            2 => DataType::Int,
            3 => DataType::Double,
            4 => DataType::Boolean,
            5 => DataType::Text,
            6 => DataType::Bytea,
            7 => DataType::Timestamp,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BIGINT and INT.
    Int(i64),
    /// DOUBLE PRECISION.
    Double(f64),
    /// BOOLEAN.
    Bool(bool),
    /// TEXT.
    Text(String),
    /// BYTEA.
    Bytes(Vec<u8>),
    /// TIMESTAMP, in microseconds since the epoch.
    Timestamp(i64),
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type a non-NULL value has on its own (INT literals are BIGINT).
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Int(_) => DataType::BigInt,
            Value::Double(_) => DataType::Double,
            Value::Bool(_) => DataType::Boolean,
            Value::Text(_) => DataType::Text,
            Value::Bytes(_) => DataType::Bytea,
            Value::Timestamp(_) => DataType::Timestamp,
        })
    }

    /// Converts the value for storage in a column of type `to`, as an
    /// assignment (INSERT, UPDATE, DEFAULT) does: text literals are parsed,
    /// integers widen to doubles, INT is range checked.
    pub fn coerce_to(self, to: DataType) -> Result<Value, SqlError> {
        let mismatch = |v: &Value| SqlError::TypeMismatch {
            message: format!(
                "cannot store {} value {} in a column of type {}",
                v.data_type().map_or("NULL", DataType::name),
                v.literal(),
                to
            ),
        };
        Ok(match (self, to) {
            (Value::Null, _) => Value::Null,
            (Value::Int(i), DataType::BigInt) => Value::Int(i),
            (Value::Int(i), DataType::Int) => {
                if i32::try_from(i).is_err() {
                    return Err(SqlError::OutOfRange {
                        message: format!("{i} is out of range for type INT"),
                    });
                }
                Value::Int(i)
            }
            (Value::Int(i), DataType::Double) => Value::Double(i as f64),
            (Value::Double(d), DataType::Double) => Value::Double(d),
            (Value::Double(d), DataType::BigInt | DataType::Int) => {
                let rounded = d.round();
                if !rounded.is_finite() || rounded.abs() >= 9.223_372_036_854_776e18 {
                    return Err(SqlError::OutOfRange {
                        message: format!("{d} is out of range for type {to}"),
                    });
                }
                Value::Int(rounded as i64).coerce_to(to)?
            }
            (Value::Bool(b), DataType::Boolean) => Value::Bool(b),
            (Value::Text(s), DataType::Text) => Value::Text(s),
            (Value::Bytes(b), DataType::Bytea) => Value::Bytes(b),
            (Value::Timestamp(t), DataType::Timestamp) => Value::Timestamp(t),
            (Value::Text(s), _) => parse_text(&s, to)?,
            (other, _) => return Err(mismatch(&other)),
        })
    }

    /// The value written as a SQL literal (for messages and EXPLAIN).
    pub fn literal(&self) -> String {
        match self {
            Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Value::Bytes(_) | Value::Timestamp(_) => format!("'{self}'"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Value {
    /// The text form PostgreSQL prints (NULL prints as "NULL").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{}", format_double(*d)),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
        }
    }
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{d}")
    }
}

/// Parses the text form of a `to` value (as a quoted literal is read).
pub fn parse_text(text: &str, to: DataType) -> Result<Value, SqlError> {
    let bad = || SqlError::TypeMismatch {
        message: format!("invalid input syntax for type {to}: '{text}'"),
    };
    let trimmed = text.trim();
    Ok(match to {
        DataType::BigInt | DataType::Int => {
            Value::Int(trimmed.parse().map_err(|_| bad())?).coerce_to(to)?
        }
        DataType::Double => Value::Double(match trimmed.to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            "infinity" | "inf" => f64::INFINITY,
            "-infinity" | "-inf" => f64::NEG_INFINITY,
            other => other.parse().map_err(|_| bad())?,
        }),
        DataType::Boolean => Value::Bool(match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => true,
            "f" | "false" | "no" | "off" | "0" => false,
            _ => return Err(bad()),
        }),
        DataType::Text => Value::Text(text.to_string()),
        DataType::Bytea => Value::Bytes(parse_bytea(text).ok_or_else(bad)?),
        DataType::Timestamp => Value::Timestamp(parse_timestamp(trimmed).ok_or_else(bad)?),
    })
}

/// `\x0a1b...` (PostgreSQL's hex format) or plain text taken as its bytes.
fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let Some(hex) = text.strip_prefix("\\x") else {
        return Some(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (a `T` may separate date and time).
fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * SECONDS_PER_DAY * MICROS_PER_SECOND;
    if let Some(time) = time {
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut fields = hms.splitn(3, ':');
        let hour: i64 = fields.next()?.parse().ok()?;
        let minute: i64 = fields.next()?.parse().ok()?;
        let second: i64 = fields.next().unwrap_or("0").parse().ok()?;
        if hour > 23 || minute > 59 || second > 59 || fraction.len() > 6 {
            return None;
        }
        let fraction_micros: i64 = if fraction.is_empty() {
            0
        } else if fraction.bytes().all(|b| b.is_ascii_digit()) {
            format!("{fraction:0<6}").parse().ok()?
        } else {
            return None;
        };
        micros += ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fraction_micros;
    }
    Some(micros)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, trailing zeros of the fraction dropped.
pub fn format_timestamp(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// Orders two non-NULL values of comparable types; `None` when the types
/// cannot be compared. Doubles order NaN above everything, as PostgreSQL does.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(x), Value::Double(y)) => total_cmp_double(*x as f64, *y),
        (Value::Double(x), Value::Int(y)) => total_cmp_double(*x, *y as f64),
        (Value::Double(x), Value::Double(y)) => total_cmp_double(*x, *y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        _ => return None,
    })
}

fn total_cmp_double(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // -0.0 and 0.0 are equal in SQL.
        (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// Orders values for ORDER BY, DISTINCT and GROUP BY: NULL sorts after
/// everything (PostgreSQL's default for ascending order); values of
/// different, incomparable types order by type so sorting never fails.
pub fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => compare(a, b).unwrap_or_else(|| rank(a).cmp(&rank(b))),
    }
}

fn rank(v: &Value) -> u8 {
    v.data_type().map_or(0, DataType::tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_text() {
        for text in [
            "1970-01-01 00:00:00",
            "2024-02-29 23:59:59.5",
            "1969-12-31 23:59:59.999999",
            "0001-01-01 00:00:00",
        ] {
            let Value::Timestamp(t) = parse_text(text, DataType::Timestamp).expect(text) else {
                panic!("not a timestamp")
            };
            assert_eq!(format_timestamp(t), text);
        }
        assert!(parse_text("2023-02-29", DataType::Timestamp).is_err());
        assert!(parse_text("2024-01-01 24:00:00", DataType::Timestamp).is_err());
    }

    #[test]
    fn assignment_checks_ranges_and_syntax() {
        assert!(Value::Int(1 << 40).coerce_to(DataType::Int).is_err());
        assert_eq!(
            Value::Text("42".into()).coerce_to(DataType::BigInt),
            Ok(Value::Int(42))
        );
        assert!(
            Value::Text("4x".into())
                .coerce_to(DataType::BigInt)
                .is_err()
        );
        assert!(Value::Bool(true).coerce_to(DataType::Text).is_err());
        assert_eq!(
            Value::Text("\\x00ff".into()).coerce_to(DataType::Bytea),
            Ok(Value::Bytes(vec![0, 255]))
        );
    }

    #[test]
    fn nulls_sort_last_and_numbers_compare_across_types() {
        assert_eq!(sort_cmp(&Value::Null, &Value::Int(1)), Ordering::Greater);
        assert_eq!(
            compare(&Value::Int(2), &Value::Double(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(compare(&Value::Int(2), &Value::Text("2".into())), None);
    }
}
