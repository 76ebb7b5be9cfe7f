//! `ordo.v1.Da`: disperse a blob, follow it, retrieve it, certify it.
//!
//! The work is in [`crate::node::da`]; this is the wire: the owner's
//! signed start checked, the bytes taken in order, states and records
//! turned into messages.

use crate::node::da::certify::Certifier;
use crate::node::da::records::{self, Found};
use crate::node::da::{
    CHUNK_BYTES, Dispersals, MAX_DEADLINE_AHEAD, MAX_TTL_SECS, Progress, Received, Refusal, Stage,
    Storing,
};
use crate::node::handles::Snapshots;
use ordo_log::{EntryReader, Sequencer};
use ordo_proto::v1::{
    BlobRef, BlobState, BlobStatus, CertificateResponse, DisperseRequest, DisperseResponse,
    DisperseStart, RetrieveResponse, da_server::Da, disperse_request,
};
use ordo_txn::Address;
use ordo_txn::sign::DispersalRequest;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Serves blobs.
pub struct DaService {
    dispersals: Arc<Dispersals>,
    storing: Storing,
    reader: EntryReader,
    sequencer: Arc<dyn Sequencer>,
    /// Who signs certificates.
    certifier: Certifier,
}

impl DaService {
    /// Serves blobs dispersed through `dispersals` into `storing`, read
    /// back through `reader`; certificates are signed by `certifier`.
    pub fn new(
        dispersals: Arc<Dispersals>,
        storing: Storing,
        reader: EntryReader,
        sequencer: Arc<dyn Sequencer>,
        certifier: Certifier,
    ) -> Self {
        Self {
            dispersals,
            storing,
            reader,
            sequencer,
            certifier,
        }
    }

    fn snapshots(&self) -> &Snapshots {
        &self.storing.snapshots
    }

    /// Checks the owner's start: its fields, its deadline, its signature
    /// over this node's address; returns the owner, size, hash and expiry.
    fn check_start(&self, start: &DisperseStart) -> Result<(Address, u64, [u8; 32], u64), Status> {
        let owner: Address = fixed(&start.owner, "owner")?;
        let content_hash: [u8; 32] = fixed(&start.content_hash, "content_hash")?;
        let signature: [u8; 65] = fixed(&start.signature, "signature")?;
        let max = ordo_da::limits::MAX_BLOB_BYTES as u64;
        if start.size == 0 || start.size > max {
            return Err(Status::invalid_argument(format!(
                "a blob holds 1 to {max} bytes, not {}",
                start.size
            )));
        }
        if start.ttl_secs > MAX_TTL_SECS {
            return Err(Status::invalid_argument(format!(
                "a blob is kept at most {MAX_TTL_SECS} seconds, not {}",
                start.ttl_secs
            )));
        }
        let now = super::session::unix_ms();
        let ahead = u64::try_from(MAX_DEADLINE_AHEAD.as_millis()).unwrap_or(u64::MAX);
        if start.deadline_unix_ms < now || start.deadline_unix_ms > now.saturating_add(ahead) {
            return Err(Status::unauthenticated(format!(
                "the request's deadline ({} ms) must lie between now ({now} ms) and {} s ahead",
                start.deadline_unix_ms,
                MAX_DEADLINE_AHEAD.as_secs()
            )));
        }
        let request = DispersalRequest {
            node: self.storing.commits.node.address,
            owner,
            size: start.size,
            content_hash,
            ttl_secs: start.ttl_secs,
            deadline_unix_ms: start.deadline_unix_ms,
        };
        match ordo_txn::sign::recover_canonical(&signature, request.hash()) {
            Ok(signer) if signer == owner => {}
            Ok(_) | Err(_) => {
                return Err(Status::unauthenticated(
                    "the signature is not the owner's over this request to this node",
                ));
            }
        }
        let ttl = match start.ttl_secs {
            0 => self.dispersals.limits().default_ttl_secs,
            ttl => ttl,
        };
        let expires_at = crate::node::da::unix_secs().saturating_add(ttl);
        Ok((owner, start.size, content_hash, expires_at))
    }

