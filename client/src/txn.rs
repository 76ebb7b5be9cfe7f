//! Reads, commits and `transact`: optimistic transactions with retries.
//!
//! The server decides every transaction in log order and never retries. A
//! transaction that lost a race (`conflict`) or read too old a snapshot
//! (`too_old`) is the client's to retry: [`Client::transact`] re-runs the
//! caller's closure at a fresh snapshot, with a fresh id, after a growing
//! pause, up to [`MAX_ATTEMPTS`] times.

use crate::{Client, ClientError};
use ordo_proto::v1::kv_client::KvClient;
use ordo_proto::v1::txn_client::TxnClient;
use ordo_proto::v1::{BeginRequest, CommitRequest, CommitResponse, GetRequest};
use ordo_txn::{AclOp, Read, SigningKey, StreamId, Transaction, TxnId, Write};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most times `transact` runs a transaction before giving up.
pub const MAX_ATTEMPTS: u32 = 10;

/// Pause before the first retry; it doubles with each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// Longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Outcomes worth running the transaction again for.
pub const RETRYABLE: [&str; 2] = ["conflict", "too_old"];

/// A fresh transaction id: unique per sender as long as this process's
/// clock and counter are, which is what the server needs.
pub fn fresh_id() -> TxnId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(nanos ^ (u64::from(std::process::id()) << 40)).to_be_bytes());
    id[8..].copy_from_slice(&count.to_be_bytes());
    id
}

/// A transaction being built by a `transact` closure: reads at one snapshot
/// (recorded in the read set), buffered writes and ACL operations.
#[derive(Debug)]
pub struct TxContext<'a> {
    client: &'a Client,
    snapshot: u64,
    reads: Vec<Read>,
    writes: BTreeMap<(StreamId, Vec<u8>), Option<Vec<u8>>>,
    acl: Vec<AclOp>,
}

impl TxContext<'_> {
    /// The snapshot version this attempt reads at.
    pub fn snapshot(&self) -> u64 {
        self.snapshot
    }

    /// Reads a key: this transaction's own write if it made one, else the
    /// value at the snapshot. The key joins the read set.
    pub async fn get(
        &mut self,
        stream: StreamId,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        if let Some(buffered) = self.writes.get(&(stream, key.to_vec())) {
            return Ok(buffered.clone());
        }
        self.reads.push(Read::Key {
            stream,
            key: key.to_vec(),
        });
        let read = self.client.get_at(stream, key, self.snapshot).await?;
        Ok(read.found.then_some(read.value))
    }

    /// Reads a key with the version that wrote it (0: never written, or not
    /// at all visible at the snapshot). The key joins the read set; the
    /// transaction's own buffered writes are not considered.
    pub async fn get_versioned(
        &mut self,
        stream: StreamId,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, u64), ClientError> {
        self.reads.push(Read::Key {
            stream,
            key: key.to_vec(),
        });
        let read = self.client.get_at(stream, key, self.snapshot).await?;
        Ok((read.found.then_some(read.value), read.value_version))
    }

    /// Buffers a put.
    pub fn put(&mut self, stream: StreamId, key: &[u8], value: &[u8]) {
        self.writes
            .insert((stream, key.to_vec()), Some(value.to_vec()));
    }

    /// Buffers a delete.
    pub fn delete(&mut self, stream: StreamId, key: &[u8]) {
        self.writes.insert((stream, key.to_vec()), None);
    }

    /// Adds an access-control operation.
    pub fn acl(&mut self, op: AclOp) {
        self.acl.push(op);
    }

    fn into_transaction(self) -> Transaction {
        Transaction {
            id: fresh_id(),
            sender: [0; 20],
            read_version: self.snapshot,
            reads: self.reads,
            writes: self
                .writes
                .into_iter()
                .map(|((stream, key), value)| Write { stream, key, value })
                .collect(),
            acl: self.acl,
        }
    }
}

impl Client {
    /// The snapshot version a transaction would read at now.
    pub async fn begin(&self) -> Result<u64, ClientError> {
        Ok(TxnClient::new(self.channel.clone())
            .begin(BeginRequest {})
            .await?
            .into_inner()
            .version)
    }

    /// Reads a key at the latest applied version.
    pub async fn get(&self, stream: StreamId, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        let read = self.get_at(stream, key, 0).await?;
        Ok(read.found.then_some(read.value))
    }

    /// Reads a key as of `version` (0: latest), waiting for it to be applied.
    pub async fn get_at(
        &self,
        stream: StreamId,
        key: &[u8],
        version: u64,
    ) -> Result<ordo_proto::v1::GetResponse, ClientError> {
        let request = GetRequest {
            stream: stream.to_vec(),
            key: key.to_vec(),
            version,
            min_version: version,
        };
        Ok(KvClient::new(self.channel.clone())
            .get(request)
            .await?
            .into_inner())
    }

