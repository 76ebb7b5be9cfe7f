//! `ordo.v1.Kv`: reads of the replicated state as of a version.

use crate::node::handles::Snapshots;
use crate::node::services::Stopping;
use crate::node::services::request::{
    check_key, compacted, read_version, require_stream, state_error, stream_id,
};
use ordo_kv::Column;
use ordo_kv::keys::prefix_end;
use ordo_kv::mvcc::{Continuation, MAX_SCAN_BYTES, MAX_SCAN_ROWS};
use ordo_proto::v1::{
    BatchGetRequest, BatchGetResponse, GetRequest, GetResponse, KeyValue, ScanRequest,
    ScanResponse, WatchEvent, WatchRequest, kv_server::Kv,
};
use tonic::{Request, Response, Status};

/// Serves reads.
pub struct KvService {
    snapshots: Snapshots,
    stopping: Stopping,
}

impl KvService {
    /// A read service over the replicated state.
    pub fn new(snapshots: Snapshots) -> Self {
        Self {
            snapshots,
            stopping: super::never_stopping(),
        }
    }

    /// Ends open watches once `stopping` turns true, with UNAVAILABLE
    /// saying why (the watcher resumes after the last version it
    /// received), so that they do not hold the node's graceful shutdown
    /// open until its grace runs out.
    pub fn stopping_with(self, stopping: Stopping) -> Self {
        Self { stopping, ..self }
    }

    fn read_key(
        &self,
        stream: &ordo_kv::StreamId,
        key: &[u8],
        at: u64,
    ) -> Result<GetResponse, Status> {
        let found = self
            .snapshots
            .state
            .get(Column::Data, stream, key, at)
            .map_err(state_error)?;
        let (value_version, value) = found.map_or((0, None), |v| (v.version, v.value));
        Ok(GetResponse {
            found: value.is_some(),
            value: value.unwrap_or_default(),
            value_version,
            read_version: at,
        })
    }
}

/// Most keys one BatchGet may ask for.
pub const MAX_BATCH_GET_KEYS: usize = 1_000;

/// Scan page bounds when the request leaves them at 0.
pub const DEFAULT_SCAN_ROWS: usize = 1_000;
/// See [`DEFAULT_SCAN_ROWS`].
pub const DEFAULT_SCAN_BYTES: usize = 1024 * 1024;

/// The page bounds of a scan: defaults for 0, refusal past the maxima.
fn page_bounds(rows: u32, bytes: u32) -> Result<(usize, usize), Status> {
    let pick = |asked: u32, default: usize, max: usize, what: &str| match asked as usize {
        0 => Ok(default),
        n if n <= max => Ok(n),
        n => Err(Status::invalid_argument(format!(
            "scan page of {n} {what} asked for; the limit is {max}"
        ))),
    };
    Ok((
        pick(rows, DEFAULT_SCAN_ROWS, MAX_SCAN_ROWS, "rows")?,
        pick(bytes, DEFAULT_SCAN_BYTES, MAX_SCAN_BYTES, "bytes")?,
    ))
}

/// A continuation pins the scan's version, so every page reads one snapshot.
fn encode_continuation(version: u64, resume: &[u8]) -> Vec<u8> {
    let resume = resume.to_vec();
    Continuation { version, resume }.encode()
}

fn decode_continuation(token: &[u8]) -> Result<(u64, Vec<u8>), Status> {
    let found = Continuation::decode(token)
        .ok_or_else(|| Status::invalid_argument("malformed scan continuation"))?;
    check_key(&found.resume)?;
    Ok((found.version, found.resume))
}

/// Events a watcher may have in flight before the feed waits for it.
pub const WATCH_BUFFER: usize = 1024;

/// Entries' change records read per step of a watch.
pub const WATCH_ENTRIES_PER_STEP: usize = 64;

/// What one watch follows: the keys of `stream` under `prefix`, from
/// the version after `after`.
struct WatchOf {
    stream: ordo_kv::StreamId,
    prefix: Vec<u8>,
    after: u64,
}

/// Follows the change feed for one watcher until it hangs up.
async fn feed_watch(
    snapshots: Snapshots,
    watch: WatchOf,
    events: tokio::sync::mpsc::Sender<Result<WatchEvent, Status>>,
) {
    let WatchOf {
        stream,
        prefix,
        mut after,
    } = watch;
    let mut applied = snapshots.applied.clone();
    loop {
        let changes = match ordo_txn::replay::changes_after(
            &snapshots.state,
            after,
            WATCH_ENTRIES_PER_STEP,
        ) {
            Ok(changes) => changes,
            Err(e) => {
                let _ = events.send(Err(feed_error(after, e))).await;
                return;
            }
        };
        for (version, keys) in &changes {
            for (_, key) in keys
                .iter()
                .filter(|(s, k)| *s == stream && k.starts_with(&prefix))
            {
                let event = match snapshots.state.get(Column::Data, &stream, key, *version) {
                    Ok(found) => {
                        let value = found.and_then(|v| v.value);
                        Ok(WatchEvent {
                            version: *version,
                            key: key.clone(),
                            deleted: value.is_none(),
                            value: value.unwrap_or_default(),
                        })
                    }
                    // A watcher that fell below the horizon meanwhile
                    // cannot be given this version's value: the watch ends.
                    Err(ordo_kv::MvccError::Compacted { oldest, .. }) => {
                        Err(watch_compacted(after, oldest))
                    }
                    Err(e) => Err(state_error(e)),
                };
                let failed = event.is_err();
                if events.send(event).await.is_err() || failed {
                    return; // the watcher hung up, or the watch ended
                }
            }
            after = *version;
        }
        if changes.is_empty() {
            // Caught up: wait for the next commit, or for the watcher to leave.
            tokio::select! {
                changed = applied.wait_for(|a| a.version > after) => if changed.is_err() { return },
                () = events.closed() => return,
            }
        }
    }
}

