//! The load generator behind `ordo-bench`: workloads, key choice, targets
//! and what a run measures.
//!
//! A workload runs on any [`KvTarget`]; ordo (through `ordo-client`) and
//! etcd (through its v3 gRPC API) are the two targets, so both see exactly
//! the same operation mix, keys, values and retry policy.

use ordo_client::txn::{FIRST_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, RETRYABLE};
use ordo_client::{Client, ClientError};
use ordo_txn::{Read, SigningKey, StreamId, Transaction, Write};
use std::future::Future;
use std::time::{Duration, Instant};

/// The etcd KV protocol subset (generated from `proto/etcd_kv.proto`).
pub mod etcd {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("etcdserverpb");
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The ordo client failed.
    #[error("ordo: {0}")]
    Ordo(#[from] ClientError),
    /// etcd refused the call.
    #[error("etcd: {0}")]
    Etcd(#[from] tonic::Status),
    /// A connection could not be made.
    #[error("connect: {0}")]
    Connect(String),
    /// The operation gave up after every retry lost a conflict.
    #[error("retries exhausted after {0} attempts")]
    RetriesExhausted(u32),
    /// The store decided against the operation for another reason.
    #[error("aborted: {0}")]
    Aborted(String),
}

/// A key-value store under load. One value per client; clients of one
/// connection share its transport.
pub trait KvTarget: Send + 'static {
    /// A blind durable write.
    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
    ) -> impl Future<Output = Result<(), LoadError>> + Send;
    /// A read of the latest committed value.
    fn get(&mut self, key: &[u8]) -> impl Future<Output = Result<(), LoadError>> + Send;
    /// Reads a counter and writes it back incremented, atomically; retries
    /// lost conflicts with ordo's client policy. Returns the attempts made.
    fn read_modify_write(
        &mut self,
        key: &[u8],
    ) -> impl Future<Output = Result<u32, LoadError>> + Send;
}

/// The counter in the first 8 bytes of a value, incremented, padded back
/// to the value's length.
pub fn increment(value: &[u8]) -> Vec<u8> {
    let mut counter = [0u8; 8];
    let n = value.len().min(8);
    counter[..n].copy_from_slice(&value[..n]);
    let next = u64::from_le_bytes(counter).wrapping_add(1);
    let mut out = value.to_vec();
    out.resize(value.len().max(8), 0);
    out[..8].copy_from_slice(&next.to_le_bytes());
    out
}

/// ordo through its Rust client: puts are signed single-write transactions,
/// reads are `Kv.Get`, read-modify-write is a snapshot read and a commit
/// that fails on a conflict.
pub struct OrdoTarget {
    client: Client,
    key: SigningKey,
    stream: StreamId,
    /// A recent version to stamp blind writes with (a write's read version
    /// must lie inside the conflict window even when it reads nothing).
    read_version: u64,
}

