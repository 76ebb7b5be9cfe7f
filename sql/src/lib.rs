//! # ordo-sql: the SQL surface
//!
//! SQL statements compiled into key-value reads and optimistic transactions.
//! The front end is sqlparser with the PostgreSQL dialect; tables, rows and
//! indexes are keys in one stream; each statement (or `BEGIN ... COMMIT`
//! block) commits through the log like any other ordo transaction, so SQL
//! gets the same serializability, durability and replay as the KV API.
//!
//! ## Layout
//!
//! - [`parse`]: script to statements, positioned errors, `AS OF VERSION`.
//! - [`types`]: column types and values (PostgreSQL semantics).
//! - [`encoding`]: where tables live in the store; order-preserving keys.
//! - [`catalog`]: table and index definitions.
//! - [`expr`]: compiled expressions and their evaluation.
//! - [`plan`]: names, types, access paths and operator trees (EXPLAIN).
//! - [`exec`]: running plans and row changes inside a transaction.
//! - [`store`]: the [`Store`] seam and the transaction buffer [`Txn`].
//! - [`session`]: statements, transaction blocks, commits ([`Session`]).
//! - [`local`]: an in-process [`Store`] over a replayer.
//! - [`system`]: read-only views of what replay keeps outside SQL's stream
//!   (`mining_rewards`).
//! - [`error`]: [`SqlError`] and its SQLSTATE codes.
//! - `conformance`: the suite every [`Store`] must pass (feature
//!   `conformance`).

pub mod catalog;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod encoding;
pub mod error;
pub mod exec;
pub mod expr;
pub mod local;
pub mod parse;
pub mod plan;
pub mod session;
pub mod store;
pub mod system;
pub mod types;

pub use error::SqlError;
pub use local::LocalStore;
pub use session::{AwaitingOutcome, PendingCommit, QueryResult, Session, Step, is_brief};
pub use store::{Commit, ReadSpan, ScanPage, Space, Store, Txn};
pub use types::{DataType, Value};
