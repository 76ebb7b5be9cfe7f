//! `ordo.cluster.v1.Shards`: a storage node's shards over gRPC, served
//! from its [`ShardStore`].
//!
//! Nothing unverified crosses this service in either direction: a put is
//! checked against the commitment and geometry it names before anything is
//! stored, and a get checks what is stored against the commitment and
//! geometry the caller names before sending it. A stored shard that no
//! longer verifies (a damaged disk) is answered DATA_LOSS, logged and
//! counted, never sent.

use ordo_log::limits::MAX_PROOF_HASHES;
use ordo_log::{Geometry, Hash, Shard, ShardStore, verify_shard};
use ordo_proto::cluster::v1::shards_server::Shards;
use ordo_proto::cluster::v1::{
    CheckShardsRequest, CheckShardsResponse, HasShardResponse, IdentifyRequest, IdentifyResponse,
    ListShardsRequest, ListShardsResponse, PutShardAnswer, PutShardRequest, PutShardResponse,
    ShardKey, ShardMessage, ShardState,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::{Request, Response, Status};

/// Keys one `Check` may name. Each costs a store lookup (and, verifying,
/// a read and a hash of the shard) on the blocking pool in one call: 4,096
/// shards of the largest entries are about 64 MiB read, a few hundred
/// milliseconds of one core; of typical entries, a few milliseconds.
pub const MAX_CHECK_KEYS: usize = 4096;

/// Answers one `PutMany` stream may hold while its caller has not read
/// them; the member stops reading puts until it does. A gateway keeps one
/// put per entry in flight on each stream, a few entries at most.
pub const MAX_PUTS_AHEAD: usize = 64;

/// What a storage node counts, for its metrics page.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Shards verified and stored.
    pub stored: AtomicU64,
    /// Puts refused because the shard did not verify.
    pub refused: AtomicU64,
    /// Stored shards a get or a check found damaged (not served).
    pub damaged: AtomicU64,
    /// Shards looked up or verified by `Check` calls (repair's work here).
    pub checked: AtomicU64,
    /// Shards a get served (verified).
    pub served: AtomicU64,
}

impl ShardCounters {
    /// The counters in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        use crate::node::metrics::counter;
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            out,
            "ordo_storage_shards_stored_total",
            "Shards verified and stored.",
            read(&self.stored),
        );
        counter(
            out,
            "ordo_storage_shards_refused_total",
            "Puts refused: the shard did not verify.",
            read(&self.refused),
        );
        counter(
            out,
            "ordo_storage_shards_damaged_total",
            "Stored shards found damaged on read, not served.",
            read(&self.damaged),
        );
        counter(
            out,
            "ordo_storage_shards_checked_total",
            "Shards looked up or verified for a Check call (repair).",
            read(&self.checked),
        );
        counter(
            out,
            "ordo_storage_shards_served_total",
            "Shards served by a get, verified.",
            read(&self.served),
        );
    }
}

/// The shard service over one store.
pub struct ShardService {
    store: Arc<dyn ShardStore>,
    counters: Arc<ShardCounters>,
    /// Drawn when the service starts: tells repair this process is not the
    /// one it asked before.
    boot_id: [u8; 16],
}

impl ShardService {
    /// Serves `store`, counting into `counters`.
    pub fn new(store: Arc<dyn ShardStore>, counters: Arc<ShardCounters>) -> Self {
        Self {
            store,
            counters,
            boot_id: rand::random(),
        }
    }

    /// Runs a store call on the blocking pool: stores sync to disk.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn ShardStore) -> Result<T, ordo_log::StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        on_blocking_pool(self.store.clone(), call).await
    }
}

/// Runs a call of `store` on the blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    store: Arc<dyn ShardStore>,
    call: impl FnOnce(&dyn ShardStore) -> Result<T, ordo_log::StoreError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(move || call(&*store))
        .await
        .map_err(|e| Status::internal(format!("shard store task: {e}")))?
        .map_err(|e| Status::internal(e.to_string()))
}

