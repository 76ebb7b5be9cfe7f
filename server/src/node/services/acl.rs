//! `ordo.v1.Acl`: role queries as of a version.

use crate::node::handles::Snapshots;
use crate::node::services::request::{check_key, read_version, state_error, stream_id};
use ordo_proto::v1::{AclAnswer, AclQuery, acl_server::Acl};
use ordo_txn::Fact;
use ordo_txn::acl::{AclView, FactMap};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves access-control queries.
pub struct AclService {
    snapshots: Snapshots,
}

impl AclService {
    /// A query service over the replicated state.
    pub fn new(snapshots: Snapshots) -> Self {
        Self { snapshots }
    }

    /// Answers `question` for the query's stream at its version.
    async fn answer(
        &self,
        query: AclQuery,
        question: impl FnOnce(
            &AclView<'_, Arc<ordo_kv::RocksEngine>>,
            &ordo_kv::StreamId,
            [u8; 20],
            Vec<u8>,
        ) -> Result<bool, ordo_kv::MvccError>,
    ) -> Result<Response<AclAnswer>, Status> {
        let stream = stream_id(&query.stream)?;
        let account: [u8; 20] = match query.account.len() {
            0 => [0; 20],
            _ => query.account.as_slice().try_into().map_err(|_| {
                Status::invalid_argument(format!(
                    "account is {} bytes; addresses are 20 bytes",
                    query.account.len()
                ))
            })?,
        };
        let key = check_key(&query.key)?.to_vec();
        let at = read_version(&self.snapshots, query.version, query.min_version).await?;
        let no_overlay = FactMap::default();
        let view = AclView::new(&self.snapshots.state, &no_overlay, None, at);
        let holds = question(&view, &stream, account, key).map_err(state_error)?;
        Ok(Response::new(AclAnswer {
            holds,
            read_version: at,
        }))
    }
}

#[tonic::async_trait]
impl Acl for AclService {
    async fn stream_exists(
        &self,
        request: Request<AclQuery>,
    ) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, _, _| {
            view.holds(stream, &Fact::Exists)
        })
        .await
    }

    async fn is_admin(&self, request: Request<AclQuery>) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, who, _| {
            view.holds(stream, &Fact::Admin(who))
        })
        .await
    }

    async fn is_writer(&self, request: Request<AclQuery>) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, who, _| {
            view.holds(stream, &Fact::Writer(who))
        })
        .await
    }

    async fn is_special_key(
        &self,
        request: Request<AclQuery>,
    ) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, _, key| {
            view.holds(stream, &Fact::SpecialKey(key))
        })
        .await
    }

    async fn is_special_writer(
        &self,
        request: Request<AclQuery>,
    ) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, who, key| {
            view.holds(stream, &Fact::SpecialWriter(who, key))
        })
        .await
    }

    async fn can_write(&self, request: Request<AclQuery>) -> Result<Response<AclAnswer>, Status> {
        self.answer(request.into_inner(), |view, stream, who, key| {
            Ok(view.holds(stream, &Fact::Exists)? && view.may_write(&who, stream, &key)?)
        })
        .await
    }
}
