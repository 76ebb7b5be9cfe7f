//! Writing entries into the log and reading them back, verified.
//!
//! [`EntryWriter`] codes a payload, stores its shards durably, and only then
//! asks the sequencer for a place, so an ordered header never names data that
//! was not stored. [`EntryReader`] turns a seq back into the payload, checking
//! every shard against the commitment and rebuilding from any `k` good ones.

use crate::Hash;
use crate::entry::VerifiedPayload;
use crate::limits::{
    DEFAULT_CHUNK_SIZE, DEFAULT_DATA_SHARDS, DEFAULT_PARITY_SHARDS, INLINE_CODING_BYTES,
    MAX_RECENT_PAYLOAD_BYTES, MAX_RECENT_PAYLOADS,
};
use crate::spread::{SpreadError, SpreadShards, SpreadTimings};
use crate::{
    Address, Coder, EntryDescriptor, EntryHeader, Geometry, JointLog, LogError, Sequencer,
    SequencerError, Shard, ShardStore, StoreError, StreamId, verify_shard,
};
use std::sync::Arc;

/// Why writing or reading an entry failed.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry or its shards broke a rule of the log layer.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The shard store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sequencer failed.
    #[error(transparent)]
    Sequencer(#[from] SequencerError),
    /// The seq asked for is not committed yet.
    #[error("entry {seq} is not committed (tail is {tail})")]
    NotCommitted {
        /// The seq asked for.
        seq: u64,
        /// The committed tail when asked.
        tail: u64,
    },
    /// A blocking coding or storage task died.
    #[error("background task failed: {0}")]
    Task(String),
    /// Storing or fetching the entry's shards on other machines failed
    /// (see [`crate::spread`]). The cause is kept whole and printed in the
    /// message; it is not also chained as the source, so reports that walk
    /// the chain do not print it twice.
    #[error("shards on the storage members: {0}")]
    Spread(SpreadError),
}

/// How a log codes its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodingParams {
    /// Merkle leaf size.
    pub chunk_size: u32,
    /// Data shards (k).
    pub data_shards: u16,
    /// Parity shards (m).
    pub parity_shards: u16,
}

impl Default for CodingParams {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            data_shards: DEFAULT_DATA_SHARDS,
            parity_shards: DEFAULT_PARITY_SHARDS,
        }
    }
}

impl CodingParams {
    /// Codes `payload` with these parameters.
    pub fn encode(&self, payload: &[u8]) -> Result<crate::EncodedEntry, LogError> {
        Coder::new().encode(
            payload,
            self.chunk_size,
            self.data_shards,
            self.parity_shards,
        )
    }

    /// Checks the parameters against the limits.
    pub fn validate(&self) -> Result<(), LogError> {
        Geometry::new(0, self.chunk_size, self.data_shards, self.parity_shards).map(|_| ())
    }
}

/// Where a writer puts an entry.
#[derive(Clone)]
enum Sink {
    /// Shards to a store, then the header to a sequencer: two durable
    /// writes, in that order (older data directories of one machine).
    Separate {
        store: Arc<dyn ShardStore>,
        sequencer: Arc<dyn Sequencer>,
    },
    /// Shards and header in one durable write (one machine's path).
    Joint(Arc<dyn JointLog>),
    /// Shards to the storage members, durable on their write quorum, then
    /// the header to the cluster's sequencer (the cluster's path).
    Spread(SpreadSink),
}

/// Where a spread log's entries go: the storage members, then the
/// sequencer.
#[derive(Clone)]
struct SpreadSink {
    shards: Arc<dyn SpreadShards>,
    sequencer: Arc<dyn Sequencer>,
    timings: Arc<SpreadTimings>,
    /// The runtime the writer was made on, which drives the members'
    /// connections: an append from a thread of its own sends from there
    /// (see [`EntryWriter::append_on_own_thread`]).
    network: Option<tokio::runtime::Handle>,
}

/// Payloads this process just appended, by commitment, handed from the
/// writer to the reader of the same process: reading an entry back right
/// after writing it then costs no shard reads, no verification and no
/// rebuild. The bytes are the very ones the commitment was computed from,
/// so nothing unverified is used. Bounded by [`MAX_RECENT_PAYLOADS`] and
/// [`MAX_RECENT_PAYLOAD_BYTES`]; a payload pushed out (or never read) is
/// read from its shards as usual.
#[derive(Debug, Default)]
pub struct RecentPayloads {
    held: std::sync::Mutex<Held>,
}

/// The payloads held, oldest first, and their total size.
#[derive(Debug, Default)]
struct Held {
    payloads: std::collections::VecDeque<(Hash, Vec<u8>)>,
    bytes: usize,
}

