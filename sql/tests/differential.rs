//! Differential test: random schemas, rows and queries inside the supported
//! subset give the same answers on ordo and on SQLite.
//!
//! The generator stays where the two agree by definition: integers and text
//! (no division, no floats, no booleans in results), explicit NULLS FIRST /
//! LAST wherever order matters, and an ORDER BY over every output column, so
//! ties cannot order differently. Without ORDER BY, results are compared as
//! multisets. A failure prints the seed and the exact SQL.

use ordo_kv::MemEngine;
use ordo_sql::{LocalStore, Session, Value};
use std::fmt::Write as _;

/// Schemas (and data sets) tried.
const SEEDS: u64 = 60;
/// Queries per schema.
const QUERIES: usize = 40;

/// splitmix64: a tiny deterministic generator, so a seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Text,
}

#[derive(Clone, Debug)]
struct Col {
    name: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
struct Tbl {
    name: String,
    cols: Vec<Col>,
}

fn schema(rng: &mut Rng) -> Vec<Tbl> {
    (0..2)
        .map(|t| {
            let mut cols = vec![Col {
                name: "id".into(),
                kind: Kind::Int,
            }];
            // The second table always has an integer column to join on.
            if t == 1 {
                cols.push(Col {
                    name: "ref".into(),
                    kind: Kind::Int,
                });
            }
            for i in 0..1 + rng.below(4) {
                let kind = if rng.chance(50) {
                    Kind::Int
                } else {
                    Kind::Text
                };
                cols.push(Col {
                    name: format!("c{i}"),
                    kind,
                });
            }
            Tbl {
                name: format!("t{t}"),
                cols,
            }
        })
        .collect()
}

fn create(t: &Tbl, sqlite: bool) -> String {
    let cols: Vec<String> = t
        .cols
        .iter()
        .map(|c| {
            let ty = match (c.kind, sqlite) {
                (Kind::Int, false) => "BIGINT",
                (Kind::Int, true) => "INTEGER",
                (Kind::Text, _) => "TEXT",
            };
            let pk = if c.name == "id" { " PRIMARY KEY" } else { "" };
            format!("{} {ty}{pk}", c.name)
        })
        .collect();
    format!("CREATE TABLE {} ({})", t.name, cols.join(", "))
}

fn literal(rng: &mut Rng, kind: Kind) -> String {
    match kind {
        Kind::Int => (rng.below(12) as i64 - 3).to_string(),
        Kind::Text => format!(
            "'{}'",
            rng.pick(&["", "a", "ab", "b", "ba", "c", "A", "abc"])
        ),
    }
}

fn value(rng: &mut Rng, kind: Kind) -> String {
    if rng.chance(15) {
        "NULL".into()
    } else {
        literal(rng, kind)
    }
}

fn inserts(rng: &mut Rng, t: &Tbl) -> Vec<String> {
    let n = rng.below(25);
    let mut ids: Vec<u64> = (0..40).collect();
    (0..n)
        .map(|_| {
            let id = ids.remove(rng.below(ids.len() as u64) as usize);
            let mut values = vec![id.to_string()];
            values.extend(t.cols[1..].iter().map(|c| value(rng, c.kind)));
            format!("INSERT INTO {} VALUES ({})", t.name, values.join(", "))
        })
        .collect()
}

/// A column reference in scope: (qualified name, kind).
type Scoped = (String, Kind);

fn condition(rng: &mut Rng, scope: &[Scoped], depth: u32) -> String {
    if depth > 0 && rng.chance(35) {
        let op = if rng.chance(50) { "AND" } else { "OR" };
        return format!(
            "({} {op} {})",
            condition(rng, scope, depth - 1),
            condition(rng, scope, depth - 1)
        );
    }
    if depth > 0 && rng.chance(10) {
        return format!("NOT ({})", condition(rng, scope, depth - 1));
    }
    let (col, kind) = rng.pick(scope).clone();
    match rng.below(6) {
        0 => format!("{col} IS {}NULL", if rng.chance(50) { "NOT " } else { "" }),
        1 => {
            let items: Vec<String> = (0..1 + rng.below(3)).map(|_| value(rng, kind)).collect();
            let not = if rng.chance(30) { "NOT " } else { "" };
            format!("{col} {not}IN ({})", items.join(", "))
        }
        2 => format!(
            "{col} BETWEEN {} AND {}",
            literal(rng, kind),
            literal(rng, kind)
        ),
        3 => {
            // Compare two columns of one kind when there are two.
            let same: Vec<&Scoped> = scope.iter().filter(|(_, k)| *k == kind).collect();
            let other = &rng.pick(&same).0;
            format!("{col} {} {other}", rng.pick(&["=", "<", "<>", ">="]))
        }
        _ => format!(
            "{col} {} {}",
            rng.pick(&["=", "<>", "<", "<=", ">", ">="]),
            literal(rng, kind)
        ),
    }
}

fn output(rng: &mut Rng, scope: &[Scoped]) -> String {
    let (col, kind) = rng.pick(scope).clone();
    match (kind, rng.below(4)) {
        (Kind::Int, 0) => format!("{col} + {}", rng.below(5)),
        (Kind::Int, 1) => format!("{col} * 2 - {}", rng.below(3)),
        (Kind::Text, 0) => format!("{col} || 'x'"),
        _ => col,
    }
}

/// A random query over the schema, and whether its order is defined.
fn query(rng: &mut Rng, tables: &[Tbl]) -> (String, bool) {
    let t0 = &tables[0];
    let mut scope: Vec<Scoped> = t0
        .cols
        .iter()
        .map(|c| (format!("t0.{}", c.name), c.kind))
        .collect();
    let mut from = "t0".to_string();
    if rng.chance(35) {
        let t1 = &tables[1];
        let kind = if rng.chance(40) { "LEFT JOIN" } else { "JOIN" };
        let on = if rng.chance(70) {
            "t1.ref = t0.id"
        } else {
            "t1.id = t0.id"
        };
        from = format!("t0 {kind} t1 ON {on}");
        scope.extend(t1.cols.iter().map(|c| (format!("t1.{}", c.name), c.kind)));
    }
    let mut sql = String::from("SELECT ");
    let grouped = rng.chance(30);
    let outputs: Vec<String>;
    if grouped {
        let (key, _) = rng.pick(&scope).clone();
        let (agg_col, agg_kind) = rng.pick(&scope).clone();
        let agg = match (agg_kind, rng.below(4)) {
            (_, 0) => "count(*)".to_string(),
            (Kind::Int, 1) => format!("sum({agg_col})"),
            (_, 2) => format!("min({agg_col})"),
            _ => format!("max({agg_col})"),
        };
        outputs = vec![key.clone(), agg.clone()];
        let _ = write!(sql, "{key}, {agg} FROM {from}");
        if rng.chance(40) {
            let _ = write!(sql, " WHERE {}", condition(rng, &scope, 2));
        }
        let _ = write!(sql, " GROUP BY {key}");
        if rng.chance(30) {
            let _ = write!(sql, " HAVING count(*) > {}", rng.below(3));
        }
    } else {
        let distinct = rng.chance(20);
        outputs = (0..1 + rng.below(3)).map(|_| output(rng, &scope)).collect();
        let _ = write!(
            sql,
            "{}{} FROM {from}",
            if distinct { "DISTINCT " } else { "" },
            outputs.join(", ")
        );
        if rng.chance(75) {
            let _ = write!(sql, " WHERE {}", condition(rng, &scope, 2));
        }
    }
    let ordered = rng.chance(40);
    if ordered {
        let keys: Vec<String> = (1..=outputs.len())
            .map(|i| {
                let dir = if rng.chance(50) { "ASC" } else { "DESC" };
                let nulls = if rng.chance(50) { "FIRST" } else { "LAST" };
                format!("{i} {dir} NULLS {nulls}")
            })
            .collect();
        let _ = write!(sql, " ORDER BY {}", keys.join(", "));
        if rng.chance(50) {
            let _ = write!(sql, " LIMIT {}", rng.below(6));
            if rng.chance(50) {
                let _ = write!(sql, " OFFSET {}", rng.below(4));
            }
        }
    }
    (sql, ordered)
}

fn ordo_rows(
    session: &mut Session<LocalStore<MemEngine>>,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let results = session.execute(sql).map_err(|e| e.to_string())?;
    let last = results.into_iter().last().ok_or("no result")?;
    Ok(last
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Null => "NULL".to_string(),
                    Value::Text(s) => format!("'{s}'"),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect())
}

fn sqlite_rows(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let mut statement = conn.prepare(sql).map_err(|e| e.to_string())?;
    let width = statement.column_count();
    let rows = statement
        .query_map([], |row| {
            (0..width)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_string(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(r) => r.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            format!("'{}'", String::from_utf8_lossy(t))
                        }
                        rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
                    })
                })
                .collect::<Result<Vec<String>, rusqlite::Error>>()
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

