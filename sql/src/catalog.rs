//! Table definitions, stored in the key-value store and changed by
//! transactions like any row.
//!
//! A statement reads the definitions it uses through its transaction, so the
//! read lands in the read set: a statement that raced a concurrent ALTER or
//! DROP of its table fails with a serialization failure instead of writing
//! rows in an outdated shape.

use crate::encoding::{read_value, write_value};
use crate::error::SqlError;
use crate::types::{DataType, Value};
use ordo_txn::codec::{DecodeError, Reader, Writer};

/// Most columns in one table.
pub const MAX_COLUMNS: usize = 256;
/// Most indexes on one table.
pub const MAX_INDEXES: usize = 32;
/// Longest table, column or index name, in bytes (PostgreSQL's is 63).
pub const MAX_NAME_BYTES: usize = 63;

const FORMAT: u8 = 1;

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Stable id, used in stored rows (never reused within the table).
    pub id: u32,
    /// Name, lower-cased unless it was quoted.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Whether NULL is refused.
    pub not_null: bool,
    /// The value used when an INSERT leaves the column out (and for rows
    /// stored before the column was added).
    pub default: Value,
}

/// One secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// Id, unique within the table.
    pub id: u32,
    /// Name, unique among all indexes.
    pub name: String,
    /// Positions of the indexed columns in [`Table::columns`].
    pub columns: Vec<usize>,
    /// Whether two rows may not share non-NULL values of the columns.
    pub unique: bool,
}

/// One table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Id, the prefix of its rows and index entries (never reused).
    pub id: u32,
    /// Name.
    pub name: String,
    /// Columns, in declaration order.
    pub columns: Vec<Column>,
    /// Positions of the primary key columns, in key order.
    pub primary_key: Vec<usize>,
    /// Secondary indexes.
    pub indexes: Vec<Index>,
    /// The id the next added column gets.
    pub next_column_id: u32,
    /// The id the next index gets.
    pub next_index_id: u32,
}