fn commitment_of(bytes: &[u8]) -> Result<Hash, Status> {
    bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("a commitment is 32 bytes, not {}", bytes.len()))
    })
}

fn geometry_of(bytes: &[u8]) -> Result<Geometry, Status> {
    let bytes: &[u8; 16] = bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("a geometry is 16 bytes, not {}", bytes.len()))
    })?;
    Geometry::from_bytes(bytes).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn index_of(index: u32) -> Result<u16, Status> {
    u16::try_from(index)
        .map_err(|_| Status::invalid_argument(format!("shard index {index} is out of range")))
}

/// The shard a message carries, its shape checked (its content is checked
/// against the commitment by the caller): the inverse of [`message_of`].
pub fn shard_of(message: ShardMessage) -> Result<Shard, Status> {
    if message.proof.len() > MAX_PROOF_HASHES {
        return Err(Status::invalid_argument(format!(
            "a proof of {} hashes; at most {MAX_PROOF_HASHES}",
            message.proof.len()
        )));
    }
    let proof = message
        .proof
        .iter()
        .map(|hash| commitment_of(hash))
        .collect::<Result<_, _>>()?;
    Ok(Shard {
        index: index_of(message.index)?,
        bytes: message.data,
        proof,
    })
}

/// The wire form of a shard.
pub fn message_of(shard: Shard) -> ShardMessage {
    ShardMessage {
        index: u32::from(shard.index),
        data: shard.bytes,
        proof: shard.proof.iter().map(|hash| hash.to_vec()).collect(),
    }
}

/// A key's parts, checked: the commitment, the geometry and the index.
fn parts_of(key: &ShardKey) -> Result<(Hash, Geometry, u16), Status> {
    Ok((
        commitment_of(&key.commitment)?,
        geometry_of(&key.geometry)?,
        index_of(key.index)?,
    ))
}

/// The state of one shard in `store`; a damaged one is counted and logged.
fn shard_state(
    store: &dyn ShardStore,
    (commitment, geometry, index): &(Hash, Geometry, u16),
    verify: bool,
    counters: &ShardCounters,
) -> Result<ShardState, ordo_log::StoreError> {
    if !verify {
        return Ok(match store.has(commitment, *index)? {
            true => ShardState::Held,
            false => ShardState::Missing,
        });
    }
    let Some(shard) = store.get(commitment, *index)? else {
        return Ok(ShardState::Missing);
    };
    match verify_shard(commitment, geometry, &shard) {
        Ok(()) => Ok(ShardState::Held),
        Err(e) => {
            found_damaged(counters, commitment, *index, &e);
            Ok(ShardState::Damaged)
        }
    }
}

/// Verifies and stores one shard: durable when it returns `Ok`.
async fn put_one(
    store: Arc<dyn ShardStore>,
    counters: &ShardCounters,
    request: PutShardRequest,
) -> Result<(), Status> {
    let commitment = commitment_of(&request.commitment)?;
    let geometry = geometry_of(&request.geometry)?;
    let message = request
        .shard
        .ok_or_else(|| Status::invalid_argument("no shard"))?;
    let shard = shard_of(message)?;
    if let Err(e) = verify_shard(&commitment, &geometry, &shard) {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return Err(Status::invalid_argument(format!(
            "the shard does not verify: {e}"
        )));
    }
    on_blocking_pool(store, move |store| store.put(&commitment, &shard)).await?;
    counters.stored.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Puts each shard `puts` brings, in order, answering each on `answers`,
/// until the caller closes its side (or stops reading the answers).
async fn answer_puts(
    store: Arc<dyn ShardStore>,
    counters: Arc<ShardCounters>,
    mut puts: tonic::Streaming<PutShardRequest>,
    answers: tokio::sync::mpsc::Sender<Result<PutShardAnswer, Status>>,
) {
    loop {
        let request = match puts.message().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(status) => {
                let _ = answers.send(Err(status)).await;
                return;
            }
        };
        let answer = match put_one(store.clone(), &counters, request).await {
            Ok(()) => PutShardAnswer::default(),
            Err(status) => PutShardAnswer {
                code: status.code() as i32,
                message: status.message().to_string(),
            },
        };
        if answers.send(Ok(answer)).await.is_err() {
            return;
        }
    }
}

