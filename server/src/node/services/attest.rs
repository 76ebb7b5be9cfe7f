//! `ordo.cluster.v1.Attest`: a voter signs a blob certificate's statement
//! once it has checked every header in it against its own committed
//! order. A quorum of these signatures is what makes a cluster's
//! certificate checkable with no trust in the gateway that issued it.

use ordo_da::certificate::{Statement, log_id};
use ordo_log::Sequencer;
use ordo_proto::cluster::v1::{
    SignStatementRequest, SignStatementResponse, SigningKeyRequest, SigningKeyResponse,
    attest_server::Attest,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves a voter's signatures.
pub struct AttestService {
    order: Arc<dyn Sequencer>,
    key: crate::node::gateway::NodeKey,
}

impl AttestService {
    /// Signs with `key` what `order` (the voter's committed headers) shows.
    pub fn new(order: Arc<dyn Sequencer>, key: crate::node::gateway::NodeKey) -> Self {
        Self { order, key }
    }

    /// The voter's committed header at `seq`, encoded.
    async fn header(&self, seq: u64) -> Result<Vec<u8>, Status> {
        if seq >= self.order.tail() {
            return Err(Status::failed_precondition(format!(
                "entry {seq} is not committed in this voter's order (its tail is {})",
                self.order.tail()
            )));
        }
        let headers = (self.order.read(seq, 1).await)
            .map_err(|e| Status::unavailable(format!("reading entry {seq}: {e}")))?;
        headers
            .first()
            .map(|h| h.encode())
            .ok_or_else(|| Status::unavailable(format!("entry {seq} could not be read")))
    }

    /// Refuses `statement` unless this voter's order holds exactly its
    /// log and headers.
    async fn check(&self, statement: &Statement) -> Result<(), Status> {
        if log_id(&self.header(0).await?) != statement.log {
            return Err(Status::failed_precondition(
                "the statement names another log than this voter orders",
            ));
        }
        for (i, bytes) in statement.headers.iter().enumerate() {
            let header = ordo_log::EntryHeader::decode(bytes)
                .map_err(|e| Status::invalid_argument(format!("header {i}: {e}")))?;
            if self.header(header.seq).await? != *bytes {
                return Err(Status::failed_precondition(format!(
                    "header {i} is not this voter's entry {}",
                    header.seq
                )));
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Attest for AttestService {
    async fn sign_statement(
        &self,
        request: Request<SignStatementRequest>,
    ) -> Result<Response<SignStatementResponse>, Status> {
        let statement = Statement::decode(&request.into_inner().statement)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.check(&statement).await?;
        let signature = ordo_txn::sign::sign_hash(statement.hash(), &self.key.key)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(SignStatementResponse {
            signature: signature.to_vec(),
            signer: self.key.address.to_vec(),
        }))
    }

    async fn signing_key(
        &self,
        _request: Request<SigningKeyRequest>,
    ) -> Result<Response<SigningKeyResponse>, Status> {
        Ok(Response::new(SigningKeyResponse {
            signer: self.key.address.to_vec(),
        }))
    }
}
