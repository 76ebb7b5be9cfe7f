//! The gRPC services of a node.

mod acl;
mod kv;
mod log;
mod sql;
mod status;
mod txn;

pub use acl::AclService;
pub use kv::{KvService, MAX_VERSION_WAIT};
pub use log::LogService;
pub use sql::{ROWS_PER_MESSAGE, SqlService};
pub use status::StatusService;
pub use txn::TxnService;

/// Largest request a node accepts (a raw log entry of the maximum payload
/// size plus framing); tonic's 4 MiB default would refuse big entries.
pub const MAX_REQUEST_BYTES: usize = ordo_log::limits::MAX_PAYLOAD_BYTES as usize + 64 * 1024;
