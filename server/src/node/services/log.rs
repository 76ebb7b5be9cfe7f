//! `ordo.v1.Log`: append raw entries and read the tail.

use crate::node::appenders::{AppendRefusal, Appenders};
use ordo_log::{EntryError, EntryReader, EntryWriter, LogError, Sequencer};
use ordo_proto::v1::{
    AppendRequest, AppendResponse, ReadRequest, ReadResponse, TailRequest, TailResponse,
    log_server::Log,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves appends to the node's log.
pub struct LogService {
    writer: EntryWriter,
    reader: EntryReader,
    sequencer: Arc<dyn Sequencer>,
    appenders: Arc<Appenders>,
}

impl LogService {
    /// Appends through `writer` for `appenders` only, reads through
    /// `reader`, and reports `sequencer`'s tail.
    pub fn new(
        writer: EntryWriter,
        reader: EntryReader,
        sequencer: Arc<dyn Sequencer>,
        appenders: Arc<Appenders>,
    ) -> Self {
        Self {
            writer,
            reader,
            sequencer,
            appenders,
        }
    }
}

/// Turns the tags of a request into stream ids, refusing any that is not 32 bytes.
fn tags(raw: Vec<Vec<u8>>) -> Result<Vec<ordo_log::StreamId>, Status> {
    raw.into_iter()
        .enumerate()
        .map(|(i, tag)| {
            let len = tag.len();
            tag.try_into().map_err(|_| {
                Status::invalid_argument(format!("tag {i} is {len} bytes; stream ids are 32 bytes"))
            })
        })
        .collect()
}

/// The gRPC status for a failed append: the caller's fault or the node's.
fn append_status(error: EntryError) -> Status {
    match error {
        EntryError::Log(e @ (LogError::PayloadTooLarge { .. } | LogError::TooManyTags { .. })) => {
            Status::invalid_argument(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "append failed");
            Status::unavailable(format!("append failed: {other}"))
        }
    }
}

/// Most leaves one Read may ask a proof for.
pub const MAX_PROOF_LEAVES: u64 = 1024;

fn read_status(error: EntryError) -> Status {
    match error {
        EntryError::NotCommitted { .. } => Status::not_found(error.to_string()),
        other => Status::data_loss(format!("reading the entry: {other}")),
    }
}

/// The real chunks of a leaf run and the sibling hashes proving them.
type ChunksAndProof = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Re-codes a verified payload to prove a run of its leaves.
fn prove(
    header: &ordo_log::EntryHeader,
    payload: &[u8],
    first: u64,
    last: u64,
) -> Result<ChunksAndProof, Status> {
    if last < first || last - first >= MAX_PROOF_LEAVES {
        return Err(Status::invalid_argument(format!(
            "leaf range {first}..={last}: at most {MAX_PROOF_LEAVES} leaves, first <= last"
        )));
    }
    let g = &header.entry.geometry;
    let encoded = ordo_log::Coder::new()
        .encode(payload, g.chunk_size, g.data_shards, g.parity_shards)
        .map_err(|e| Status::internal(format!("re-coding the entry: {e}")))?;
    if encoded.commitment != header.entry.commitment {
        return Err(Status::data_loss(
            "the payload does not re-code to its commitment",
        ));
    }
    let proof = encoded
        .prove_chunks(first, last)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let chunks = (first..=last)
        .filter_map(|leaf| encoded.chunk(leaf).map(<[u8]>::to_vec))
        .collect();
    Ok((chunks, proof.siblings.iter().map(|h| h.to_vec()).collect()))
}

#[tonic::async_trait]
impl Log for LogService {
    async fn read(&self, request: Request<ReadRequest>) -> Result<Response<ReadResponse>, Status> {
        let request = request.into_inner();
        let (header, verified) = self.reader.read(request.seq).await.map_err(read_status)?;
        let (chunks, proof_siblings) = match (request.first_leaf, request.last_leaf) {
            (None, None) => (vec![], vec![]),
            (Some(first), Some(last)) => {
                let (header, payload) = (header.clone(), verified.payload.clone());
                tokio::task::spawn_blocking(move || prove(&header, &payload, first, last))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))??
            }
            _ => {
                return Err(Status::invalid_argument(
                    "give both first_leaf and last_leaf, or neither",
                ));
            }
        };
        let g = header.entry.geometry;
        Ok(Response::new(ReadResponse {
            seq: header.seq,
            commitment: header.entry.commitment.to_vec(),
            payload_len: g.payload_len,
            chunk_size: g.chunk_size,
            data_shards: u32::from(g.data_shards),
            parity_shards: u32::from(g.parity_shards),
            tags: header.entry.tags.iter().map(|t| t.to_vec()).collect(),
            submitter: header.entry.submitter.to_vec(),
            payload: verified.payload,
            chunks,
            proof_siblings,
        }))
    }

    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let request = request.into_inner();
        let tags = tags(request.tags)?;
        let (payload, nonce) = (request.payload, request.nonce);
        let signature: [u8; 65] = request.signature.as_slice().try_into().map_err(|_| {
            Status::permission_denied("raw appends must carry a 65-byte signature of an appender")
        })?;
        // Hashing a payload of up to 64 MiB is CPU work: off the async workers.
        let (signer, payload, tags) = tokio::task::spawn_blocking(move || {
            let hash = ordo_txn::sign::append_hash(nonce, &tags, &payload);
            let signer = ordo_txn::sign::recover_canonical(&signature, hash);
            (signer, payload, tags)
        })
        .await
        .map_err(|e| Status::internal(format!("checking the signature: {e}")))?;
        let signer =
            signer.map_err(|e| Status::permission_denied(format!("bad append signature: {e}")))?;
        self.appenders
            .admit(signer, nonce)
            .map_err(|refusal| match refusal {
                AppendRefusal::Io(e) => Status::unavailable(format!("recording the nonce: {e}")),
                refused => Status::permission_denied(refused.to_string()),
            })?;
        // The authenticated appender is the entry's submitter.
        let header = self
            .writer
            .append(payload, tags, signer)
            .await
            .map_err(append_status)?;
        Ok(Response::new(AppendResponse {
            seq: header.seq,
            commitment: header.entry.commitment.to_vec(),
        }))
    }

    async fn tail(&self, _request: Request<TailRequest>) -> Result<Response<TailResponse>, Status> {
        Ok(Response::new(TailResponse {
            tail: self.sequencer.tail(),
        }))
    }
}