impl RecentPayloads {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Each change is one push or removal: a panic elsewhere cannot
        // leave the queue half-changed.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, commitment: Hash, payload: Vec<u8>) {
        if payload.len() > MAX_RECENT_PAYLOAD_BYTES {
            return;
        }
        let mut held = self.held();
        held.bytes += payload.len();
        held.payloads.push_back((commitment, payload));
        while held.payloads.len() > MAX_RECENT_PAYLOADS || held.bytes > MAX_RECENT_PAYLOAD_BYTES {
            let Some((_, old)) = held.payloads.pop_front() else {
                break;
            };
            held.bytes -= old.len();
        }
    }

    fn take(&self, commitment: &Hash) -> Option<Vec<u8>> {
        let mut held = self.held();
        let at = held.payloads.iter().position(|(c, _)| c == commitment)?;
        let (_, payload) = held.payloads.remove(at)?;
        held.bytes -= payload.len();
        Some(payload)
    }
}

/// Appends payloads to the log: code, store, then order. Cheap to clone:
/// clones share the stores.
#[derive(Clone)]
pub struct EntryWriter {
    sink: Sink,
    params: CodingParams,
    recent: Option<Arc<RecentPayloads>>,
}

impl std::fmt::Debug for EntryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryWriter")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl EntryWriter {
    /// A writer with checked coding parameters.
    pub fn new(
        store: Arc<dyn ShardStore>,
        sequencer: Arc<dyn Sequencer>,
        params: CodingParams,
    ) -> Result<Self, LogError> {
        params.validate()?;
        Ok(Self {
            sink: Sink::Separate { store, sequencer },
            params,
            recent: None,
        })
    }

    /// This writer, handing what it appends to the readers that share
    /// `recent`.
    pub fn remembering(self, recent: Arc<RecentPayloads>) -> Self {
        Self {
            recent: Some(recent),
            ..self
        }
    }

    /// This writer, handing nothing to this process's readers: for entries
    /// no reader here is about to read (blob parts, which replay passes by
    /// header), whose bytes would only push out payloads a replica needs.
    pub fn forgetful(self) -> Self {
        Self {
            recent: None,
            ..self
        }
    }

    /// A writer that hands each entry's shards and header to `log` in one
    /// durable write (see [`JointLog`]).
    pub fn joint(log: Arc<dyn JointLog>, params: CodingParams) -> Result<Self, LogError> {
        params.validate()?;
        Ok(Self {
            sink: Sink::Joint(log),
            params,
            recent: None,
        })
    }

    /// A writer that spreads each entry's shards over the storage members
    /// `shards` reaches, then orders its header with `sequencer`.
    pub fn spread(
        shards: Arc<dyn SpreadShards>,
        sequencer: Arc<dyn Sequencer>,
        params: CodingParams,
    ) -> Result<Self, LogError> {
        params.validate()?;
        let timings = Arc::default();
        Ok(Self {
            sink: Sink::Spread(SpreadSink {
                shards,
                sequencer,
                timings,
                network: tokio::runtime::Handle::try_current().ok(),
            }),
            params,
            recent: None,
        })
    }

    /// Whether entries go to other machines (a cluster's log), where an
    /// append waits on the network rather than on this machine's disk.
    pub fn is_spread(&self) -> bool {
        matches!(self.sink, Sink::Spread(_))
    }

    /// How long a spread writer's stores and orderings took (`None` for a
    /// log on this machine).
    pub fn spread_timings(&self) -> Option<Arc<SpreadTimings>> {
        match &self.sink {
            Sink::Spread(spread) => Some(spread.timings.clone()),
            Sink::Joint(_) | Sink::Separate { .. } => None,
        }
    }

    /// Codes and stores `payload`, then orders it. Returns the committed header.
    pub async fn append(
        &self,
        payload: Vec<u8>,
        tags: Vec<StreamId>,
        submitter: Address,
    ) -> Result<EntryHeader, EntryError> {
        let params = self.params;
        let describe =
            |encoded: &crate::EncodedEntry| EntryDescriptor::of(encoded, tags, submitter);
        // Coding is CPU work and stores fsync: both stay off the async workers.
        match &self.sink {
            Sink::Joint(log) => {
                let (encoded, payload) = if payload.len() <= INLINE_CODING_BYTES {
                    (params.encode(&payload)?, payload)
                } else {
                    blocking(move || {
                        let encoded = params.encode(&payload)?;
                        Ok((encoded, payload))
                    })
                    .await?
                };
                let descriptor = describe(&encoded);
                self.hand_over(encoded.commitment, payload);
                Ok(log.append_with_shards(descriptor, encoded.shards).await?)
            }
            Sink::Separate { store, sequencer } => {
                let store = store.clone();
                let (encoded, payload) = blocking(move || {
                    let encoded = params.encode(&payload)?;
                    store.put_entry(&encoded.commitment, &encoded.shards)?;
                    Ok((encoded, payload))
                })
                .await?;
                self.hand_over(encoded.commitment, payload);
                Ok(sequencer.append(describe(&encoded)).await?)
            }
            Sink::Spread(spread) => {
                let (encoded, payload) = blocking(move || {
                    let encoded = params.encode(&payload)?;
                    Ok((encoded, payload))
                })
                .await?;
                let descriptor = describe(&encoded);
                (spread.append(encoded, payload, descriptor, &self.recent))
                    .run()
                    .await
            }
        }
    }

    /// Appends for a caller that owns its thread (the node's batcher): on
    /// this machine's log the coding and the sync happen right here
    /// ([`EntryWriter::append_blocking`]); for a spread log the coding
    /// does, and the shards and the header go out from the runtime the
    /// writer was made on.
    pub async fn append_on_own_thread(
        &self,
        payload: Vec<u8>,
        tags: Vec<StreamId>,
        submitter: Address,
    ) -> Result<EntryHeader, EntryError> {
        let Sink::Spread(spread) = &self.sink else {
            return self.append_blocking(payload, tags, submitter);
        };
        // This thread is the caller's own: code here, then send the shards
        // and the header from the runtime that drives the connections, so
        // that their answers wake nobody else until the entry is ordered.
        let encoded = self.params.encode(&payload)?;
        let descriptor = EntryDescriptor::of(&encoded, tags, submitter);
        let append = spread.append(encoded, payload, descriptor, &self.recent);
        let Some(network) = &spread.network else {
            return append.run().await;
        };
        // Dropping this future (the batcher stopping) stops the append, as
        // it would if it ran here.
        let mut task = AbortOnDrop(network.spawn(append.run()));
        (&mut task.0)
            .await
            .map_err(|e| EntryError::Task(e.to_string()))?
    }

    /// [`EntryWriter::append`] on the calling thread, which it blocks for
    /// the coding and the sync: for a caller that owns its thread (the
    /// node's batcher), which then pays no hand-off to the blocking pool or
    /// to the log's writer thread. Never call it from an async worker
    /// thread. A spread log needs a runtime to reach the network: it is
    /// refused here ([`EntryWriter::append_on_own_thread`] serves both).
    pub fn append_blocking(
        &self,
        payload: Vec<u8>,
        tags: Vec<StreamId>,
        submitter: Address,
    ) -> Result<EntryHeader, EntryError> {
        if let Sink::Spread(_) = self.sink {
            return Err(EntryError::Task(
                "a spread log cannot append on a thread without a runtime".into(),
            ));
        }
        let encoded = self.params.encode(&payload)?;
        let descriptor = EntryDescriptor::of(&encoded, tags, submitter);
        self.hand_over(encoded.commitment, payload);
        match &self.sink {
            Sink::Joint(log) => Ok(log.append_with_shards_blocking(descriptor, encoded.shards)?),
            Sink::Separate { store, sequencer } => {
                store.put_entry(&encoded.commitment, &encoded.shards)?;
                Ok(crate::wait_here::wait_here(sequencer.append(descriptor))?)
            }
            Sink::Spread(_) => unreachable!("refused above"),
        }
    }

    /// Hands `payload` to this process's readers before its entry is
    /// ordered: the reader that follows the log wakes when the header is
    /// durable, and must find the bytes already there, or it reads and
    /// rebuilds them from shards. If the append then fails, the payload is
    /// never asked for (no header names its commitment) and ages out.
    fn hand_over(&self, commitment: Hash, payload: Vec<u8>) {
        if let Some(recent) = &self.recent {
            recent.remember(commitment, payload);
        }
    }
}

