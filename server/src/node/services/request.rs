//! Checks every read service applies to a request: sizes of keys and ids,
//! and the version a read runs at.

use crate::node::handles::Snapshots;
use ordo_txn::limits::MAX_KEY_BYTES;
use std::time::Duration;
use tonic::Status;

/// The status of a failed state read: `OUT_OF_RANGE` naming the oldest
/// readable version (metadata [`ordo_proto::OLDEST_VERSION_METADATA`]) for a version
/// below the retention horizon, `INTERNAL` for anything else.
pub fn state_error(e: ordo_kv::MvccError) -> Status {
    match e {
        ordo_kv::MvccError::Compacted { oldest, .. } => compacted(e.to_string(), oldest),
        e => Status::internal(format!("reading the state: {e}")),
    }
}

/// `OUT_OF_RANGE` with `message`, naming `oldest` in the metadata.
pub fn compacted(message: String, oldest: u64) -> Status {
    let mut status = Status::out_of_range(message);
    status
        .metadata_mut()
        .insert(ordo_proto::OLDEST_VERSION_METADATA, oldest.into());
    status
}

/// Longest a read waits for its `min_version` to be applied.
pub const MAX_VERSION_WAIT: Duration = Duration::from_secs(10);

/// The version to read at: `version` (0: the latest applied), after
/// waiting for `min_version`. A version not yet applied is refused.
pub async fn read_version(
    snapshots: &Snapshots,
    version: u64,
    min_version: u64,
) -> Result<u64, Status> {
    let applied = applied_at_least(snapshots, min_version).await?;
    match version {
        0 => Ok(applied),
        v if v <= applied => Ok(v),
        v => Err(Status::out_of_range(format!(
            "version {v} is not applied yet (applied: {applied}); pass min_version to wait for it"
        ))),
    }
}

/// Refuses reads of a stream that does not exist (yet) at `at`, so that a
/// mistyped stream id is NOT_FOUND rather than an empty answer.
pub fn require_stream(
    snapshots: &Snapshots,
    stream: &ordo_kv::StreamId,
    at: u64,
) -> Result<(), Status> {
    if snapshots.streams.exists_at(stream, at) {
        return Ok(());
    }
    let exists =
        ordo_txn::replay::fact_holds(&snapshots.state, stream, &ordo_txn::Fact::Exists, at)
            .map_err(state_error)?;
    if exists {
        snapshots.streams.saw(stream, at);
        Ok(())
    } else {
        let id: String = stream.iter().map(|b| format!("{b:02x}")).collect();
        Err(Status::not_found(format!(
            "stream {id} does not exist at version {at}"
        )))
    }
}

/// Waits until `min_version` is applied; returns the applied version.
async fn applied_at_least(snapshots: &Snapshots, min_version: u64) -> Result<u64, Status> {
    let mut applied = snapshots.applied.clone();
    let wait = applied.wait_for(|a| a.version >= min_version);
    match tokio::time::timeout(MAX_VERSION_WAIT, wait).await {
        Ok(Ok(position)) => Ok(position.version),
        Ok(Err(_)) => Err(Status::unavailable("the node's replica has stopped")),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "version {min_version} was not applied within {MAX_VERSION_WAIT:?} (applied: {})",
            snapshots.latest_version()
        ))),
    }
}

/// Refuses a key longer than [`MAX_KEY_BYTES`].
pub fn check_key(key: &[u8]) -> Result<&[u8], Status> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Status::invalid_argument(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

/// A stream id from its wire form, which must be 32 bytes.
pub fn stream_id(raw: &[u8]) -> Result<ordo_kv::StreamId, Status> {
    raw.try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "stream is {} bytes; stream ids are 32 bytes",
            raw.len()
        ))
    })
}
