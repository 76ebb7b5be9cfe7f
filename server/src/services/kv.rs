//! `ordo.v1.Kv`: reads of the replicated state as of a version.

use crate::node::NodeState;
use ordo_kv::Column;
use ordo_proto::v1::{GetRequest, GetResponse, kv_server::Kv};
use ordo_txn::limits::MAX_KEY_BYTES;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Longest a read waits for its `min_version` to be applied.
pub const MAX_VERSION_WAIT: Duration = Duration::from_secs(10);

/// Serves reads.
pub struct KvService {
    state: Arc<NodeState>,
}

impl KvService {
    /// A read service over the node's shared state.
    pub fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }

    /// Waits until `min_version` is applied; returns the applied version.
    async fn applied_at_least(&self, min_version: u64) -> Result<u64, Status> {
        let mut applied = self.state.applied.clone();
        let wait = applied.wait_for(|a| a.version >= min_version);
        match tokio::time::timeout(MAX_VERSION_WAIT, wait).await {
            Ok(Ok(position)) => Ok(position.version),
            Ok(Err(_)) => Err(Status::unavailable("the node's replica has stopped")),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "version {min_version} was not applied within {MAX_VERSION_WAIT:?} (applied: {})",
                self.state.applied.borrow().version
            ))),
        }
    }
}

fn stream_id(raw: &[u8]) -> Result<ordo_kv::StreamId, Status> {
    raw.try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "stream is {} bytes; stream ids are 32 bytes",
            raw.len()
        ))
    })
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let request = request.into_inner();
        let stream = stream_id(&request.stream)?;
        if request.key.len() > MAX_KEY_BYTES {
            return Err(Status::invalid_argument(format!(
                "key is {} bytes; the limit is {MAX_KEY_BYTES}",
                request.key.len()
            )));
        }
        let applied = self.applied_at_least(request.min_version).await?;
        let at = match request.version {
            0 => applied,
            v if v <= applied => v,
            v => {
                return Err(Status::out_of_range(format!(
                    "version {v} is not applied yet (applied: {applied}); pass min_version to wait for it"
                )));
            }
        };
        let found = self
            .state
            .state
            .get(Column::Data, &stream, &request.key, at)
            .map_err(|e| Status::internal(format!("reading the state: {e}")))?;
        let (value_version, value) = found.map_or((0, None), |v| (v.version, v.value));
        Ok(Response::new(GetResponse {
            found: value.is_some(),
            value: value.unwrap_or_default(),
            value_version,
            read_version: at,
        }))
    }
}
