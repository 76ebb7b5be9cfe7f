//! # ordo-kv: the multi-version key-value store
//!
//! The MVCC state that replaying the log produces: versioned keys grouped in
//! streams, read at any retained version. This crate knows nothing of the log,
//! transactions, gRPC or SQL; it stores what it is told, at the version it is
//! told, and answers reads at a version.
//!
//! ## Layout
//!
//! - [`keys`]: the order-preserving encoding of `(stream, key, version)`.
//! - [`engine`]: the storage seam, [`Engine`], with an in-memory and a
//!   RocksDB implementation; columns and atomic write batches.
//! - [`mvcc`]: reads at a version and bounded scans over any engine.
//! - `conformance`: the suite every [`Engine`] must pass (feature
//!   `conformance`).

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod engine;
pub mod keys;
pub mod mvcc;

pub use engine::{Column, Engine, EngineError, MemEngine, RocksEngine, WriteBatch};
pub use keys::StreamId;
pub use mvcc::{MvccError, MvccStore, Row, ScanPage, Versioned};
