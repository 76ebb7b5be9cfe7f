//! Planning: from sqlparser's syntax tree to a tree of operators over rows.
//!
//! Planning resolves names, checks types, chooses how each table is read
//! (a primary-key point or range, an index, or a full scan) and builds the
//! operators a query needs. EXPLAIN prints the same tree the executor runs,
//! so what it shows is what happens.
//!
//! ## Layout
//!
//! - [`tree`]: the plan types ([`Plan`], [`Access`], [`Scope`]) and EXPLAIN.
//! - [`compile`](mod@compile): the expression compiler and SQL names and types.
//! - [`query`]: planning a query ([`plan_query`]): FROM, joins, WHERE,
//!   grouping, ORDER BY, LIMIT.
//! - [`access`]: choosing each table's access path from its predicate.
//!
//! Dependencies inside: `query` uses the other three, `access` and
//! `compile` use `tree`, and `tree` uses none of them.

pub mod access;
pub mod compile;
pub mod query;
pub mod tree;

pub use access::{choose_access, conjuncts};
pub use compile::{Grouping, compile, constant, data_type, has_aggregate, ident, object_name};
pub use query::{Tables, plan_query};
pub use tree::{Access, Agg, AggFunc, OutputColumn, Plan, QueryPlan, Scope, ScopeColumn, SortKey};

#[cfg(test)]
mod tests;
