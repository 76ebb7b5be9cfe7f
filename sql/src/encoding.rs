//! How tables live in the key-value store.
//!
//! Every SQL object sits in the one stream the [`Store`](crate::Store) gives,
//! under a one-byte prefix:
//!
//! - `0x01 'T' name` holds a table's definition, `0x01 'N'` the next table id;
//! - `0x02 table-id pk` holds a row, keyed by its primary key;
//! - `0x03 table-id index-id columns pk` is an index entry (empty value).
//!
//! Key values use an order-preserving encoding, so a range of primary keys
//! (or of index values) is a range of store keys and becomes one bounded
//! scan. Table ids are never reused: a table dropped and created again
//! starts from an empty key range.

use crate::error::SqlError;
use crate::types::Value;
use ordo_txn::codec::{Reader, Writer};

/// Prefix of catalog keys.
pub const CATALOG: u8 = 0x01;
/// Prefix of row keys.
pub const ROWS: u8 = 0x02;
/// Prefix of index keys.
pub const INDEX: u8 = 0x03;

/// Largest encoded row. Bounded by the transaction value limit anyway; a
/// named limit gives a clear message before the store refuses it.
pub const MAX_ROW_BYTES: usize = ordo_txn::limits::MAX_VALUE_BYTES;

/// The key of table `name`'s definition.
pub fn table_key(name: &str) -> Vec<u8> {
    let mut key = vec![CATALOG, b'T'];
    key.extend_from_slice(name.as_bytes());
    key
}

/// The key range holding every table definition.
pub fn tables_range() -> (Vec<u8>, Vec<u8>) {
    (vec![CATALOG, b'T'], vec![CATALOG, b'T' + 1])
}

/// The key of the next-table-id counter.
pub fn next_table_id_key() -> Vec<u8> {
    vec![CATALOG, b'N']
}

/// Start of table `table`'s rows.
pub fn rows_prefix(table: u32) -> Vec<u8> {
    let mut key = vec![ROWS];
    key.extend_from_slice(&table.to_be_bytes());
    key
}

/// The key of the row with primary key `pk` (values in key-column order).
pub fn row_key(table: u32, pk: &[Value]) -> Vec<u8> {
    let mut key = rows_prefix(table);
    pk.iter().for_each(|v| encode_key_value(&mut key, v));
    key
}

