//! # ordo-sql: the SQL surface
//!
//! SQL statements compiled into key-value reads and optimistic transactions.
//! The front end is sqlparser with the PostgreSQL dialect; this crate turns
//! its errors into ones that point at a line and column, and refuses input
//! over its limits before parsing.
//!
//! ## Layout
//!
//! - [`parse`]: parse a script into statements with positioned errors.

pub mod parse;