/// A task that stops when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An entry on its way to a spread log: coded, its shards next stored on
/// their write quorum, then its header ordered.
struct SpreadAppend {
    sink: SpreadSink,
    recent: Option<Arc<RecentPayloads>>,
    encoded: crate::EncodedEntry,
    payload: Vec<u8>,
    descriptor: EntryDescriptor,
}

impl SpreadSink {
    /// The network part of appending `encoded`, for `run`.
    fn append(
        &self,
        encoded: crate::EncodedEntry,
        payload: Vec<u8>,
        descriptor: EntryDescriptor,
        recent: &Option<Arc<RecentPayloads>>,
    ) -> SpreadAppend {
        SpreadAppend {
            sink: self.clone(),
            recent: recent.clone(),
            encoded,
            payload,
            descriptor,
        }
    }
}

impl SpreadAppend {
    /// Stores the shards on their write quorum, hands the payload to this
    /// process's readers, then orders the header.
    async fn run(self) -> Result<EntryHeader, EntryError> {
        let sink = &self.sink;
        let started = std::time::Instant::now();
        (sink.shards.store_entry(&self.encoded).await).map_err(EntryError::Spread)?;
        let stored = std::time::Instant::now();
        sink.timings.store.observe(micros(stored - started));
        if let Some(recent) = &self.recent {
            recent.remember(self.encoded.commitment, self.payload);
        }
        let header = sink.sequencer.append(self.descriptor).await?;
        sink.timings.order.observe(micros(stored.elapsed()));
        Ok(header)
    }
}