    /// Refuses when this node may not record blobs.
    fn check_gateway(&self) -> Result<(), Status> {
        let snapshots = self.snapshots();
        let node = &self.storing.commits.node;
        match node.is_gateway(&snapshots.state, snapshots.latest_version()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Status::failed_precondition(format!(
                "this node (0x{}) is no gateway of its log, so it cannot record blobs; disperse through a gateway",
                ordo_log::hex(&node.address)
            ))),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    /// The records of `blob` (`owner`'s, or anyone's) as of now.
    fn find(&self, blob: &[u8; 32], owner: Option<&Address>) -> Result<Vec<Found>, Status> {
        let snapshots = self.snapshots();
        records::find(&snapshots.state, blob, owner, snapshots.latest_version())
            .map_err(Status::internal)
    }

    /// One record of `blob`, or NOT_FOUND.
    fn one(&self, blob: &[u8; 32], owner: Option<&Address>) -> Result<Found, Status> {
        self.find(blob, owner)?.into_iter().next().ok_or_else(|| {
            Status::not_found(format!("no record of blob 0x{}", ordo_log::hex(blob)))
        })
    }

    /// What the journal says of a dispersal no longer running and not in
    /// the state: failed, or interrupted by a restart (then, once the
    /// replica has caught up with the log, recorded after all or failed).
    async fn journaled(
        &self,
        blob: &[u8; 32],
        owner: Option<&Address>,
    ) -> Result<BlobStatus, Status> {
        let journal = self.dispersals.journal();
        let internal = |e: crate::node::da::journal::JournalError| Status::internal(e.to_string());
        let owners = match owner {
            Some(owner) => vec![*owner],
            None => journal.owners_of(blob).map_err(internal)?,
        };
        for owner in owners {
            let Some(noted) = journal.read(blob, &owner).map_err(internal)? else {
                continue;
            };
            let reason = match noted.state.as_str() {
                "failed" => noted.reason,
                "finalized" => format!(
                    "blob 0x{} was recorded, and its record has since been deleted or expired",
                    noted.blob
                ),
                _ => {
                    // Taken by this node, never finished: a record in the
                    // log counts once the replica has applied it.
                    self.snapshots()
                        .applied_through(self.sequencer.tail())
                        .await;
                    if let Some(found) = self.find(blob, Some(&owner))?.into_iter().next() {
                        return Ok(finalized(&found));
                    }
                    "the node stopped during this dispersal and nothing was recorded; disperse the blob again".into()
                }
            };
            return Ok(BlobStatus {
                state: BlobState::Failed.into(),
                reason,
                blob_id: blob.to_vec(),
                owner: owner.to_vec(),
                size: noted.size,
                ..BlobStatus::default()
            });
        }
        Err(Status::not_found(format!(
            "this node knows no dispersal of blob 0x{}",
            ordo_log::hex(blob)
        )))
    }
}

type RetrieveStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<RetrieveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Da for DaService {
    async fn disperse(
        &self,
        request: Request<Streaming<DisperseRequest>>,
    ) -> Result<Response<DisperseResponse>, Status> {
        let mut stream = request.into_inner();
        let start = match stream.message().await?.and_then(|m| m.message) {
            Some(disperse_request::Message::Start(start)) => start,
            _ => {
                return Err(Status::invalid_argument(
                    "a dispersal starts with its signed start",
                ));
            }
        };
        let (owner, size, content_hash, expires_at) = self.check_start(&start)?;
        self.check_gateway()?;
        let room = self.dispersals.admit(owner, size).map_err(refusal_status)?;
        let received = receive(&mut stream, size, &content_hash).await;
        let bytes = received.inspect_err(|_| self.dispersals.refund(owner, size))?;
        let (bytes, commitment) = self.dispersals.commit(bytes).await.map_err(|e| {
            self.dispersals.refund(owner, size);
            Status::internal(format!("committing to the blob: {e}"))
        })?;
        let recorded = (self.find(&commitment.id(), Some(&owner)))
            .inspect_err(|_| self.dispersals.refund(owner, size))?;
        if let Some(found) = recorded.into_iter().next() {
            // Recorded before: nothing to store again.
            self.dispersals.refund(owner, size);
            return Ok(Response::new(DisperseResponse {
                status: Some(finalized(&found)),
            }));
        }
        let received = Received {
            bytes,
            owner,
            commitment,
            expires_at,
            room,
        };
        let (progress, started) = (self.dispersals.start(received, self.storing.clone()))
            .map_err(|e| Status::unavailable(format!("noting the dispersal: {e}")))?;
        if !started {
            // The same owner's dispersal of the same blob already runs.
            self.dispersals.refund(owner, size);
        }
        Ok(Response::new(DisperseResponse {
            status: Some(running(&progress)),
        }))
    }

    async fn status(&self, request: Request<BlobRef>) -> Result<Response<BlobStatus>, Status> {
        let (blob, owner) = blob_ref(&request.into_inner())?;
        if let Some(progress) = self.dispersals.running(&blob, owner.as_ref()) {
            return Ok(Response::new(running(&progress)));
        }
        if let Some(found) = self.find(&blob, owner.as_ref())?.into_iter().next() {
            return Ok(Response::new(finalized(&found)));
        }
        self.journaled(&blob, owner.as_ref())
            .await
            .map(Response::new)
    }

    type RetrieveStream = RetrieveStream;

    async fn retrieve(
        &self,
        request: Request<BlobRef>,
    ) -> Result<Response<RetrieveStream>, Status> {
        let (blob, owner) = blob_ref(&request.into_inner())?;
        let found = self.one(&blob, owner.as_ref())?;
        let room = self
            .dispersals
            .reading_room(found.record.size)
            .map_err(refusal_status)?;
        let bytes = records::read_blob(&self.reader, &found)
            .await
            .map_err(|e| Status::data_loss(e.to_string()))?;
        self.storing
            .commits
            .metrics
            .count_da_retrieved(bytes.len() as u64);
        // Each message copies its run when sent: the blob is held once,
        // with its room, until the stream ends or is dropped.
        let size = bytes.len() as u64;
        let runs = bytes.len().div_ceil(CHUNK_BYTES).max(1);
        let messages = (0..runs).map(move |i| {
            let _held = &room;
            let run = &bytes
                [(i * CHUNK_BYTES).min(bytes.len())..((i + 1) * CHUNK_BYTES).min(bytes.len())];
            Ok(RetrieveResponse {
                size: if i == 0 { size } else { 0 },
                chunk: run.to_vec(),
            })
        });
        let stream = tokio_stream::iter(messages);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn certificate(
        &self,
        request: Request<BlobRef>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let (blob, owner) = blob_ref(&request.into_inner())?;
        let found = self.one(&blob, owner.as_ref())?;
        let mut certificate = records::certificate(&self.reader, &found)
            .await
            .map_err(Status::unavailable)?;
        let signed_by =
            (self.certifier.sign(&mut certificate).await).map_err(Status::unavailable)?;
        Ok(Response::new(CertificateResponse {
            certificate: certificate.encode(),
            signed_by: signed_by.iter().map(|a| a.to_vec()).collect(),
        }))
    }
}

/// Takes the blob's bytes from `stream`: exactly `size` of them, in chunks
/// of at most [`CHUNK_BYTES`], hashing to `content_hash`.
async fn receive(
    stream: &mut Streaming<DisperseRequest>,
    size: u64,
    content_hash: &[u8; 32],
) -> Result<Vec<u8>, Status> {
    let size = usize::try_from(size).map_err(|_| Status::invalid_argument("blob too large"))?;
    let mut bytes = Vec::with_capacity(size);
    while let Some(message) = stream.message().await? {
        let Some(disperse_request::Message::Chunk(chunk)) = message.message else {
            return Err(Status::invalid_argument(
                "after the start, a dispersal sends only bytes",
            ));
        };
        if chunk.len() > CHUNK_BYTES || bytes.len() + chunk.len() > size {
            return Err(Status::invalid_argument(format!(
                "chunks hold at most {CHUNK_BYTES} bytes and the blob {size}"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() != size {
        return Err(Status::invalid_argument(format!(
            "the stream ended after {} of the {size} bytes the start announced",
            bytes.len()
        )));
    }
    if blake3::hash(&bytes).as_bytes() != content_hash {
        return Err(Status::invalid_argument(
            "the bytes do not hash to the content hash the owner signed",
        ));
    }
    Ok(bytes)
}

fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Invalid(m) => Status::invalid_argument(m),
        Refusal::Exhausted(m) => Status::resource_exhausted(m),
    }
}

fn fixed<const N: usize>(bytes: &[u8], field: &str) -> Result<[u8; N], Status> {
    bytes
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("{field} is {} bytes, not {N}", bytes.len())))
}

/// The blob and owner a reference names (owner optional).
fn blob_ref(reference: &BlobRef) -> Result<([u8; 32], Option<Address>), Status> {
    let blob = fixed(&reference.blob_id, "blob_id")?;
    let owner = match reference.owner.is_empty() {
        true => None,
        false => Some(fixed(&reference.owner, "owner")?),
    };
    Ok((blob, owner))
}

fn running(progress: &Progress) -> BlobStatus {
    let (state, parts_done, reason) = match &progress.stage {
        Stage::Queued => (BlobState::Queued, 0, String::new()),
        Stage::Storing(done) => (BlobState::Stored, *done, String::new()),
        Stage::Ordered => (BlobState::Ordered, progress.parts, String::new()),
    };
    BlobStatus {
        state: state.into(),
        reason,
        blob_id: progress.blob.to_vec(),
        owner: progress.owner.to_vec(),
        size: progress.size,
        parts: progress.parts,
        parts_done,
        ..BlobStatus::default()
    }
}

fn finalized(found: &Found) -> BlobStatus {
    let record = &found.record;
    let parts = record.parts.len() as u32;
    BlobStatus {
        state: BlobState::Finalized.into(),
        reason: String::new(),
        blob_id: found.blob.to_vec(),
        owner: record.owner.to_vec(),
        size: record.size,
        parts,
        parts_done: parts,
        part_seqs: record.parts.iter().map(|p| p.seq).collect(),
        recorded_in: record.recorded_in,
        expires_at: record.expires_at,
    }
}