/// Start of index `index` of table `table`.
pub fn index_prefix(table: u32, index: u32) -> Vec<u8> {
    let mut key = vec![INDEX];
    key.extend_from_slice(&table.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The key of one index entry: the indexed values, then the primary key
/// (which makes entries of equal indexed values distinct).
pub fn index_key(table: u32, index: u32, values: &[Value], pk: &[Value]) -> Vec<u8> {
    let mut key = index_prefix(table, index);
    values
        .iter()
        .chain(pk)
        .for_each(|v| encode_key_value(&mut key, v));
    key
}

pub use ordo_kv::keys::prefix_end;

/// Appends `value` in an order-preserving form: NULL sorts first, then
/// values in their type's order. All values at one position of a key have
/// the same type (the column's), so no type tag is needed.
pub fn encode_key_value(out: &mut Vec<u8>, value: &Value) {
    if value.is_null() {
        out.push(0x00);
        return;
    }
    out.push(0x01);
    match value {
        Value::Null => {}
        Value::Int(i) | Value::Timestamp(i) => {
            out.extend_from_slice(&(*i ^ i64::MIN).to_be_bytes())
        }
        Value::Double(d) => out.extend_from_slice(&ordered_double(*d).to_be_bytes()),
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Text(s) => escape(out, s.as_bytes()),
        Value::Bytes(b) => escape(out, b),
    }
}

/// Maps a double to a u64 whose unsigned order is the double's SQL order
/// (-0.0 equal to 0.0, NaN above everything).
fn ordered_double(d: f64) -> u64 {
    let d = if d == 0.0 {
        0.0
    } else if d.is_nan() {
        f64::NAN
    } else {
        d
    };
    let bits = d.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Byte strings end unambiguously: `0x00` becomes `0x00 0xFF`, the end is
/// `0x00 0x01`, so a string sorts before every longer string it prefixes.
fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

const TAG_NULL: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_DOUBLE: u8 = 2;
const TAG_BOOL: u8 = 3;
const TAG_TEXT: u8 = 4;
const TAG_BYTES: u8 = 5;
const TAG_TIMESTAMP: u8 = 6;

/// Appends a self-describing value (rows, catalog defaults).
pub fn write_value(w: &mut Writer, value: &Value) {
    match value {
        Value::Null => w.u8(TAG_NULL),
        Value::Int(i) => w.u8(TAG_INT).u64(*i as u64),
        Value::Double(d) => w.u8(TAG_DOUBLE).u64(d.to_bits()),
        Value::Bool(b) => w.u8(TAG_BOOL).u8(u8::from(*b)),
        Value::Text(s) => w.u8(TAG_TEXT).bytes(s.as_bytes()),
        Value::Bytes(b) => w.u8(TAG_BYTES).bytes(b),
        Value::Timestamp(t) => w.u8(TAG_TIMESTAMP).u64(*t as u64),
    };
}

/// Reads a value written by [`write_value`].
pub fn read_value(r: &mut Reader<'_>) -> Result<Value, SqlError> {
    let corrupt = |e: ordo_txn::codec::DecodeError| SqlError::Store(format!("corrupt value: {e}"));
    Ok(match r.u8("value tag").map_err(corrupt)? {
        TAG_NULL => Value::Null,
        TAG_INT => Value::Int(r.u64("int").map_err(corrupt)? as i64),
        TAG_DOUBLE => Value::Double(f64::from_bits(r.u64("double").map_err(corrupt)?)),
        TAG_BOOL => Value::Bool(r.u8("bool").map_err(corrupt)? != 0),
        TAG_TEXT => {
            let bytes = r.bytes("text", MAX_ROW_BYTES).map_err(corrupt)?;
            Value::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| SqlError::Store("corrupt value: text is not UTF-8".into()))?,
            )
        }
        TAG_BYTES => Value::Bytes(r.bytes("bytes", MAX_ROW_BYTES).map_err(corrupt)?.to_vec()),
        TAG_TIMESTAMP => Value::Timestamp(r.u64("timestamp").map_err(corrupt)? as i64),
        other => {
            return Err(SqlError::Store(format!(
                "corrupt value: unknown tag {other}"
            )));
        }
    })
}

/// Encodes a row as `(column id, value)` pairs. Ids rather than positions
/// let ALTER TABLE ADD COLUMN leave existing rows as they are: a column a
/// row lacks reads as the column's default.
pub fn encode_row(columns: &[(u32, &Value)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(columns.len() as u64);
    for (id, value) in columns {
        w.u64(u64::from(*id));
        write_value(&mut w, value);
    }
    w.finish()
}

/// Decodes a row into `(column id, value)` pairs.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<(u32, Value)>, SqlError> {
    let corrupt = |e: ordo_txn::codec::DecodeError| SqlError::Store(format!("corrupt row: {e}"));
    let mut r = Reader::new(bytes);
    let n = r.u64("column count").map_err(corrupt)?;
    let mut out = Vec::with_capacity(n.min(1024) as usize);
    for _ in 0..n {
        let id = u32::try_from(r.u64("column id").map_err(corrupt)?)
            .map_err(|_| SqlError::Store("corrupt row: column id".into()))?;
        out.push((id, read_value(&mut r)?));
    }
    r.finish().map_err(corrupt)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::sort_cmp;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Double),
            any::<bool>().prop_map(Value::Bool),
            ".{0,6}".prop_map(Value::Text),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..6)
                .prop_map(Value::Bytes),
        ]
    }

    /// Two values of the same kind (what one key position holds).
    fn same_kind_pair() -> impl Strategy<Value = (Value, Value)> {
        prop_oneof![
            (any::<i64>(), any::<i64>()).prop_map(|(a, b)| (Value::Int(a), Value::Int(b))),
            (any::<f64>(), any::<f64>()).prop_map(|(a, b)| (Value::Double(a), Value::Double(b))),
            (".{0,4}", ".{0,4}").prop_map(|(a, b)| (Value::Text(a), Value::Text(b))),
            (
                proptest::collection::vec(0u8..3, 0..4),
                proptest::collection::vec(0u8..3, 0..4)
            )
                .prop_map(|(a, b)| (Value::Bytes(a), Value::Bytes(b))),
            any::<i64>().prop_map(|a| (Value::Null, Value::Int(a))),
        ]
    }

    proptest! {
        #[test]
        fn key_order_is_value_order((a, b) in same_kind_pair(), (c, d) in same_kind_pair()) {
            let mut ka = Vec::new();
            encode_key_value(&mut ka, &a);
            encode_key_value(&mut ka, &c);
            let mut kb = Vec::new();
            encode_key_value(&mut kb, &b);
            encode_key_value(&mut kb, &d);
            // Key order is NULL first; sort_cmp puts NULL last: flip NULLs.
            let order = |x: &Value, y: &Value| match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                _ => sort_cmp(x, y),
            };
            let expected = order(&a, &b).then(order(&c, &d));
            prop_assert_eq!(ka.cmp(&kb), expected);
        }

        #[test]
        fn rows_round_trip(values in proptest::collection::vec(value(), 0..8)) {
            let pairs: Vec<(u32, &Value)> = values.iter().enumerate().map(|(i, v)| (i as u32 * 3, v)).collect();
            let decoded = decode_row(&encode_row(&pairs)).expect("decodes");
            prop_assert_eq!(decoded.len(), values.len());
            for ((id, got), (want_id, want)) in decoded.iter().zip(&pairs) {
                prop_assert_eq!(id, want_id);
                prop_assert!(got == *want || matches!((got, want), (Value::Double(x), Value::Double(y)) if x.is_nan() && y.is_nan()));
            }
        }

        #[test]
        fn truncated_rows_are_errors(values in proptest::collection::vec(value(), 1..5), cut in 1usize..40) {
            let pairs: Vec<(u32, &Value)> = values.iter().enumerate().map(|(i, v)| (i as u32, v)).collect();
            let bytes = encode_row(&pairs);
            let cut = cut.min(bytes.len());
            prop_assert!(decode_row(&bytes[..bytes.len() - cut]).is_err());
        }
    }

    #[test]
    fn prefix_end_skips_ff_bytes() {
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
