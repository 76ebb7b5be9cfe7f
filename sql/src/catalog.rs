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
/// Most numbered candidates tried for an implicit index name before the
/// statement is refused and asked to name the index: enough for any
/// realistic clash, and it keeps the search bounded.
pub const MAX_IMPLICIT_NAME_TRIES: usize = 1000;

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

/// A column to add: everything but the id, which the table assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    /// Name, lower-cased unless it was quoted.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Whether NULL is refused.
    pub not_null: bool,
    /// The value used when an INSERT leaves the column out.
    pub default: Value,
}

/// How a new index is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexName {
    /// The name the statement gave.
    Given(String),
    /// A name made from the table's and the columns' names and this suffix
    /// (`key` for UNIQUE constraints, `idx` for CREATE INDEX), as
    /// PostgreSQL makes them: shortened to fit [`MAX_NAME_BYTES`] and
    /// numbered when taken.
    Implicit(&'static str),
}

/// An index to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIndex {
    /// Its name.
    pub name: IndexName,
    /// Positions of the indexed columns in [`Table::columns`].
    pub columns: Vec<usize>,
    /// Whether two rows may not share non-NULL values of the columns.
    pub unique: bool,
}

impl Table {
    /// A table with no columns yet. Its name is checked here; columns,
    /// the primary key and indexes are added through the methods below,
    /// which enforce every limit that [`Table::decode`] checks, so that
    /// whatever is stored reads back.
    pub fn new(id: u32, name: &str) -> Result<Table, SqlError> {
        check_name(name)?;
        Ok(Table {
            id,
            name: name.to_string(),
            columns: vec![],
            primary_key: vec![],
            indexes: vec![],
            next_column_id: 0,
            next_index_id: 0,
        })
    }

    /// Adds a column at the end and returns its position.
    pub fn add_column(&mut self, column: NewColumn) -> Result<usize, SqlError> {
        check_name(&column.name)?;
        if self.columns.iter().any(|c| c.name == column.name) {
            return Err(SqlError::AlreadyExists {
                kind: "column",
                name: column.name,
            });
        }
        if self.columns.len() >= MAX_COLUMNS {
            return Err(SqlError::LimitExceeded(format!(
                "a table has at most {MAX_COLUMNS} columns"
            )));
        }
        let id = self.next_column_id;
        self.next_column_id = id
            .checked_add(1)
            .ok_or_else(|| SqlError::LimitExceeded("column ids are exhausted".into()))?;
        self.columns.push(Column {
            id,
            name: column.name,
            data_type: column.data_type,
            not_null: column.not_null,
            default: column.default,
        });
        Ok(self.columns.len() - 1)
    }

    /// Makes `columns` the primary key (once); key columns become NOT NULL.
    pub fn set_primary_key(&mut self, columns: Vec<usize>) -> Result<(), SqlError> {
        if !self.primary_key.is_empty() {
            return Err(SqlError::InvalidDefinition("multiple primary keys".into()));
        }
        self.check_key_columns(&columns)?;
        for &p in &columns {
            self.columns[p].not_null = true;
        }
        self.primary_key = columns;
        Ok(())
    }

    /// Adds an index; `taken` tells whether a name is already used by an
    /// index of any table (index names are unique in the whole catalog).
    pub fn add_index(
        &mut self,
        index: NewIndex,
        taken: &dyn Fn(&str) -> bool,
    ) -> Result<&Index, SqlError> {
        self.check_key_columns(&index.columns)?;
        if self.indexes.len() >= MAX_INDEXES {
            return Err(SqlError::LimitExceeded(format!(
                "a table has at most {MAX_INDEXES} indexes"
            )));
        }
        let own = |name: &str| taken(name) || self.indexes.iter().any(|i| i.name == name);
        let name = match index.name {
            IndexName::Given(name) if own(&name) => {
                return Err(SqlError::AlreadyExists {
                    kind: "index",
                    name,
                });
            }
            IndexName::Given(name) => name,
            IndexName::Implicit(suffix) => {
                self.implicit_index_name(&index.columns, suffix, &own)?
            }
        };
        check_name(&name)?;
        let id = self.next_index_id;
        self.next_index_id = id
            .checked_add(1)
            .ok_or_else(|| SqlError::LimitExceeded("index ids are exhausted".into()))?;
        self.indexes.push(Index {
            id,
            name,
            columns: index.columns,
            unique: index.unique,
        });
        Ok(&self.indexes[self.indexes.len() - 1])
    }

