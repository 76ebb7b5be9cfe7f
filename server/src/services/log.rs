//! `ordo.v1.Log`: append raw entries and read the tail.

use crate::node::NodeState;
use ordo_log::{EntryError, LogError};
use ordo_proto::v1::{AppendRequest, AppendResponse, TailRequest, TailResponse, log_server::Log};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves appends to the node's log.
pub struct LogService {
    state: Arc<NodeState>,
}

impl LogService {
    /// A log service over the node's shared state.
    pub fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }
}

/// Turns the tags of a request into stream ids, refusing any that is not 32 bytes.
fn tags(raw: Vec<Vec<u8>>) -> Result<Vec<ordo_log::StreamId>, Status> {
    raw.into_iter()
        .enumerate()
        .map(|(i, tag)| {
            let len = tag.len();
            tag.try_into().map_err(|_| {
                Status::invalid_argument(format!("tag {i} is {len} bytes; stream ids are 32 bytes"))
            })
        })
        .collect()
}

/// The gRPC status for a failed append: the caller's fault or the node's.
fn append_status(error: EntryError) -> Status {
    match error {
        EntryError::Log(e @ (LogError::PayloadTooLarge { .. } | LogError::TooManyTags { .. })) => {
            Status::invalid_argument(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "append failed");
            Status::unavailable(format!("append failed: {other}"))
        }
    }
}

#[tonic::async_trait]
impl Log for LogService {
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let request = request.into_inner();
        let tags = tags(request.tags)?;
        // Raw appends carry no authenticated submitter; transactions inside
        // the payload carry their own signatures.
        let header = self
            .state
            .writer
            .append(request.payload, tags, [0; 20])
            .await
            .map_err(append_status)?;
        Ok(Response::new(AppendResponse {
            seq: header.seq,
            commitment: header.entry.commitment.to_vec(),
        }))
    }

    async fn tail(&self, _request: Request<TailRequest>) -> Result<Response<TailResponse>, Status> {
        Ok(Response::new(TailResponse {
            tail: self.state.sequencer.tail(),
        }))
    }
}