fn micros(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EntryError> + Send + 'static,
) -> Result<T, EntryError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EntryError::Task(e.to_string()))?
}

/// Loads the payload of `header` from `store`: verifies each shard on its own,
/// stops at the first `k` good ones, and rebuilds if any data shard was lost.
pub fn load_payload(
    store: &dyn ShardStore,
    header: &EntryHeader,
    coder: &mut Coder,
) -> Result<VerifiedPayload, EntryError> {
    let EntryDescriptor {
        commitment,
        geometry,
        ..
    } = &header.entry;
    let k = geometry.data_shards as usize;
    let (mut good, mut missing, mut rejected) =
        (Vec::<Shard>::with_capacity(k), Vec::new(), Vec::new());
    for index in 0..geometry.total_shards() {
        if good.len() == k {
            break;
        }
        match store.get(commitment, index) {
            Ok(Some(shard)) if verify_shard(commitment, geometry, &shard).is_ok() => {
                good.push(shard)
            }
            Ok(Some(_)) | Err(StoreError::Corrupt { .. }) => rejected.push(index),
            Ok(None) => missing.push(index),
            Err(e) => return Err(e.into()),
        }
    }
    let refs: Vec<&Shard> = good.iter().collect();
    let payload = coder.rebuild(commitment, geometry, &refs)?;
    if !rejected.is_empty() {
        tracing::warn!(
            seq = header.seq,
            ?rejected,
            "shards failed verification and were not used"
        );
    }
    Ok(VerifiedPayload {
        payload,
        missing,
        rejected,
    })
}

/// Reads committed entries by seq. Cheap to clone: clones share the store
/// and the sequencer.
#[derive(Clone)]
pub struct EntryReader {
    source: Source,
    sequencer: Arc<dyn Sequencer>,
    recent: Option<Arc<RecentPayloads>>,
}

/// Where a reader finds an entry's shards.
#[derive(Clone)]
enum Source {
    /// A store on this machine, read shard by shard.
    Local(Arc<dyn ShardStore>),
    /// The storage members of a cluster.
    Spread(Arc<dyn SpreadShards>),
}

impl std::fmt::Debug for EntryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader").finish_non_exhaustive()
    }
}

impl EntryReader {
    /// A reader over a store and a sequencer.
    pub fn new(store: Arc<dyn ShardStore>, sequencer: Arc<dyn Sequencer>) -> Self {
        Self {
            source: Source::Local(store),
            sequencer,
            recent: None,
        }
    }

    /// A reader over entries spread across storage members, ordered by
    /// `sequencer`.
    pub fn spread(shards: Arc<dyn SpreadShards>, sequencer: Arc<dyn Sequencer>) -> Self {
        Self {
            source: Source::Spread(shards),
            sequencer,
            recent: None,
        }
    }

    /// This reader, taking entries the writers sharing `recent` just
    /// appended from memory instead of from their shards.
    pub fn remembering(self, recent: Arc<RecentPayloads>) -> Self {
        Self {
            recent: Some(recent),
            ..self
        }
    }

    /// The header and verified payload of entry `seq`.
    pub async fn read(&self, seq: u64) -> Result<(EntryHeader, VerifiedPayload), EntryError> {
        let header = self.header(seq).await?;
        self.payload(header).await
    }

    /// The header of committed entry `seq`, without its payload.
    pub async fn header(&self, seq: u64) -> Result<EntryHeader, EntryError> {
        self.sequencer
            .read(seq, 1)
            .await?
            .pop()
            .ok_or_else(|| EntryError::NotCommitted {
                seq,
                tail: self.sequencer.tail(),
            })
    }

    /// The verified payload of the entry `header` describes.
    pub async fn payload(
        &self,
        header: EntryHeader,
    ) -> Result<(EntryHeader, VerifiedPayload), EntryError> {
        let recent = self.recent.as_ref();
        if let Some(payload) = recent.and_then(|r| r.take(&header.entry.commitment)) {
            let payload = VerifiedPayload {
                payload,
                missing: vec![],
                rejected: vec![],
            };
            return Ok((header, payload));
        }
        let store = match &self.source {
            Source::Local(store) => store.clone(),
            Source::Spread(shards) => {
                let payload = shards.load_entry(&header).await;
                return Ok((header, payload.map_err(EntryError::Spread)?));
            }
        };
        tokio::task::spawn_blocking(move || {
            let payload = load_payload(store.as_ref(), &header, &mut Coder::new())?;
            Ok((header, payload))
        })
        .await
        .map_err(|e| EntryError::Task(e.to_string()))?
    }
}
