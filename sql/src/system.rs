//! Read-only views of what replay keeps outside SQL's own stream.
//!
//! - `mining_rewards (beneficiary TEXT, total BIGINT)`: the storage-mining
//!   ledger (docs/MINING.md), one row per credited account;
//! - `da_blobs (blob_id TEXT, owner TEXT, size BIGINT, parts BIGINT,
//!   first_seq BIGINT, recorded_in BIGINT, expires_at BIGINT)`: the blob
//!   records (docs/DA.md), one row per owner's record of a blob.
//!
//! Both are read from the log's system stream at the statement's snapshot. Views are read at the
//! snapshot but not validated at commit: no SQL statement can write them,
//! and a transaction that reads one and writes its own tables is not
//! refused when the ledger moves meanwhile. Every statement that would
//! change a view, or its definition, is refused (`42501`).

use crate::catalog::{Column, Table};
use crate::encoding::prefix_end;
use crate::error::SqlError;
use crate::store::{KvPair, Space, Store};
use crate::types::{DataType, Value};
use ordo_txn::da::{BLOB_PREFIX, BlobRecord, parse_record_key};
use ordo_txn::mining::REWARD_PREFIX;

/// A view's row with the key it was read from.
pub type KeyedRow = (Vec<u8>, Vec<Value>);

/// The name of the mining ledger's view.
pub const MINING_REWARDS: &str = "mining_rewards";

/// The name of the blob records' view.
pub const DA_BLOBS: &str = "da_blobs";

/// A view: where its rows live in the system stream and how one is read.
struct ViewDef {
    name: &'static str,
    prefix: &'static [u8],
    columns: &'static [(&'static str, DataType)],
    primary_key: &'static [usize],
    row: fn(KvPair) -> Result<KeyedRow, SqlError>,
}

const VIEWS: [ViewDef; 2] = [
    ViewDef {
        name: MINING_REWARDS,
        prefix: REWARD_PREFIX,
        columns: &[("beneficiary", DataType::Text), ("total", DataType::BigInt)],
        primary_key: &[0],
        row: reward_row,
    },
    ViewDef {
        name: DA_BLOBS,
        prefix: BLOB_PREFIX,
        columns: &[
            ("blob_id", DataType::Text),
            ("owner", DataType::Text),
            ("size", DataType::BigInt),
            ("parts", DataType::BigInt),
            ("first_seq", DataType::BigInt),
            ("recorded_in", DataType::BigInt),
            ("expires_at", DataType::BigInt),
        ],
        primary_key: &[0, 1],
        row: blob_row,
    },
];

fn definition(name: &str) -> Option<&'static ViewDef> {
    VIEWS.iter().find(|v| v.name == name)
}

/// Table id of the views: above every id a table gets, never stored.
pub const VIEW_ID: u32 = u32::MAX;

/// Most rows a view reads in one statement (more is a typed error): the
/// ledger has one row per beneficiary, and a statement's result is
/// bounded anyway.
pub const MAX_VIEW_ROWS: usize = 100_000;

/// The view named `name`, if there is one.
pub fn view(name: &str) -> Option<Table> {
    let def = definition(name)?;
    Some(Table {
        id: VIEW_ID,
        name: def.name.to_string(),
        columns: (def.columns.iter().enumerate())
            .map(|(i, (name, data_type))| column(i as u32, name, *data_type))
            .collect(),
        primary_key: def.primary_key.to_vec(),
        indexes: vec![],
        next_column_id: def.columns.len() as u32,
        next_index_id: 0,
    })
}

fn column(id: u32, name: &str, data_type: DataType) -> Column {
    Column {
        id,
        name: name.to_string(),
        data_type,
        not_null: true,
        default: Value::Null,
    }
}

/// Whether `table` is a view.
pub fn is_view(table: &Table) -> bool {
    table.id == VIEW_ID
}

/// Refuses a change to `table` when it is a view.
pub fn writable(table: Table) -> Result<Table, SqlError> {
    match is_view(&table) {
        false => Ok(table),
        true => Err(SqlError::PermissionDenied(format!(
            "{} is a read-only view of what replay keeps; no statement changes it",
            table.name
        ))),
    }
}

/// The rows of view `table` at version `at`, each with its stored key.
pub fn rows(store: &impl Store, table: &Table, at: u64) -> Result<Vec<KeyedRow>, SqlError> {
    let def = definition(&table.name)
        .ok_or_else(|| SqlError::Store(format!("{} is not a view", table.name)))?;
    let mut rows = Vec::new();
    let mut from = def.prefix.to_vec();
    let end = prefix_end(def.prefix);
    loop {
        let range = (from.as_slice(), end.as_deref());
        let page = store.scan(Space::System, range, at, MAX_VIEW_ROWS - rows.len())?;
        for pair in page.rows {
            rows.push((def.row)(pair)?);
        }
        match page.resume {
            None => return Ok(rows),
            Some(_) if rows.len() >= MAX_VIEW_ROWS => {
                return Err(SqlError::LimitExceeded(format!(
                    "{} holds more than {MAX_VIEW_ROWS} rows, the most a statement reads from a view",
                    table.name
                )));
            }
            Some(next) => from = next,
        }
    }
}

/// One ledger row: `0x` and the beneficiary in hex, and its total.
fn reward_row((key, value): KvPair) -> Result<KeyedRow, SqlError> {
    let corrupt = |what: &str| SqlError::Store(format!("mining ledger: {what}"));
    let account = key
        .strip_prefix(REWARD_PREFIX)
        .ok_or_else(|| corrupt("a key outside the ledger"))?;
    let beneficiary = format!("0x{}", ordo_txn::ids::hex(account));
    let total: i64 = std::str::from_utf8(&value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| corrupt("a total that is not a BIGINT"))?;
    Ok((key, vec![Value::Text(beneficiary), Value::Int(total)]))
}

/// One blob record: the blob and its owner in hex, its size, its parts
/// (count and first seq), the entry that recorded it and its expiry.
fn blob_row((key, value): KvPair) -> Result<KeyedRow, SqlError> {
    let corrupt = |what: &str| SqlError::Store(format!("blob records: {what}"));
    let (blob, owner) = parse_record_key(&key).ok_or_else(|| corrupt("a key outside them"))?;
    let record = BlobRecord::decode(&value).map_err(|e| corrupt(&e.to_string()))?;
    let int = |n: u64| {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| corrupt("a number past BIGINT"))
    };
    let first_seq = record.parts.first().map_or(0, |p| p.seq);
    Ok((
        key,
        vec![
            Value::Text(format!("0x{}", ordo_txn::ids::hex(&blob))),
            Value::Text(format!("0x{}", ordo_txn::ids::hex(&owner))),
            int(record.size)?,
            int(record.parts.len() as u64)?,
            int(first_seq)?,
            int(record.recorded_in)?,
            int(record.expires_at)?,
        ],
    ))
}