    /// `{table}_{columns}_{suffix}`, its stem shortened (at a character
    /// boundary) so the name fits [`MAX_NAME_BYTES`], and a number put
    /// before the suffix while the name is taken.
    fn implicit_index_name(
        &self,
        columns: &[usize],
        suffix: &str,
        taken: &dyn Fn(&str) -> bool,
    ) -> Result<String, SqlError> {
        let mut stem = self.name.clone();
        for &c in columns {
            stem.push('_');
            stem.push_str(&self.columns[c].name);
        }
        (0..MAX_IMPLICIT_NAME_TRIES)
            .map(|n| {
                let ending = match n {
                    0 => format!("_{suffix}"),
                    n => format!("_{suffix}{n}"),
                };
                format!("{}{ending}", shortened(&stem, MAX_NAME_BYTES - ending.len()))
            })
            .find(|name| !taken(name))
            .ok_or_else(|| {
                SqlError::LimitExceeded(format!(
                    "no free index name like \"{stem}_{suffix}\" after {MAX_IMPLICIT_NAME_TRIES} tries; name the index"
                ))
            })
    }

    /// Key or index columns: at least one, each a column, none twice.
    fn check_key_columns(&self, columns: &[usize]) -> Result<(), SqlError> {
        if columns.is_empty() {
            return Err(SqlError::InvalidDefinition(
                "a key or index needs at least one column".into(),
            ));
        }
        for (i, &c) in columns.iter().enumerate() {
            let Some(column) = self.columns.get(c) else {
                return Err(SqlError::InvalidDefinition(format!("no column {c}")));
            };
            if columns[..i].contains(&c) {
                return Err(SqlError::InvalidDefinition(format!(
                    "column \"{}\" appears twice",
                    column.name
                )));
            }
        }
        Ok(())
    }

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

/// The longest prefix of `text` of at most `max` bytes that ends at a
/// character boundary.
fn shortened(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

    fn column(name: &str) -> NewColumn {
        NewColumn {
            name: name.into(),
            data_type: DataType::Text,
            not_null: false,
            default: Value::Null,
        }
    }

    fn unique(columns: Vec<usize>) -> NewIndex {
        NewIndex {
            name: IndexName::Implicit("key"),
            columns,
            unique: true,
        }
    }

    #[test]
    fn tables_refuse_a_column_past_the_limit_and_a_name_twice() {
        let mut t = Table::new(1, "t").expect("a short name");
        for i in 0..MAX_COLUMNS {
            t.add_column(column(&format!("c{i}")))
                .expect("within the limit");
        }
        let refused = t.add_column(column("one_more"));
        assert!(
            matches!(refused, Err(SqlError::LimitExceeded(_))),
            "{refused:?}"
        );
        let mut t = Table::new(1, "t").expect("a short name");
        t.add_column(column("c")).expect("first");
        let twice = t.add_column(column("c"));
        assert!(
            matches!(twice, Err(SqlError::AlreadyExists { .. })),
            "{twice:?}"
        );
        assert!(Table::new(1, &"n".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn tables_refuse_an_index_past_the_limit() {
        let mut t = Table::new(1, "t").expect("a short name");
        t.add_column(column("c")).expect("column");
        for _ in 0..MAX_INDEXES {
            t.add_index(unique(vec![0]), &|_| false)
                .expect("within the limit");
        }
        let refused = t.add_index(unique(vec![0]), &|_| false);
        assert!(
            matches!(refused, Err(SqlError::LimitExceeded(_))),
            "{refused:?}"
        );
        assert_eq!(Table::decode(&t.encode()), Ok(t), "a full table reads back");
    }

    #[test]
    fn implicit_index_names_fit_the_limit_at_a_character_boundary_and_are_numbered() {
        // 31 two-byte characters: 62 bytes, so any suffix forces a cut.
        let name = "é".repeat(31);
        let mut t = Table::new(1, &name).expect("62 bytes fit");
        t.add_column(column("c")).expect("column");
        let first = t
            .add_index(unique(vec![0]), &|_| false)
            .expect("named")
            .name
            .clone();
        let second = t
            .add_index(unique(vec![0]), &|_| false)
            .expect("named")
            .name
            .clone();
        let taken = |n: &str| n.ends_with("_key2");
        let third = t
            .add_index(unique(vec![0]), &taken)
            .expect("named")
            .name
            .clone();
        assert!(
            first.len() <= MAX_NAME_BYTES && first.ends_with("_key"),
            "{first}"
        );
        assert!(second.ends_with("_key1"), "{second}");
        assert!(
            third.ends_with("_key3"),
            "a name taken elsewhere is skipped: {third}"
        );
        assert_eq!(
            Table::decode(&t.encode()),
            Ok(t),
            "the definition reads back"
        );
    }

    #[test]
    fn index_columns_must_exist_and_appear_once() {
        let mut t = Table::new(1, "t").expect("a short name");
        t.add_column(column("c")).expect("column");
        assert!(
            t.add_index(unique(vec![]), &|_| false).is_err(),
            "no columns"
        );
        assert!(
            t.add_index(unique(vec![1]), &|_| false).is_err(),
            "no such column"
        );
        assert!(
            t.add_index(unique(vec![0, 0]), &|_| false).is_err(),
            "a column twice"
        );
        assert!(t.set_primary_key(vec![0]).is_ok());
        assert!(t.set_primary_key(vec![0]).is_err(), "a second primary key");
        assert!(t.columns[0].not_null, "key columns are NOT NULL");
    }
}
