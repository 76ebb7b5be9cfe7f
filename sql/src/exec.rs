//! Running plans and statements against one transaction.
//!
//! Every read goes through [`Txn`], so it lands in the read set, and every
//! write is buffered there until the session commits. Nothing here talks to
//! the store directly except through the transaction.

use crate::catalog::{Index, Table};
use crate::encoding::{
    decode_row, encode_key_value, encode_row, index_key, index_prefix, prefix_end, row_key,
    rows_prefix, table_key,
};
use crate::error::SqlError;
use crate::expr::{BinOp, Expr, binary, truth};
use crate::plan::{Access, Agg, AggFunc, Plan, SortKey, Tables};
use crate::store::{KvPair, Store, Txn};
use crate::types::{Value, sort_cmp};
use ordo_txn::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// A row of values.
pub type Row = Vec<Value>;

/// A transaction and the store it reads from: what statements run against.
pub struct Exec<'a, S> {
    /// The store.
    pub store: &'a S,
    /// The transaction.
    pub txn: &'a mut Txn,
}

impl<S: Store> Tables for Exec<'_, S> {
    fn table(&mut self, name: &str) -> Result<Table, SqlError> {
        self.find_table(name)?
            .ok_or_else(|| SqlError::UnknownTable(name.to_string()))
    }
}