impl OrdoTarget {
    /// A target writing to `stream` as `key`.
    pub async fn new(client: Client, key: SigningKey, stream: StreamId) -> Result<Self, LoadError> {
        let read_version = client.begin().await?;
        Ok(Self {
            client,
            key,
            stream,
            read_version,
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> Transaction {
        Transaction {
            sender: ordo_txn::address_of(&self.key),
            writes: vec![Write {
                stream: self.stream,
                key: key.to_vec(),
                value: Some(value.to_vec()),
            }],
            ..Transaction::new(ordo_client::txn::fresh_id(), self.read_version)
        }
    }
}

impl KvTarget for OrdoTarget {
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), LoadError> {
        let decided = self
            .client
            .commit(self.write(key, value), &self.key)
            .await?;
        match decided.outcome.as_str() {
            "committed" => {
                self.read_version = self.read_version.max(decided.version);
                Ok(())
            }
            "too_old" => {
                // Only after a very long pause: refresh the version, retry once.
                self.read_version = self.client.begin().await?;
                let decided = self
                    .client
                    .commit(self.write(key, value), &self.key)
                    .await?;
                (decided.outcome == "committed")
                    .then_some(())
                    .ok_or(LoadError::Aborted(decided.message))
            }
            _ => Err(LoadError::Aborted(decided.message)),
        }
    }

    async fn get(&mut self, key: &[u8]) -> Result<(), LoadError> {
        self.client.get(self.stream, key).await?;
        Ok(())
    }

    /// The same loop as `Client::transact` (snapshot, read, commit, retry
    /// a conflict or too-old snapshot with the same backoff), written out
    /// so the future stays `Send` for the load generator's tasks.
    async fn read_modify_write(&mut self, key: &[u8]) -> Result<u32, LoadError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let snapshot = self.client.begin().await?;
            let read = self.client.get_at(self.stream, key, snapshot).await?;
            let mut tx = self.write(key, &increment(&read.value));
            tx.read_version = snapshot;
            tx.reads = vec![Read::Key {
                stream: self.stream,
                key: key.to_vec(),
            }];
            let decided = self.client.commit(tx, &self.key).await?;
            match decided.outcome.as_str() {
                "committed" => {
                    self.read_version = self.read_version.max(decided.version);
                    return Ok(attempt);
                }
                kind if RETRYABLE.contains(&kind) => {
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
                _ => return Err(LoadError::Aborted(decided.message)),
            }
        }
        Err(LoadError::RetriesExhausted(MAX_ATTEMPTS))
    }
}

/// etcd through its v3 gRPC API: `Put`, `Range`, and a `Txn` that compares
/// the key's mod revision for read-modify-write.
pub struct EtcdTarget {
    kv: etcd::kv_client::KvClient<tonic::transport::Channel>,
    /// Point reads served by the member's own state, without a quorum
    /// round (etcd's `serializable`); read-modify-write always reads
    /// linearizably.
    serializable: bool,
}

impl EtcdTarget {
    /// A target on an open channel to etcd, reading linearizably.
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            kv: etcd::kv_client::KvClient::new(channel),
            serializable: false,
        }
    }

    /// The same target with serializable point reads.
    pub fn serializable(self) -> Self {
        Self {
            serializable: true,
            ..self
        }
    }

    /// Connects a channel to etcd at `endpoint` (`http://host:port`).
    pub async fn channel(endpoint: &str) -> Result<tonic::transport::Channel, LoadError> {
        tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| LoadError::Connect(e.to_string()))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| LoadError::Connect(e.to_string()))
    }

    /// Writes many keys in transactions of at most 128 puts (etcd's default
    /// `--max-txn-ops`).
    pub async fn put_all(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), LoadError> {
        for chunk in pairs.chunks(128) {
            let success = chunk
                .iter()
                .map(|(k, v)| etcd::RequestOp {
                    request: Some(etcd::request_op::Request::RequestPut(etcd::PutRequest {
                        key: k.clone(),
                        value: v.clone(),
                        ..Default::default()
                    })),
                })
                .collect();
            self.kv
                .txn(etcd::TxnRequest {
                    compare: vec![],
                    success,
                    failure: vec![],
                })
                .await?;
        }
        Ok(())
    }
}

