//! # ordo-server: the `ordo` binary
//!
//! Everything a node does on the network: command line, node roles, gRPC
//! services. The storage and ordering logic lives in the library crates; this
//! crate wires them together and exposes them.
//!
//! ## Layout
//!
//! - [`cli`]: the command line (`ordo dev`, `ordo status`, ...).
//! - [`commits`]: server-side batching of commits and the wait for
//!   their decision.
//! - [`config`]: `ordo dev`'s TOML file and how it combines with flags.
//! - [`kvcli`]: `ordo keygen` and the `ordo kv` commands.
//! - [`metrics`]: Prometheus metrics over HTTP.
//! - [`node`]: starting a node: opening its stores, serving gRPC, stopping
//!   cleanly on SIGINT/SIGTERM.
//! - [`replica`]: following the log into MVCC state.
//! - [`sql`]: the SQL store over the node, and the key SQL signs with.
//! - [`sqlshell`]: `ordo sql`, the interactive shell and script runner.
//! - [`verified`]: signatures already checked here, which the replica
//!   need not recover again.
//! - [`streamcli`]: the `ordo stream` commands.
//! - [`services`]: the tonic service implementations.

pub mod cli;
pub mod commits;
pub mod config;
pub mod kvcli;
pub mod metrics;
pub mod node;
pub mod replica;
pub mod services;
pub mod sql;
pub mod sqlshell;
pub mod streamcli;
pub mod verified;
