//! Client-side commands: what `ordo` does as a client of some node. They
//! speak only the protocol, through [`ordo_client`] and [`ordo_proto`],
//! never through the node runtime ([`crate::node`]), so everything they do
//! another language's client can do too.
//!
//! ## Layout
//!
//! - [`target`]: which node, key and stream a command talks to.
//! - [`json`]: `--json` output, with the rule for bytes that are not text.
//! - [`kv`]: `ordo kv get|put|del|txn|scan`.
//! - [`watch`]: `ordo watch`.
//! - [`stream`]: `ordo stream ...`, streams and roles.
//! - [`status`]: `ordo status`.
//! - [`cluster`]: `ordo cluster init|status|add-node|promote|remove-node`.
//! - [`keygen`]: `ordo keygen`.
//! - [`chain`]: `ordo chain deploy|fund`, the log's contract on an EVM
//!   chain (through `ordo_evm`, not a node).
//! - [`sql`]: `ordo sql`, the interactive shell and script runner.
//! - [`mine`]: `ordo mine status|register|configure`, storage mining.
//! - [`retention`]: `ordo compact` and `ordo retention status|set`, how
//!   much history the log keeps.
//! - [`da`]: `ordo da put|status|get|verify`, blobs and their
//!   certificates (verified here, through `ordo_da`, trusting no node).

pub mod chain;
pub mod cluster;
pub mod da;
pub mod json;
pub mod keygen;
pub mod kv;
pub mod mine;
pub mod retention;
pub mod sql;
pub mod status;
pub mod stream;
pub mod target;
pub mod watch;