impl KvTarget for EtcdTarget {
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), LoadError> {
        self.kv
            .put(etcd::PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn get(&mut self, key: &[u8]) -> Result<(), LoadError> {
        self.kv
            .range(etcd::RangeRequest {
                key: key.to_vec(),
                serializable: self.serializable,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn read_modify_write(&mut self, key: &[u8]) -> Result<u32, LoadError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let read = self
                .kv
                .range(etcd::RangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let (value, revision) = read
                .kvs
                .first()
                .map_or((vec![], 0), |kv| (kv.value.clone(), kv.mod_revision));
            let put = etcd::RequestOp {
                request: Some(etcd::request_op::Request::RequestPut(etcd::PutRequest {
                    key: key.to_vec(),
                    value: increment(&value),
                    ..Default::default()
                })),
            };
            let compare = etcd::Compare {
                result: etcd::compare::CompareResult::Equal as i32,
                target: etcd::compare::CompareTarget::Mod as i32,
                key: key.to_vec(),
                target_union: Some(etcd::compare::TargetUnion::ModRevision(revision)),
            };
            let decided = self
                .kv
                .txn(etcd::TxnRequest {
                    compare: vec![compare],
                    success: vec![put],
                    failure: vec![],
                })
                .await?
                .into_inner();
            if decided.succeeded {
                return Ok(attempt);
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        Err(LoadError::RetriesExhausted(MAX_ATTEMPTS))
    }
}

/// Who a comparison cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Contender {
    /// `ordo dev`, commits on sessions (one signature per session).
    Ordo,
    /// `ordo dev`, every commit signed by its sender.
    OrdoSigned,
    /// etcd, linearizable reads.
    Etcd,
    /// etcd, serializable reads (only where the workload reads).
    EtcdSerializable,
    /// The null target (ordo's APIs answered at once), sessions: the ceiling.
    Null,
    /// The null target, every commit signed: the ceiling of the signed path.
    NullSigned,
}

impl Contender {
    /// Every contender, in report order.
    pub const ALL: [Contender; 6] = [
        Contender::Ordo,
        Contender::OrdoSigned,
        Contender::Etcd,
        Contender::EtcdSerializable,
        Contender::Null,
        Contender::NullSigned,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Ordo => "ordo",
            Contender::OrdoSigned => "ordo-signed",
            Contender::Etcd => "etcd",
            Contender::EtcdSerializable => "etcd-serializable",
            Contender::Null => "null",
            Contender::NullSigned => "null-signed",
        }
    }

    /// Whether this contender says anything new about `workload`: the
    /// signed variants only where something commits, serializable etcd
    /// only where something reads.
    pub fn measures(self, workload: Workload) -> bool {
        match self {
            Contender::OrdoSigned | Contender::NullSigned => workload != Workload::Get,
            Contender::EtcdSerializable => workload.read_percent() > 0,
            _ => true,
        }
    }

    /// The ceiling this contender is held against: the null target that
    /// takes the same path.
    pub fn ceiling(self) -> Option<Contender> {
        match self {
            Contender::Ordo => Some(Contender::Null),
            Contender::OrdoSigned => Some(Contender::NullSigned),
            _ => None,
        }
    }
}

/// The operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Blind single-key writes.
    Put,
    /// Point reads.
    Get,
    /// Read a counter, write it back incremented (YCSB-F style).
    TxnRmw,
    /// 50% reads, 50% updates.
    YcsbA,
    /// 95% reads, 5% updates.
    YcsbB,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 5] = [
        Workload::Put,
        Workload::Get,
        Workload::TxnRmw,
        Workload::YcsbA,
        Workload::YcsbB,
    ];

    /// The workload's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::TxnRmw => "txn-rmw",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
        }
    }

    /// Percent of operations that read (the rest write), for mixed workloads.
    /// Percent of operations that are reads.
    pub fn read_percent(self) -> u64 {
        match self {
            Workload::YcsbA => 50,
            Workload::YcsbB => 95,
            Workload::Get => 100,
            Workload::Put | Workload::TxnRmw => 0,
        }
    }
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// YCSB's scrambled zipfian (theta 0.99): a few keys are hot.
    Zipfian,
}

/// xorshift64*: fast, deterministic per client.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks key indexes in `0..n`.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    n: u64,
    zipf: Option<Zipf>,
}

#[derive(Debug, Clone)]
struct Zipf {
    theta: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
}

impl KeyChooser {
    /// A chooser over `n` keys.
    pub fn new(n: u64, distribution: Distribution) -> Self {
        let n = n.max(1);
        let zipf = (distribution == Distribution::Zipfian).then(|| {
            let theta = 0.99;
            let zeta = |count: u64| {
                (1..=count)
                    .map(|i| 1.0 / (i as f64).powf(theta))
                    .sum::<f64>()
            };
            let zeta_n = zeta(n);
            let zeta_2 = zeta(2.min(n));
            Zipf {
                theta,
                zeta_n,
                alpha: 1.0 / (1.0 - theta),
                eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n),
            }
        });
        Self { n, zipf }
    }

    /// The next key index.
    pub fn next(&self, rng: &mut Rng) -> u64 {
        let Some(z) = &self.zipf else {
            return rng.next_u64() % self.n;
        };
        let u = rng.unit();
        let uz = u * z.zeta_n;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(z.theta) {
            1
        } else {
            ((self.n as f64) * (z.eta * u - z.eta + 1.0).powf(z.alpha)) as u64
        };
        // Scrambled: the hot ranks land on keys spread over the key space.
        fnv(rank) % self.n
    }
}

fn fnv(x: u64) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for byte in x.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01B3);
    }
    hash
}

/// The key of index `i`: `k` and the zero-padded index, `size` bytes long.
pub fn key_of(i: u64, size: usize) -> Vec<u8> {
    let digits = format!("{i}");
    let width = size.max(digits.len() + 1) - 1;
    format!("k{digits:0>width$}").into_bytes()
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The mix.
    pub workload: Workload,
    /// Key choice.
    pub distribution: Distribution,
    /// Keys in play.
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time (when `total_ops` is not set).
    pub duration: Duration,
    /// Stop after this many measured operations instead.
    pub total_ops: Option<u64>,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Operations that succeeded.
    pub ops: u64,
    /// Operations that gave up (retries exhausted or aborted).
    pub aborts: u64,
    /// Extra attempts spent on retried conflicts.
    pub retries: u64,
    /// Measured wall time.
    pub elapsed: Duration,
    /// Latencies of successful operations, microseconds, sorted.
    pub latencies: Vec<u32>,
}