impl<S: Store> Exec<'_, S> {
    /// The definition of `name`, if it exists.
    pub fn find_table(&mut self, name: &str) -> Result<Option<Table>, SqlError> {
        if let Some(view) = crate::system::view(name) {
            return Ok(Some(view));
        }
        match self.txn.get(self.store, &table_key(name))? {
            Some(bytes) => Table::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every table definition, by name.
    pub fn all_tables(&mut self) -> Result<Vec<Table>, SqlError> {
        let (start, end) = crate::encoding::tables_range();
        self.txn
            .scan(self.store, &start, Some(&end))?
            .iter()
            .map(|(_, v)| Table::decode(v))
            .collect()
    }

    /// Runs a plan to completion.
    pub fn run(&mut self, plan: &Plan) -> Result<Vec<Row>, SqlError> {
        Ok(match plan {
            Plan::Single => vec![vec![]],
            Plan::Scan { table, access, .. } => self
                .fetch(table, access)?
                .into_iter()
                .map(|(_, row)| row)
                .collect(),
            Plan::Filter { input, predicate } => {
                let mut kept = Vec::new();
                for row in self.run(input)? {
                    if truth(predicate.eval(&row)?)? == Some(true) {
                        kept.push(row);
                    }
                }
                kept
            }
            Plan::Join {
                left,
                right,
                left_join,
                keys,
                on,
                right_width,
            } => {
                let left = self.run(left)?;
                let right = self.run(right)?;
                join(&left, &right, *left_join, keys, on.as_ref(), *right_width)?
            }
            Plan::Aggregate {
                input,
                groups,
                aggs,
            } => aggregate(self.run(input)?, groups, aggs)?,
            Plan::Project { input, exprs } => self
                .run(input)?
                .iter()
                .map(|row| exprs.iter().map(|e| e.eval(row)).collect())
                .collect::<Result<_, _>>()?,
            Plan::Distinct { input, width } => {
                let mut seen = HashSet::new();
                self.run(input)?
                    .into_iter()
                    .filter(|row| seen.insert(hash_key(&row[..*width])))
                    .collect()
            }
            Plan::Sort { input, keys } => {
                let mut rows = self.run(input)?;
                rows.sort_by(|a, b| order_rows(a, b, keys));
                rows
            }
            Plan::Limit {
                input,
                offset,
                limit,
            } => {
                let rows = self.run(input)?.into_iter().skip(*offset as usize);
                match limit {
                    Some(n) => rows.take(*n as usize).collect(),
                    None => rows.collect(),
                }
            }
            Plan::Keep { input, width } => {
                let mut rows = self.run(input)?;
                rows.iter_mut().for_each(|r| r.truncate(*width));
                rows
            }
        })
    }

    /// The rows `access` finds in `table`, with their store keys, in
    /// primary-key order.
    pub fn fetch(
        &mut self,
        table: &Table,
        access: &Access,
    ) -> Result<Vec<(Vec<u8>, Row)>, SqlError> {
        if crate::system::is_view(table) {
            return crate::system::rows(self.store, table, self.txn.version());
        }
        let raw: Vec<KvPair> = match access {
            Access::Full => self.txn.scan_prefix(self.store, &rows_prefix(table.id))?,
            Access::PkPoints(keys) => {
                let mut wanted: Vec<Vec<u8>> = keys.iter().map(|k| row_key(table.id, k)).collect();
                wanted.sort();
                wanted.dedup();
                let mut found = Vec::with_capacity(wanted.len());
                for key in wanted {
                    if let Some(value) = self.txn.get(self.store, &key)? {
                        found.push((key, value));
                    }
                }
                found
            }
            Access::PkRange {
                prefix,
                lower,
                upper,
            } => {
                let (start, end) = range_keys(table.id, prefix, lower.as_ref(), upper.as_ref());
                self.txn.scan(self.store, &start, end.as_deref())?
            }
            Access::IndexEq { index, values } => self.fetch_by_index(table, index, values)?,
        };
        raw.into_iter()
            .map(|(key, bytes)| Ok((key, full_row(table, &bytes)?)))
            .collect()
    }

    fn fetch_by_index(
        &mut self,
        table: &Table,
        index: &Index,
        values: &[Value],
    ) -> Result<Vec<KvPair>, SqlError> {
        let mut prefix = index_prefix(table.id, index.id);
        values.iter().for_each(|v| encode_key_value(&mut prefix, v));
        let entries = self.txn.scan_prefix(self.store, &prefix)?;
        let mut keys = Vec::with_capacity(entries.len());
        for (_, pk) in entries {
            let pk: Vec<Value> = decode_row(&pk)?.into_iter().map(|(_, v)| v).collect();
            keys.push(row_key(table.id, &pk));
        }
        keys.sort();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            match self.txn.get(self.store, &key)? {
                Some(value) => rows.push((key, value)),
                None => {
                    return Err(SqlError::Store(format!(
                        "index {} points at a missing row",
                        index.name
                    )));
                }
            }
        }
        Ok(rows)
    }

    /// Inserts a complete, checked row. Returns false (writing nothing) when
    /// the key is taken and `skip_conflicts` is set.
    pub fn insert_row(
        &mut self,
        table: &Table,
        row: &Row,
        skip_conflicts: bool,
    ) -> Result<bool, SqlError> {
        let key = row_key(table.id, &table.key_of(row));
        if self.txn.get(self.store, &key)?.is_some() {
            return if skip_conflicts {
                Ok(false)
            } else {
                Err(duplicate(
                    table,
                    &table.pkey_name(),
                    &table.primary_key,
                    row,
                ))
            };
        }
        for index in table.indexes.iter().filter(|i| i.unique) {
            if self.unique_taken(table, index, row)? {
                return if skip_conflicts {
                    Ok(false)
                } else {
                    Err(duplicate(table, &index.name, &index.columns, row))
                };
            }
        }
        self.put_row(table, key, row)?;
        for index in &table.indexes {
            self.put_index_entry(table, index, row)?;
        }
        Ok(true)
    }

    /// Whether another row already holds `row`'s values of a unique index.
    /// Rows with a NULL in the indexed columns never clash (SQL's rule).
    fn unique_taken(&mut self, table: &Table, index: &Index, row: &Row) -> Result<bool, SqlError> {
        let values: Vec<Value> = index.columns.iter().map(|&c| row[c].clone()).collect();
        if values.iter().any(Value::is_null) {
            return Ok(false);
        }
        let mut prefix = index_prefix(table.id, index.id);
        values.iter().for_each(|v| encode_key_value(&mut prefix, v));
        Ok(!self.txn.scan_prefix(self.store, &prefix)?.is_empty())
    }

    fn put_row(&mut self, table: &Table, key: Vec<u8>, row: &Row) -> Result<(), SqlError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(SqlError::LimitExceeded(format!(
                "primary key of {} bytes is over the limit of {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        let columns: Vec<(u32, &Value)> = table
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.id, v))
            .collect();
        let value = encode_row(&columns);
        if value.len() > MAX_VALUE_BYTES {
            return Err(SqlError::LimitExceeded(format!(
                "row of {} bytes is over the limit of {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        self.txn.put(key, value)
    }

    fn put_index_entry(&mut self, table: &Table, index: &Index, row: &Row) -> Result<(), SqlError> {
        let (key, pk) = entry(table, index, row);
        if key.len() > MAX_KEY_BYTES {
            return Err(SqlError::LimitExceeded(format!(
                "entry of index {} is {} bytes, over the key limit of {MAX_KEY_BYTES}",
                index.name,
                key.len()
            )));
        }
        self.txn.put(key, pk)
    }

    /// Deletes a row and its index entries.
    pub fn delete_row(&mut self, table: &Table, key: Vec<u8>, row: &Row) -> Result<(), SqlError> {
        for index in &table.indexes {
            self.txn.delete(entry(table, index, row).0)?;
        }
        self.txn.delete(key)
    }

    /// Replaces `old` (stored under `key`) by `new`, keeping indexes and
    /// uniqueness right.
    pub fn update_row(
        &mut self,
        table: &Table,
        key: Vec<u8>,
        old: &Row,
        new: &Row,
    ) -> Result<(), SqlError> {
        let new_key = row_key(table.id, &table.key_of(new));
        if new_key != key {
            self.delete_row(table, key, old)?;
            return self.insert_row(table, new, false).map(|_| ());
        }
        for index in &table.indexes {
            let (old_entry, _) = entry(table, index, old);
            let (new_entry, _) = entry(table, index, new);
            if old_entry != new_entry {
                self.txn.delete(old_entry)?;
                if index.unique && self.unique_taken(table, index, new)? {
                    return Err(duplicate(table, &index.name, &index.columns, new));
                }
                self.put_index_entry(table, index, new)?;
            }
        }
        self.put_row(table, key, new)
    }

    /// Writes the entries of a new index for every existing row.
    pub fn backfill_index(&mut self, table: &Table, index: &Index) -> Result<(), SqlError> {
        for (_, row) in self.fetch(table, &Access::Full)? {
            if index.unique && self.unique_taken(table, index, &row)? {
                return Err(duplicate(table, &index.name, &index.columns, &row));
            }
            self.put_index_entry(table, index, &row)?;
        }
        Ok(())
    }

    /// Deletes every key under `prefix` (a dropped table's rows or index).
    pub fn delete_prefix(&mut self, prefix: &[u8]) -> Result<(), SqlError> {
        for (key, _) in self
            .txn
            .scan(self.store, prefix, prefix_end(prefix).as_deref())?
        {
            self.txn.delete(key)?;
        }
        Ok(())
    }
}

/// The index entry of `row`: its key, and its value (the row's primary key).
fn entry(table: &Table, index: &Index, row: &Row) -> (Vec<u8>, Vec<u8>) {
    let values: Vec<Value> = index.columns.iter().map(|&c| row[c].clone()).collect();
    let pk = table.key_of(row);
    let key = index_key(table.id, index.id, &values, &pk);
    let pk_pairs: Vec<(u32, &Value)> = pk.iter().enumerate().map(|(i, v)| (i as u32, v)).collect();
    (key, encode_row(&pk_pairs))
}

fn duplicate(table: &Table, constraint: &str, columns: &[usize], row: &Row) -> SqlError {
    let names: Vec<&str> = columns
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    let values: Vec<String> = columns.iter().map(|&c| row[c].to_string()).collect();
    SqlError::DuplicateKey {
        constraint: constraint.to_string(),
        detail: format!(
            "Key ({})=({}) already exists.",
            names.join(", "),
            values.join(", ")
        ),
    }
}

/// Decodes a stored row into all of the table's columns, in order; columns
/// added after the row was written take their default.
pub fn full_row(table: &Table, bytes: &[u8]) -> Result<Row, SqlError> {
    let stored: HashMap<u32, Value> = decode_row(bytes)?.into_iter().collect();
    Ok(table
        .columns
        .iter()
        .map(|c| {
            stored
                .get(&c.id)
                .cloned()
                .unwrap_or_else(|| c.default.clone())
        })
        .collect())
}

/// The store keys bounding a primary-key range.
fn range_keys(
    table: u32,
    prefix: &[Value],
    lower: Option<&(Value, bool)>,
    upper: Option<&(Value, bool)>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let base = row_key(table, prefix);
    let with = |v: &Value| {
        let mut k = base.clone();
        encode_key_value(&mut k, v);
        k
    };
    let start = match lower {
        None => base.clone(),
        Some((v, true)) => with(v),
        Some((v, false)) => prefix_end(&with(v)).unwrap_or_else(|| with(v)),
    };
    let end = match upper {
        None => prefix_end(&base),
        Some((v, true)) => prefix_end(&with(v)),
        Some((v, false)) => Some(with(v)),
    };
    (start, end)
}

/// A hashable form of values: equal SQL values give equal keys (numbers of
/// either type hash alike, so `int_col = double_col` matches).
fn hash_key(values: &[Value]) -> Vec<u8> {
    let mut key = Vec::new();
    for v in values {
        match v {
            Value::Int(i) => encode_key_value(&mut key, &Value::Double(*i as f64)),
            other => encode_key_value(&mut key, other),
        }
        // Separate values of different kinds that might share bytes.
        key.push(
            v.data_type()
                .map_or(0, |t| if t.is_numeric() { 1 } else { t.tag() }),
        );
    }
    key
}

fn order_rows(a: &Row, b: &Row, keys: &[SortKey]) -> Ordering {
    for key in keys {
        let (x, y) = (&a[key.column], &b[key.column]);
        let ordering = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = sort_cmp(x, y);
                if key.descending { o.reverse() } else { o }
            }
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn join(
    left: &[Row],
    right: &[Row],
    left_join: bool,
    keys: &[(Expr, Expr)],
    on: Option<&Expr>,
    right_width: usize,
) -> Result<Vec<Row>, SqlError> {
    let mut buckets: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    if !keys.is_empty() {
        for (i, row) in right.iter().enumerate() {
            let values: Vec<Value> = keys
                .iter()
                .map(|(_, r)| r.eval(row))
                .collect::<Result<_, _>>()?;
            if !values.iter().any(Value::is_null) {
                buckets.entry(hash_key(&values)).or_default().push(i);
            }
        }
    }
    let all: Vec<usize> = (0..right.len()).collect();
    let mut out = Vec::new();
    for l in left {
        let candidates: &[usize] = if keys.is_empty() {
            &all
        } else {
            let values: Vec<Value> = keys
                .iter()
                .map(|(k, _)| k.eval(l))
                .collect::<Result<_, _>>()?;
            if values.iter().any(Value::is_null) {
                &[]
            } else {
                buckets.get(&hash_key(&values)).map_or(&[], Vec::as_slice)
            }
        };
        let mut matched = false;
        for &i in candidates {
            let mut row = l.clone();
            row.extend(right[i].iter().cloned());
            let keep = match on {
                Some(on) => truth(on.eval(&row)?)? == Some(true),
                None => true,
            };
            if keep {
                matched = true;
                out.push(row);
            }
        }
        if left_join && !matched {
            let mut row = l.clone();
            row.extend(std::iter::repeat_n(Value::Null, right_width));
            out.push(row);
        }
    }
    Ok(out)
}

/// The running state of one aggregate over one group.
#[derive(Debug, Clone)]
struct Accumulator {
    count: i64,
    value: Value,
    sum: f64,
    seen: HashSet<Vec<u8>>,
}

impl Accumulator {
    fn new() -> Self {
        Self {
            count: 0,
            value: Value::Null,
            sum: 0.0,
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, agg: &Agg, row: &Row) -> Result<(), SqlError> {
        let v = match &agg.arg {
            None => {
                self.count += 1;
                return Ok(());
            }
            Some(arg) => arg.eval(row)?,
        };
        if v.is_null() || (agg.distinct && !self.seen.insert(hash_key(std::slice::from_ref(&v)))) {
            return Ok(());
        }
        self.count += 1;
        match agg.func {
            AggFunc::Count => {}
            AggFunc::Sum => {
                self.value = if self.value.is_null() {
                    v
                } else {
                    binary(BinOp::Add, self.value.clone(), v)?
                };
            }
            AggFunc::Avg => {
                self.sum += match v {
                    Value::Int(i) => i as f64,
                    Value::Double(d) => d,
                    other => {
                        return Err(SqlError::TypeMismatch {
                            message: format!("avg of {}", other.literal()),
                        });
                    }
                };
            }
            AggFunc::Min | AggFunc::Max => {
                let replace = self.value.is_null() || {
                    let o = crate::types::compare(&v, &self.value).ok_or_else(|| {
                        SqlError::TypeMismatch {
                            message: format!(
                                "cannot compare {} with {}",
                                v.literal(),
                                self.value.literal()
                            ),
                        }
                    })?;
                    if agg.func == AggFunc::Min {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    }
                };
                if replace {
                    self.value = v;
                }
            }
        }
        Ok(())
    }

    fn finish(&self, agg: &Agg) -> Value {
        match agg.func {
            AggFunc::Count => Value::Int(self.count),
            AggFunc::Avg if self.count == 0 => Value::Null,
            AggFunc::Avg => Value::Double(self.sum / self.count as f64),
            _ => self.value.clone(),
        }
    }
}

fn aggregate(rows: Vec<Row>, groups: &[Expr], aggs: &[Agg]) -> Result<Vec<Row>, SqlError> {
    let mut order: Vec<(Row, Vec<Accumulator>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    if groups.is_empty() {
        order.push((vec![], vec![Accumulator::new(); aggs.len()]));
        index.insert(vec![], 0);
    }
    for row in &rows {
        let key_values: Row = groups
            .iter()
            .map(|g| g.eval(row))
            .collect::<Result<_, _>>()?;
        let key = hash_key(&key_values);
        let slot = match index.get(&key) {
            Some(&i) => i,
            None => {
                order.push((key_values, vec![Accumulator::new(); aggs.len()]));
                index.insert(key, order.len() - 1);
                order.len() - 1
            }
        };
        for (acc, agg) in order[slot].1.iter_mut().zip(aggs) {
            acc.add(agg, row)?;
        }
    }
    Ok(order
        .into_iter()
        .map(|(mut values, accs)| {
            values.extend(accs.iter().zip(aggs).map(|(acc, agg)| acc.finish(agg)));
            values
        })
        .collect())
}