/// A watch may resume after version `after` only while the change records
/// of every later version are kept: from one below the horizon on.
fn check_resumable(snapshots: &Snapshots, after: u64) -> Result<(), Status> {
    let horizon = snapshots.state.horizon();
    match after.saturating_add(1) < horizon {
        true => Err(watch_compacted(after, horizon)),
        false => Ok(()),
    }
}

/// `OUT_OF_RANGE` for a watch after `after` when the horizon is `oldest`.
fn watch_compacted(after: u64, oldest: u64) -> Status {
    let message = format!(
        "cannot watch after version {after}: its changes are compacted; the oldest version a watch may resume after is {}",
        oldest - 1
    );
    compacted(message, oldest)
}

/// The status that ends a watch whose feed could not be read: for a feed
/// that fell below the horizon, `OUT_OF_RANGE` naming the oldest version
/// kept (a watch may resume after the version just below it).
fn feed_error(after: u64, e: ordo_txn::ReplayError) -> Status {
    match e {
        ordo_txn::ReplayError::Store(ordo_kv::MvccError::Compacted { oldest, .. }) => {
            watch_compacted(after, oldest)
        }
        e => Status::internal(format!("reading the change feed: {e}")),
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<WatchEvent, Status>>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let stream = stream_id(&request.stream)?;
        let prefix = check_key(&request.prefix)?.to_vec();
        require_stream(&self.snapshots, &stream, self.snapshots.latest_version())?;
        check_resumable(&self.snapshots, request.after_version)?;
        let (events, receiver) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        let snapshots = self.snapshots.clone();
        let watch = WatchOf {
            stream,
            prefix,
            after: request.after_version,
        };
        let stop = super::stop_signalled(self.stopping.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = feed_watch(snapshots, watch, events.clone()) => {}
                () = stop => {
                    let _ = events.send(Err(Status::unavailable(
                        "the node is stopping; resume the watch after the last version received, on another node or after its restart",
                    ))).await;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let request = request.into_inner();
        let stream = stream_id(&request.stream)?;
        check_key(&request.key)?;
        let at = read_version(&self.snapshots, request.version, request.min_version).await?;
        require_stream(&self.snapshots, &stream, at)?;
        Ok(Response::new(self.read_key(&stream, &request.key, at)?))
    }

    async fn batch_get(
        &self,
        request: Request<BatchGetRequest>,
    ) -> Result<Response<BatchGetResponse>, Status> {
        let request = request.into_inner();
        let stream = stream_id(&request.stream)?;
        if request.keys.len() > MAX_BATCH_GET_KEYS {
            return Err(Status::invalid_argument(format!(
                "{} keys asked for; the limit is {MAX_BATCH_GET_KEYS}",
                request.keys.len()
            )));
        }
        for key in &request.keys {
            check_key(key)?;
        }
        let at = read_version(&self.snapshots, request.version, request.min_version).await?;
        require_stream(&self.snapshots, &stream, at)?;
        let results = request
            .keys
            .iter()
            .map(|key| self.read_key(&stream, key, at))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(BatchGetResponse {
            results,
            read_version: at,
        }))
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        let request = request.into_inner();
        let stream = stream_id(&request.stream)?;
        let (rows, bytes) = page_bounds(request.limit_rows, request.limit_bytes)?;
        let (start, end) = match request.prefix {
            Some(prefix) => (check_key(&prefix)?.to_vec(), prefix_end(&prefix)),
            None => (check_key(&request.start)?.to_vec(), request.end),
        };
        if let Some(end) = &end {
            check_key(end)?;
        }
        let (version, start) = match request.continuation.is_empty() {
            true => (
                read_version(&self.snapshots, request.version, request.min_version).await?,
                start,
            ),
            false => decode_continuation(&request.continuation)?,
        };
        require_stream(&self.snapshots, &stream, version)?;
        let page = self
            .snapshots
            .state
            .scan(&stream, &start, end.as_deref(), version, rows, bytes)
            .map_err(state_error)?;
        Ok(Response::new(ScanResponse {
            rows: page
                .rows
                .into_iter()
                .map(|r| KeyValue {
                    key: r.key,
                    value: r.value,
                    version: r.version,
                })
                .collect(),
            continuation: page
                .resume_from
                .map_or_else(Vec::new, |key| encode_continuation(version, &key)),
            read_version: version,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn continuations_round_trip_and_refuse_garbage() {
        let token = encode_continuation(42, b"next");
        assert_eq!(decode_continuation(&token).unwrap(), (42, b"next".to_vec()));
        assert!(decode_continuation(b"OSC1abc").is_err());
        assert!(decode_continuation(b"nope").is_err());
    }

    #[test]
    fn absurd_page_bounds_are_refused() {
        assert_eq!(
            page_bounds(0, 0).unwrap(),
            (DEFAULT_SCAN_ROWS, DEFAULT_SCAN_BYTES)
        );
        assert!(page_bounds(u32::MAX, 0).is_err());
        assert!(page_bounds(0, u32::MAX).is_err());
    }
}