impl Measured {
    /// Successful operations per second.
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p` quantile of latency in milliseconds (`p` in 0..=1).
    pub fn latency_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }
}

/// Per-client tallies.
#[derive(Default)]
struct Tally {
    ops: u64,
    aborts: u64,
    retries: u64,
    latencies: Vec<u32>,
}

async fn one_op<T: KvTarget>(
    target: &mut T,
    spec: &Spec,
    chooser: &KeyChooser,
    rng: &mut Rng,
    value: &[u8],
) -> Result<u32, LoadError> {
    let key = key_of(chooser.next(rng), spec.key_size);
    match spec.workload {
        Workload::TxnRmw => target.read_modify_write(&key).await,
        workload => {
            if rng.next_u64() % 100 < workload.read_percent() {
                target.get(&key).await.map(|()| 1)
            } else {
                target.put(&key, value).await.map(|()| 1)
            }
        }
    }
}

async fn client_loop<T: KvTarget>(
    mut target: T,
    spec: Spec,
    seed: u64,
    measure_from: Instant,
    stop_at: Instant,
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) -> Result<Tally, LoadError> {
    let chooser = KeyChooser::new(spec.keys, spec.distribution);
    let mut rng = Rng::new(seed);
    let value = vec![b'v'; spec.value_size];
    let mut tally = Tally::default();
    loop {
        let now = Instant::now();
        if now >= stop_at {
            break;
        }
        let measured = now >= measure_from;
        if measured
            && let Some(budget) = &budget
            && budget
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |left| left.checked_sub(1),
                )
                .is_err()
        {
            break;
        }
        let started = Instant::now();
        let result = one_op(&mut target, &spec, &chooser, &mut rng, &value).await;
        if !measured {
            result.map(|_| ()).or_else(|e| match e {
                LoadError::RetriesExhausted(_) | LoadError::Aborted(_) => Ok(()),
                other => Err(other),
            })?;
            continue;
        }
        match result {
            Ok(attempts) => {
                tally.ops += 1;
                tally.retries += u64::from(attempts.saturating_sub(1));
                tally
                    .latencies
                    .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(LoadError::RetriesExhausted(attempts)) => {
                tally.aborts += 1;
                tally.retries += u64::from(attempts.saturating_sub(1));
            }
            Err(LoadError::Aborted(_)) => tally.aborts += 1,
            Err(other) => return Err(other),
        }
    }
    Ok(tally)
}

/// Runs `spec` with one client per target and returns what was measured.
pub async fn run<T: KvTarget>(targets: Vec<T>, spec: &Spec) -> Result<Measured, LoadError> {
    let started = Instant::now();
    let measure_from = started + spec.warmup;
    let stop_at = match spec.total_ops {
        // A generous cap so a run bounded by operations still ends.
        Some(_) => measure_from + Duration::from_secs(3600),
        None => measure_from + spec.duration,
    };
    let budget = spec
        .total_ops
        .map(|n| std::sync::Arc::new(std::sync::atomic::AtomicU64::new(n)));
    let tasks: Vec<_> = targets
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            tokio::spawn(client_loop(
                target,
                spec.clone(),
                i as u64 + 1,
                measure_from,
                stop_at,
                budget.clone(),
            ))
        })
        .collect();
    let mut measured = Measured::default();
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| LoadError::Aborted(format!("client task failed: {e}")))??;
        measured.ops += tally.ops;
        measured.aborts += tally.aborts;
        measured.retries += tally.retries;
        measured.latencies.extend(tally.latencies);
    }
    measured.elapsed = Instant::now().saturating_duration_since(measure_from);
    measured.latencies.sort_unstable();
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_keys_are_skewed_and_in_range() {
        let chooser = KeyChooser::new(1000, Distribution::Zipfian);
        let mut rng = Rng::new(7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = counts[..10].iter().sum();
        assert!(
            top10 > 25_000,
            "the 10 hottest keys got only {top10} of 100000"
        );
        let uniform = KeyChooser::new(1000, Distribution::Uniform);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            seen.insert(uniform.next(&mut rng));
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn counters_increment_and_keys_have_their_size() {
        let v = increment(&increment(&[0u8; 16]));
        assert_eq!(u64::from_le_bytes(v[..8].try_into().expect("8 bytes")), 2);
        assert_eq!(v.len(), 16);
        assert_eq!(key_of(42, 8), b"k0000042".to_vec());
        assert_eq!(key_of(123_456_789, 4), b"k123456789".to_vec());
    }
}
