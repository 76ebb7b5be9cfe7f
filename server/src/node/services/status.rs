//! `ordo.v1.Status`: what the node is and how far it has got.

use crate::node::handles::Snapshots;
use ordo_log::{CodingParams, Sequencer};
use ordo_proto::v1::{GetStatusRequest, GetStatusResponse, status_server::Status};
use std::sync::Arc;
use tonic::{Request, Response};

/// Serves the node's status.
pub struct StatusService {
    snapshots: Snapshots,
    sequencer: Arc<dyn Sequencer>,
    role: &'static str,
    coding: CodingParams,
}

impl StatusService {
    /// Reports the replica's position in `snapshots` against `sequencer`'s
    /// tail, with the node's `role` and how it codes new entries.
    pub fn new(
        snapshots: Snapshots,
        sequencer: Arc<dyn Sequencer>,
        role: &'static str,
        coding: CodingParams,
    ) -> Self {
        Self {
            snapshots,
            sequencer,
            role,
            coding,
        }
    }
}

#[tonic::async_trait]
impl Status for StatusService {
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, tonic::Status> {
        let applied = self.snapshots.position();
        let log_tail = self.sequencer.tail();
        Ok(Response::new(GetStatusResponse {
            applied_version: applied.version,
            applied_seq: applied.next_seq,
            replay_lag: log_tail.saturating_sub(applied.next_seq),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: self.role.to_string(),
            log_tail,
            data_shards: u32::from(self.coding.data_shards),
            parity_shards: u32::from(self.coding.parity_shards),
            state_digest: applied.digest.to_vec(),
        }))
    }
}