#[test]
fn random_queries_agree_with_sqlite() {
    let mut compared = 0;
    for seed in 0..SEEDS {
        let mut rng = Rng(seed);
        let tables = schema(&mut rng);
        let mut session = Session::new(LocalStore::open(MemEngine::new()).expect("store"));
        let sqlite = rusqlite::Connection::open_in_memory().expect("sqlite");
        for t in &tables {
            session.execute(&create(t, false)).expect("ordo create");
            sqlite.execute(&create(t, true), []).expect("sqlite create");
            for insert in inserts(&mut rng, t) {
                session.execute(&insert).expect("ordo insert");
                sqlite.execute(&insert, []).expect("sqlite insert");
            }
        }
        for _ in 0..QUERIES {
            let (sql, ordered) = query(&mut rng, &tables);
            let expected = sqlite_rows(&sqlite, &sql);
            let actual = ordo_rows(&mut session, &sql);
            let (mut expected, mut actual) = match (expected, actual) {
                (Ok(e), Ok(a)) => (e, a),
                (e, a) => panic!("seed {seed}: {sql}\n sqlite: {e:?}\n ordo: {a:?}"),
            };
            if !ordered {
                expected.sort();
                actual.sort();
            }
            assert_eq!(actual, expected, "seed {seed}: {sql}");
            compared += 1;
        }
    }
    assert_eq!(compared, SEEDS as usize * QUERIES);
}
