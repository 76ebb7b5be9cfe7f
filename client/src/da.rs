//! Blobs (docs/DA.md): disperse one under an owner's key, follow it to its
//! record, read it back, fetch its certificate.

use crate::{Client, ClientError};
use ordo_proto::v1::{
    BlobRef, BlobState, BlobStatus, DisperseRequest, DisperseStart, da_client::DaClient,
    disperse_request,
};
use ordo_txn::sign::DispersalRequest;
use ordo_txn::{Address, SigningKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per dispersal message (the node takes at most 1 MiB).
pub const CHUNK_BYTES: usize = 1 << 20;

/// How long a signed start stays good: the node refuses deadlines more
/// than five minutes ahead.
pub const START_VALIDITY: std::time::Duration = std::time::Duration::from_secs(120);

/// How often [`Client::wait_for_blob`] asks.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The largest message a retrieval answers with (a chunk and its framing).
const MAX_RETRIEVE_MESSAGE: usize = 2 << 20;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A blob and, optionally, whose record of it.
fn reference(blob: [u8; 32], owner: Option<Address>) -> BlobRef {
    BlobRef {
        blob_id: blob.to_vec(),
        owner: owner.map(|o| o.to_vec()).unwrap_or_default(),
    }
}

impl Client {
    /// Disperses `blob` owned by `key`'s account, kept `ttl_secs` (0: the
    /// node's default). `sent` counts the bytes handed to the connection
    /// as they go. Returns once the node holds the blob and knows its id;
    /// follow it with [`Client::wait_for_blob`].
    pub async fn disperse(
        &self,
        key: &SigningKey,
        blob: Arc<Vec<u8>>,
        ttl_secs: u64,
        sent: Arc<AtomicU64>,
    ) -> Result<BlobStatus, ClientError> {
        let node: Address = self
            .status()
            .await?
            .node_address
            .try_into()
            .map_err(|_| ClientError::Protocol("its status names no 20-byte address".into()))?;
        let window = u64::try_from(START_VALIDITY.as_millis()).unwrap_or(u64::MAX);
        let request = DispersalRequest {
            node,
            owner: ordo_txn::address_of(key),
            size: blob.len() as u64,
            content_hash: *blake3::hash(&blob).as_bytes(),
            ttl_secs,
            deadline_unix_ms: unix_ms().saturating_add(window),
        };
        let signature = ordo_txn::sign::sign_hash(request.hash(), key)
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        let start = DisperseRequest {
            message: Some(disperse_request::Message::Start(DisperseStart {
                owner: request.owner.to_vec(),
                size: request.size,
                content_hash: request.content_hash.to_vec(),
                ttl_secs,
                deadline_unix_ms: request.deadline_unix_ms,
                signature: signature.to_vec(),
            })),
        };
        let chunks = (0..blob.len().div_ceil(CHUNK_BYTES)).map(move |i| {
            let end = ((i + 1) * CHUNK_BYTES).min(blob.len());
            let chunk = blob[i * CHUNK_BYTES..end].to_vec();
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            DisperseRequest {
                message: Some(disperse_request::Message::Chunk(chunk)),
            }
        });
        let messages = tokio_stream::iter(std::iter::once(start).chain(chunks));
        let response = DaClient::new(self.channel.clone())
            .disperse(messages)
            .await?;
        response
            .into_inner()
            .status
            .ok_or_else(|| ClientError::Protocol("a dispersal answered without a status".into()))
    }

    /// Where `blob`'s dispersal stands (`owner`'s, or anyone's).
    pub async fn blob_status(
        &self,
        blob: [u8; 32],
        owner: Option<Address>,
    ) -> Result<BlobStatus, ClientError> {
        let mut da = DaClient::new(self.channel.clone());
        Ok(da.status(reference(blob, owner)).await?.into_inner())
    }

    /// Asks every [`POLL_INTERVAL`] until `blob`'s dispersal is finalized
    /// or failed (`seen` is shown each answer), for at most `timeout`.
    pub async fn wait_for_blob(
        &self,
        blob: [u8; 32],
        owner: Option<Address>,
        timeout: std::time::Duration,
        mut seen: impl FnMut(&BlobStatus),
    ) -> Result<BlobStatus, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.blob_status(blob, owner).await?;
            seen(&status);
            let done = matches!(status.state(), BlobState::Finalized | BlobState::Failed);
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `blob`'s bytes (`owner`'s record, or anyone's), checked by the node
    /// against the recorded commitment; `received` counts them as they
    /// arrive, and learns the size from the first message.
    pub async fn retrieve(
        &self,
        blob: [u8; 32],
        owner: Option<Address>,
        mut received: impl FnMut(u64, u64),
    ) -> Result<Vec<u8>, ClientError> {
        let mut da =
            DaClient::new(self.channel.clone()).max_decoding_message_size(MAX_RETRIEVE_MESSAGE);
        let mut stream = da.retrieve(reference(blob, owner)).await?.into_inner();
        let mut bytes = Vec::new();
        let mut size = 0;
        while let Some(message) = stream.message().await? {
            if bytes.is_empty() {
                size = message.size;
                bytes.reserve(usize::try_from(size).unwrap_or(0));
            }
            bytes.extend_from_slice(&message.chunk);
            received(bytes.len() as u64, size);
        }
        Ok(bytes)
    }

    /// `blob`'s certificate (`ODT1` bytes) and the keys that signed it.
    pub async fn certificate(
        &self,
        blob: [u8; 32],
        owner: Option<Address>,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), ClientError> {
        let mut da = DaClient::new(self.channel.clone());
        let answer = da.certificate(reference(blob, owner)).await?.into_inner();
        Ok((answer.certificate, answer.signed_by))
    }
}
