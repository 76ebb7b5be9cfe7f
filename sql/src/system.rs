//! Read-only views of what replay keeps outside SQL's own stream.
//!
//! `mining_rewards (beneficiary TEXT, total BIGINT)`: the storage-mining
//! ledger (docs/MINING.md), one row per credited account, read from the
//! log's system stream at the statement's snapshot. Views are read at the
//! snapshot but not validated at commit: no SQL statement can write them,
//! and a transaction that reads one and writes its own tables is not
//! refused when the ledger moves meanwhile. Every statement that would
//! change a view, or its definition, is refused (`42501`).

use crate::catalog::{Column, Table};
use crate::encoding::prefix_end;
use crate::error::SqlError;
use crate::store::{KvPair, Space, Store};
use crate::types::{DataType, Value};
use ordo_txn::mining::REWARD_PREFIX;

/// A view's row with the key it was read from.
pub type KeyedRow = (Vec<u8>, Vec<Value>);

/// The name of the mining ledger's view.
pub const MINING_REWARDS: &str = "mining_rewards";

/// Table id of the views: above every id a table gets, never stored.
pub const VIEW_ID: u32 = u32::MAX;

/// Most rows a view reads in one statement (more is a typed error): the
/// ledger has one row per beneficiary, and a statement's result is
/// bounded anyway.
pub const MAX_VIEW_ROWS: usize = 100_000;

/// The view named `name`, if there is one.
pub fn view(name: &str) -> Option<Table> {
    (name == MINING_REWARDS).then(|| Table {
        id: VIEW_ID,
        name: MINING_REWARDS.to_string(),
        columns: vec![
            column(0, "beneficiary", DataType::Text),
            column(1, "total", DataType::BigInt),
        ],
        primary_key: vec![0],
        indexes: vec![],
        next_column_id: 2,
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
    debug_assert_eq!(table.name, MINING_REWARDS);
    let mut rows = Vec::new();
    let mut from = REWARD_PREFIX.to_vec();
    let end = prefix_end(REWARD_PREFIX);
    loop {
        let range = (from.as_slice(), end.as_deref());
        let page = store.scan(Space::System, range, at, MAX_VIEW_ROWS - rows.len())?;
        for pair in page.rows {
            rows.push(reward_row(pair)?);
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