impl Table {
    /// The position of column `name`.
    pub fn column(&self, name: &str) -> Result<usize, SqlError> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| SqlError::UnknownColumn(format!("{}.{name}", self.name)))
    }

    /// The primary key values of a full row.
    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.primary_key.iter().map(|&i| row[i].clone()).collect()
    }

    /// The name PostgreSQL gives the primary key constraint.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// Encodes the definition for the catalog.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(FORMAT)
            .u64(u64::from(self.id))
            .bytes(self.name.as_bytes())
            .u64(u64::from(self.next_column_id))
            .u64(u64::from(self.next_index_id))
            .u64(self.columns.len() as u64);
        for c in &self.columns {
            w.u64(u64::from(c.id))
                .bytes(c.name.as_bytes())
                .u8(c.data_type.tag())
                .u8(u8::from(c.not_null));
            write_value(&mut w, &c.default);
        }
        w.u64(self.primary_key.len() as u64);
        self.primary_key.iter().for_each(|&p| {
            w.u64(p as u64);
        });
        w.u64(self.indexes.len() as u64);
        for index in &self.indexes {
            w.u64(u64::from(index.id))
                .bytes(index.name.as_bytes())
                .u8(u8::from(index.unique))
                .u64(index.columns.len() as u64);
            index.columns.iter().for_each(|&p| {
                w.u64(p as u64);
            });
        }
        w.finish()
    }

    /// Decodes a definition written by [`Table::encode`], checking that every
    /// position it holds points at a column.
    pub fn decode(bytes: &[u8]) -> Result<Table, SqlError> {
        decode_table(bytes).map_err(|e| SqlError::Store(format!("corrupt table definition: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
enum CatalogDecodeError {
    #[error(transparent)]
    Codec(#[from] DecodeError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Value(#[from] SqlError),
}

fn decode_table(bytes: &[u8]) -> Result<Table, CatalogDecodeError> {
    let invalid = |m: &str| CatalogDecodeError::Invalid(m.to_string());
    let mut r = Reader::new(bytes);
    if r.u8("format")? != FORMAT {
        return Err(invalid("unknown format"));
    }
    let id = small(r.u64("table id")?)?;
    let name = text(r.bytes("table name", MAX_NAME_BYTES)?)?;
    let next_column_id = small(r.u64("next column id")?)?;
    let next_index_id = small(r.u64("next index id")?)?;
    let count = bounded(r.u64("column count")?, MAX_COLUMNS)?;
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        columns.push(Column {
            id: small(r.u64("column id")?)?,
            name: text(r.bytes("column name", MAX_NAME_BYTES)?)?,
            data_type: DataType::from_tag(r.u8("column type")?)
                .ok_or_else(|| invalid("unknown column type"))?,
            not_null: r.u8("not null")? != 0,
            default: read_value(&mut r)?,
        });
    }
    let position = |r: &mut Reader<'_>| -> Result<usize, CatalogDecodeError> {
        let p = bounded(r.u64("column position")?, count.saturating_sub(1))?;
        Ok(p)
    };
    let pk_len = bounded(r.u64("key length")?, count)?;
    let primary_key = (0..pk_len)
        .map(|_| position(&mut r))
        .collect::<Result<_, _>>()?;
    let index_count = bounded(r.u64("index count")?, MAX_INDEXES)?;
    let mut indexes = Vec::with_capacity(index_count);
    for _ in 0..index_count {
        let id = small(r.u64("index id")?)?;
        let name = text(r.bytes("index name", MAX_NAME_BYTES)?)?;
        let unique = r.u8("unique")? != 0;
        let n = bounded(r.u64("index columns")?, count)?;
        let columns = (0..n).map(|_| position(&mut r)).collect::<Result<_, _>>()?;
        indexes.push(Index {
            id,
            name,
            columns,
            unique,
        });
    }
    r.finish()?;
    Ok(Table {
        id,
        name,
        columns,
        primary_key,
        indexes,
        next_column_id,
        next_index_id,
    })
}

fn small(v: u64) -> Result<u32, CatalogDecodeError> {
    u32::try_from(v).map_err(|_| CatalogDecodeError::Invalid(format!("id {v} out of range")))
}

fn bounded(v: u64, max: usize) -> Result<usize, CatalogDecodeError> {
    usize::try_from(v)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| CatalogDecodeError::Invalid(format!("count {v} above {max}")))
}

fn text(bytes: &[u8]) -> Result<String, CatalogDecodeError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| CatalogDecodeError::Invalid("name is not UTF-8".into()))
}

/// Checks a new table, column or index name against [`MAX_NAME_BYTES`].
pub fn check_name(name: &str) -> Result<(), SqlError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(SqlError::LimitExceeded(format!(
            "name \"{name}\" must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            id: 7,
            name: "accounts".into(),
            columns: vec![
                Column {
                    id: 0,
                    name: "id".into(),
                    data_type: DataType::BigInt,
                    not_null: true,
                    default: Value::Null,
                },
                Column {
                    id: 1,
                    name: "owner".into(),
                    data_type: DataType::Text,
                    not_null: false,
                    default: Value::Text("nobody".into()),
                },
            ],
            primary_key: vec![0],
            indexes: vec![Index {
                id: 1,
                name: "accounts_owner".into(),
                columns: vec![1],
                unique: true,
            }],
            next_column_id: 2,
            next_index_id: 2,
        }
    }

    #[test]
    fn definitions_round_trip() {
        let t = table();
        assert_eq!(Table::decode(&t.encode()), Ok(t));
    }

    #[test]
    fn damaged_definitions_are_errors() {
        let bytes = table().encode();
        for cut in 1..bytes.len() {
            assert!(Table::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = table();
        bad.primary_key = vec![5];
        assert!(
            Table::decode(&bad.encode()).is_err(),
            "position past the columns"
        );
    }
}
