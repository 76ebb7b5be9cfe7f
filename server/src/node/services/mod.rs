//! The gRPC services of a node.
//!
//! Each service is built from the handles it uses (see
//! [`crate::node::handles`]), never from the whole node.
//!
//! ## Layout
//!
//! - [`acl`] serves `ordo.v1.Acl`: role queries as of a version.
//! - [`attest`] serves `ordo.cluster.v1.Attest`: a voter's signature on a
//!   blob certificate's statement, after checking it against its order.
//! - [`da`] serves `ordo.v1.Da`: dispersal, status, retrieval and
//!   certificates of blobs.
//! - [`kv`] serves `ordo.v1.Kv`: reads, scans and watch.
//! - [`log`] serves `ordo.v1.Log`: raw entries and the tail.
//! - [`request`] holds the checks the read services share (key and id
//!   sizes, the version a read runs at).
//! - [`shards`] serves `ordo.cluster.v1.Shards`: a storage node's shards,
//!   verified on the way in and on the way out.
//! - [`sql`] serves `ordo.v1.Sql`: SQL sessions.
//! - [`status`] serves `ordo.v1.Status`: the node's role and progress.
//! - [`txn`] serves `ordo.v1.Txn`: begin and commit.

pub mod acl;
pub mod attest;
pub mod da;
pub mod decision;
pub mod kv;
pub mod log;
pub mod request;
pub mod session;
pub mod shards;
pub mod sql;
pub mod status;
pub mod txn;

/// Largest request a node accepts (a raw log entry of the maximum payload
/// size plus framing); tonic's 4 MiB default would refuse big entries.
pub const MAX_REQUEST_BYTES: usize = ordo_log::limits::MAX_PAYLOAD_BYTES as usize + 64 * 1024;

/// Turns true when the node starts to stop: the long-lived streams
/// (commit sessions, SQL sessions, watches) end then, so that none holds the node's graceful
/// shutdown open until its grace runs out.
pub type Stopping = tokio::sync::watch::Receiver<bool>;

/// A stop signal that never turns true, for a service built without one.
pub fn never_stopping() -> Stopping {
    tokio::sync::watch::channel(false).1
}

/// Resolves once `stopping` turns true; never if its sender is gone
/// without it (a service built without a stop signal). Unlike the
/// server's own wait in `run`, a dropped sender is not a stop here: a
/// service outlives no server, but may be built without one.
pub async fn stop_signalled(mut stopping: Stopping) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
