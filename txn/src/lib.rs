//! # ordo-txn: transactions and the deterministic replayer
//!
//! Transactions are recorded in the log and decided only when the log is
//! replayed, identically on every replica. This crate owns their canonical
//! encoding; validation and replay build on it.
//!
//! ## Layout
//!
//! - [`codec`]: the bounded, canonical byte reader and writer every record
//!   encoding in this crate is written with.

pub mod codec;
