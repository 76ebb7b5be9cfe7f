//! # ordo-server: the `ordo` binary
//!
//! Everything a node does on the network, and the command-line client. The
//! storage and ordering logic lives in the library crates; this crate wires
//! them together and exposes them.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: parses it and hands each command to the
//!   node runtime or to a client-side command. The only module that sees
//!   both.
//! - [`node`]: the node runtime: roles, the commit path, the replica, the
//!   gRPC services, metrics, configuration.
//! - [`replay`]: `ordo replay`, the offline replay of a stopped node's log.
//! - [`commands`]: client-side commands (`kv`, `watch`, `stream`, `status`,
//!   `keygen`, `sql`), which speak only the protocol.
//!
//! Dependencies between these point one way: `cli` → `node`, `replay`,
//! `commands`; `replay` → `node`; `node` and `commands` know nothing of each
//! other. `tests/module_graph.rs` checks that no module imports loop.

pub mod cli;
pub mod commands;
pub mod node;
pub mod replay;