fn found_damaged(counters: &ShardCounters, commitment: &Hash, index: u16, e: &ordo_log::LogError) {
    counters.damaged.fetch_add(1, Ordering::Relaxed);
    tracing::error!(commitment = %ordo_log::hex(commitment), index, error = %e, "a stored shard fails verification");
}

#[tonic::async_trait]
impl Shards for ShardService {
    async fn put(
        &self,
        request: Request<PutShardRequest>,
    ) -> Result<Response<PutShardResponse>, Status> {
        put_one(self.store.clone(), &self.counters, request.into_inner()).await?;
        Ok(Response::new(PutShardResponse {}))
    }

    type PutManyStream = tokio_stream::wrappers::ReceiverStream<Result<PutShardAnswer, Status>>;

    async fn put_many(
        &self,
        request: Request<tonic::Streaming<PutShardRequest>>,
    ) -> Result<Response<Self::PutManyStream>, Status> {
        let (answers, stream) = tokio::sync::mpsc::channel(MAX_PUTS_AHEAD);
        let (store, counters) = (self.store.clone(), self.counters.clone());
        tokio::spawn(answer_puts(store, counters, request.into_inner(), answers));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            stream,
        )))
    }

    async fn get(&self, request: Request<ShardKey>) -> Result<Response<ShardMessage>, Status> {
        let key = request.into_inner();
        let commitment = commitment_of(&key.commitment)?;
        let geometry = geometry_of(&key.geometry)?;
        let index = index_of(key.index)?;
        let stored = self
            .blocking(move |store| store.get(&commitment, index))
            .await?;
        let shard = stored.ok_or_else(|| Status::not_found("shard not held"))?;
        if let Err(e) = verify_shard(&commitment, &geometry, &shard) {
            found_damaged(&self.counters, &commitment, index, &e);
            return Err(Status::data_loss(format!(
                "the stored shard fails verification: {e}"
            )));
        }
        self.counters.served.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(message_of(shard)))
    }

    async fn has(&self, request: Request<ShardKey>) -> Result<Response<HasShardResponse>, Status> {
        let key = request.into_inner();
        let commitment = commitment_of(&key.commitment)?;
        let index = index_of(key.index)?;
        let held = self
            .blocking(move |store| store.has(&commitment, index))
            .await?;
        Ok(Response::new(HasShardResponse { held }))
    }

    async fn list(
        &self,
        request: Request<ListShardsRequest>,
    ) -> Result<Response<ListShardsResponse>, Status> {
        let commitment = commitment_of(&request.into_inner().commitment)?;
        let indices = self.blocking(move |store| store.list(&commitment)).await?;
        Ok(Response::new(ListShardsResponse {
            indices: indices.into_iter().map(u32::from).collect(),
        }))
    }

    async fn check(
        &self,
        request: Request<CheckShardsRequest>,
    ) -> Result<Response<CheckShardsResponse>, Status> {
        let request = request.into_inner();
        if request.keys.len() > MAX_CHECK_KEYS {
            return Err(Status::invalid_argument(format!(
                "{} keys in one check; at most {MAX_CHECK_KEYS}",
                request.keys.len()
            )));
        }
        let keys = (request.keys.iter().map(parts_of)).collect::<Result<Vec<_>, _>>()?;
        let (verify, counters) = (request.verify, self.counters.clone());
        (self.counters.checked).fetch_add(keys.len() as u64, Ordering::Relaxed);
        let states = self
            .blocking(move |store| {
                keys.iter()
                    .map(|key| shard_state(store, key, verify, &counters).map(i32::from))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(Response::new(CheckShardsResponse { states }))
    }

    async fn identify(
        &self,
        _request: Request<IdentifyRequest>,
    ) -> Result<Response<IdentifyResponse>, Status> {
        Ok(Response::new(IdentifyResponse {
            boot_id: self.boot_id.to_vec(),
            damaged: self.counters.damaged.load(Ordering::Relaxed),
        }))
    }
}
