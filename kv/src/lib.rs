//! # ordo-kv: the multi-version key-value store
//!
//! The MVCC state that replaying the log produces: versioned keys grouped in
//! streams, read at any retained version. This crate knows nothing of the log,
//! transactions, gRPC or SQL; it stores what it is told, at the version it is
//! told.
//!
//! ## Layout
//!
//! - [`keys`]: the order-preserving encoding of `(stream, key, version)` into
//!   one RocksDB key, so that a forward scan meets each key's newest version
//!   first and keys of one stream sort together in byte order.

pub mod keys;
