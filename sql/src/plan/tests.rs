//! Unit tests of the planner's pieces: access-path choice, the expression
//! compiler, query planning and EXPLAIN, on a catalog held in memory.

use super::*;
use crate::catalog::{IndexName, NewColumn, NewIndex, Table};
use crate::error::SqlError;
use crate::expr::Expr;
use crate::types::{DataType, Value};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// `accounts (id BIGINT PRIMARY KEY, owner TEXT, balance BIGINT)` with an
/// index on `owner`.
fn accounts() -> Table {
    let mut t = Table::new(1, "accounts").expect("name");
    for (name, data_type) in [
        ("id", DataType::BigInt),
        ("owner", DataType::Text),
        ("balance", DataType::BigInt),
    ] {
        let column = NewColumn {
            name: name.into(),
            data_type,
            not_null: false,
            default: Value::Null,
        };
        t.add_column(column).expect("column");
    }
    t.set_primary_key(vec![0]).expect("key");
    let index = NewIndex {
        name: IndexName::Given("by_owner".into()),
        columns: vec![1],
        unique: false,
    };
    t.add_index(index, &|_| false).expect("index");
    t
}

/// A catalog of the tables given.
struct Catalog(Vec<Table>);

impl Tables for Catalog {
    fn table(&mut self, name: &str) -> Result<Table, SqlError> {
        let found = self.0.iter().find(|t| t.name == name).cloned();
        found.ok_or_else(|| SqlError::UnknownTable(name.into()))
    }
}

fn parser(sql: &str) -> Parser<'static> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .expect("tokenizes")
}

fn plan(sql: &str) -> Result<QueryPlan, SqlError> {
    let query = parser(sql).parse_query().expect("parses");
    plan_query(&mut Catalog(vec![accounts()]), &query)
}

fn predicate(sql: &str) -> Expr {
    let scope = Scope::of_table(&accounts(), "accounts");
    compile(&scope, &parser(sql).parse_expr().expect("parses"))
        .expect("compiles")
        .0
}

fn access(where_clause: &str) -> Access {
    let scan = Plan::Scan {
        table: accounts(),
        alias: "accounts".into(),
        access: Access::Full,
    };
    match choose_access(scan, &predicate(where_clause)) {
        Plan::Scan { access, .. } => access,
        other => panic!("a scan stays a scan: {other:?}"),
    }
}

#[test]
fn equal_keys_become_point_lookups() {
    assert_eq!(
        access("id = 5"),
        Access::PkPoints(vec![vec![Value::Int(5)]])
    );
    let both = Access::PkPoints(vec![vec![Value::Int(1)], vec![Value::Int(2)]]);
    assert_eq!(access("id IN (1, 2)"), both);
}

#[test]
fn key_bounds_become_one_range_scan() {
    let range = Access::PkRange {
        prefix: vec![],
        lower: Some((Value::Int(3), false)),
        upper: Some((Value::Int(9), true)),
    };
    assert_eq!(access("id > 3 AND id <= 9 AND balance > 0"), range);
}

#[test]
fn an_indexed_equality_uses_the_index() {
    assert!(
        matches!(access("owner = 'ann'"), Access::IndexEq { index, .. } if index.name == "by_owner")
    );
}

#[test]
fn what_no_key_or_index_can_answer_exactly_scans_everything() {
    for clause in [
        "balance > 0",
        "id = 1.5",
        "id = 5 OR id = 6",
        "owner <> 'ann'",
    ] {
        assert_eq!(access(clause), Access::Full, "{clause}");
    }
}

#[test]
fn names_fold_to_lower_case_unless_quoted() {
    assert_eq!(ident(&ast::Ident::new("MiXed")), "mixed");
    assert_eq!(ident(&ast::Ident::with_quote('"', "MiXed")), "MiXed");
}

#[test]
fn the_compiler_checks_names_and_types() {
    let scope = Scope::of_table(&accounts(), "accounts");
    let compile_text = |sql: &str| compile(&scope, &parser(sql).parse_expr().expect("parses"));
    assert!(matches!(
        compile_text("nope = 1"),
        Err(SqlError::UnknownColumn(_))
    ));
    assert!(
        compile_text("owner LIKE 1").is_ok(),
        "a pattern may be any expression"
    );
    assert!(matches!(
        compile_text("balance LIKE 'a%'"),
        Err(SqlError::TypeMismatch { .. })
    ));
    let (_, ty) = compile_text("balance BETWEEN 1 AND 2").expect("compiles");
    assert_eq!(ty, Some(DataType::Boolean));
}

#[test]
fn aggregates_are_found_in_the_tree_not_the_text() {
    let has = |sql: &str| has_aggregate(&parser(sql).parse_expr().expect("parses"));
    assert!(has("max(balance) + 1"));
    assert!(!has("'max(balance)'"));
}

#[test]
fn a_grouped_query_stacks_aggregate_sort_and_limit() {
    let planned =
        plan("SELECT owner, count(*) FROM accounts GROUP BY owner ORDER BY 2 DESC LIMIT 3")
            .expect("plans");
    let lines = planned.plan.explain();
    let heads: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start_matches([' ', '-', '>']))
        .collect();
    assert!(heads[0].starts_with("Limit 3"), "{lines:?}");
    assert!(heads[1].starts_with("Sort by #2 DESC"), "{lines:?}");
    assert!(heads[2].starts_with("Project"), "{lines:?}");
    assert!(heads[3].starts_with("Aggregate by"), "{lines:?}");
    let names: Vec<&str> = planned.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["owner", "count"]);
}

#[test]
fn ordering_by_a_column_not_selected_keeps_only_the_outputs() {
    let planned = plan("SELECT owner FROM accounts ORDER BY balance").expect("plans");
    assert!(
        matches!(planned.plan, Plan::Keep { width: 1, .. }),
        "{:?}",
        planned.plan
    );
    assert_eq!(planned.columns.len(), 1);
}

#[test]
fn distinct_cannot_order_by_a_column_it_does_not_select() {
    let refused = plan("SELECT DISTINCT owner FROM accounts ORDER BY balance");
    assert!(
        matches!(refused, Err(SqlError::InvalidDefinition(_))),
        "{refused:?}"
    );
}

#[test]
fn where_must_be_boolean() {
    let refused = plan("SELECT id FROM accounts WHERE balance");
    assert!(
        matches!(refused, Err(SqlError::TypeMismatch { .. })),
        "{refused:?}"
    );
}

#[test]
fn an_equi_join_is_a_hash_join_over_both_inputs() {
    let planned =
        plan("SELECT a.id FROM accounts a JOIN accounts b ON a.id = b.balance").expect("plans");
    let lines = planned.plan.explain();
    assert!(lines[1].contains("Hash Inner join on"), "{lines:?}");
    let scans = lines.iter().filter(|l| l.contains("Full scan")).count();
    assert_eq!(scans, 2, "{lines:?}");
}
