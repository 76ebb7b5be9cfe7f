//! `ordo.v1.Status`: what the node is and how far it has got.

use crate::node::NodeState;
use ordo_proto::v1::{GetStatusRequest, GetStatusResponse, status_server::Status};
use std::sync::Arc;
use tonic::{Request, Response};

/// Serves the node's status.
pub struct StatusService {
    state: Arc<NodeState>,
}

impl StatusService {
    /// A status service over the node's shared state.
    pub fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Status for StatusService {
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, tonic::Status> {
        let state = &self.state;
        let applied = *state.applied.borrow();
        let log_tail = state.sequencer.tail();
        Ok(Response::new(GetStatusResponse {
            applied_version: applied.version,
            applied_seq: applied.next_seq,
            replay_lag: log_tail.saturating_sub(applied.next_seq),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: state.role.to_string(),
            log_tail,
            data_shards: u32::from(state.coding.data_shards),
            parity_shards: u32::from(state.coding.parity_shards),
        }))
    }
}
