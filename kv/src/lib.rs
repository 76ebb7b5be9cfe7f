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
//! - [`engine`]: the storage seam, [`Engine`], its in-memory
//!   implementation, columns and atomic write batches.
//! - `rocks`: the engine on RocksDB (feature `rocksdb`, on by default; off,
//!   the crate builds without any C++, e.g. for fuzzing).
//! - [`row`]: the stored form of a versioned row's value (put or tombstone).
//! - [`mvcc`]: reads at a version and bounded scans over any engine, with
//!   an optional cache of each key's newest version.
//! - [`newest`]: that cache, and why replay's writes keep it coherent.
//! - [`heads`]: each key's newest version in a column of its own, written
//!   off replay's path, so scans skip history.
//! - [`retention`]: the horizon below which history is given up, and the
//!   rule engines follow to remove what it gave up.
//! - `conformance`: the suite every [`Engine`] must pass (feature
//!   `conformance`).

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod engine;
pub mod heads;
pub mod keys;
pub mod mvcc;
pub mod newest;
pub mod retention;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod row;

pub use engine::{Column, Engine, EngineError, MemEngine, Next, WriteBatch};
pub use heads::{HeadsPhase, HeadsStats, HeadsStep};
pub use keys::StreamId;
pub use mvcc::{MvccError, MvccStore, Row, ScanPage, Versioned};
pub use newest::{NewestLimits, NewestStats, NewestVersions};
#[cfg(feature = "rocksdb")]
pub use rocks::RocksEngine;