    /// Reads a key at the latest version the node applied, once that is at
    /// least `min_version` (waiting, up to the node's bound): reads a
    /// commit's own write on any replica, given the version it returned.
    pub async fn get_after(
        &self,
        stream: StreamId,
        key: &[u8],
        min_version: u64,
    ) -> Result<ordo_proto::v1::GetResponse, ClientError> {
        let request = GetRequest {
            stream: stream.to_vec(),
            key: key.to_vec(),
            version: 0,
            min_version,
        };
        Ok(KvClient::new(self.channel.clone())
            .get(request)
            .await?
            .into_inner())
    }

    /// Up to `limit` rows under `prefix` at the latest applied version, in key order.
    pub async fn scan_prefix(
        &self,
        stream: StreamId,
        prefix: &[u8],
        limit: u32,
    ) -> Result<Vec<ordo_proto::v1::KeyValue>, ClientError> {
        let request = ordo_proto::v1::ScanRequest {
            stream: stream.to_vec(),
            prefix: Some(prefix.to_vec()),
            limit_rows: limit,
            ..Default::default()
        };
        Ok(KvClient::new(self.channel.clone())
            .scan(request)
            .await?
            .into_inner()
            .rows)
    }

    /// Every row under `prefix` as of one snapshot, fetched `page_rows` at a
    /// time (each page continues the previous one at the same version).
    /// Returns the rows and the version they were read at.
    pub async fn scan_all(
        &self,
        stream: StreamId,
        prefix: &[u8],
        page_rows: u32,
    ) -> Result<(Vec<ordo_proto::v1::KeyValue>, u64), ClientError> {
        let first = ordo_proto::v1::ScanRequest {
            stream: stream.to_vec(),
            prefix: Some(prefix.to_vec()),
            limit_rows: page_rows,
            ..Default::default()
        };
        let mut kv = KvClient::new(self.channel.clone());
        let mut request = first.clone();
        let mut rows = Vec::new();
        loop {
            let page = kv.scan(request).await?.into_inner();
            rows.extend(page.rows);
            if page.continuation.is_empty() {
                return Ok((rows, page.read_version));
            }
            request = ordo_proto::v1::ScanRequest {
                continuation: page.continuation,
                ..first.clone()
            };
        }
    }

    /// Committed changes under `prefix` after version `after`, as a stream
    /// that stays open; resume with the last event's version.
    pub async fn watch(
        &self,
        stream: StreamId,
        prefix: &[u8],
        after: u64,
    ) -> Result<tonic::Streaming<ordo_proto::v1::WatchEvent>, ClientError> {
        let request = ordo_proto::v1::WatchRequest {
            stream: stream.to_vec(),
            prefix: prefix.to_vec(),
            after_version: after,
        };
        Ok(KvClient::new(self.channel.clone())
            .watch(request)
            .await?
            .into_inner())
    }

    /// Commits `tx` signed by `key` (whatever the client's commit mode)
    /// and waits for the log's decision.
    pub async fn commit_signed(
        &self,
        tx: Transaction,
        key: &SigningKey,
    ) -> Result<CommitResponse, ClientError> {
        let signed = ordo_txn::sign(tx, key).map_err(|e| ClientError::Signing(e.to_string()))?;
        let request = CommitRequest {
            transaction: signed.encode(),
        };
        Ok(TxnClient::new(self.channel.clone())
            .commit(request)
            .await?
            .into_inner())
    }

    /// Commits one access-control (or mining) operation as `key`'s account,
    /// as a transaction of its own (retried as [`Client::transact`] does);
    /// returns the commit version.
    pub async fn apply_op(&self, key: &SigningKey, op: AclOp) -> Result<u64, ClientError> {
        let ((), version) = self
            .transact(key, async |tx| {
                tx.acl(op.clone());
                Ok(())
            })
            .await?;
        Ok(version)
    }

    /// Runs `body` as one serializable transaction of `key`'s account
    /// (committed as the client's [`crate::CommitMode`] says), and
    /// returns its result with the commit version.
    ///
    /// `body` may run several times: after a conflict or a too-old snapshot
    /// it runs again at a fresh snapshot. It must not have effects outside
    /// the transaction. Any other abort is returned as
    /// [`ClientError::Aborted`].
    pub async fn transact<T>(
        &self,
        key: &SigningKey,
        mut body: impl AsyncFnMut(&mut TxContext<'_>) -> Result<T, ClientError>,
    ) -> Result<(T, u64), ClientError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut context = TxContext {
                client: self,
                snapshot: self.begin().await?,
                reads: vec![],
                writes: BTreeMap::new(),
                acl: vec![],
            };
            let value = body(&mut context).await?;
            let decided = self.commit(context.into_transaction(), key).await?;
            match decided.outcome.as_str() {
                "committed" => return Ok((value, decided.version)),
                kind if RETRYABLE.contains(&kind) && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                _ => {
                    return Err(ClientError::Aborted {
                        outcome: decided.outcome,
                        message: decided.message,
                    });
                }
            }
        }
        Err(ClientError::RetriesExhausted {
            attempts: MAX_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_differ() {
        let ids: std::collections::HashSet<TxnId> = (0..1000).map(|_| fresh_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
