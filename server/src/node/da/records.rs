//! Blob records in the replicated state, and a blob's bytes read back from
//! its parts, checked before anyone sees them.

use ordo_da::certificate::{Certificate, log_id};
use ordo_kv::{MvccStore, RocksEngine};
use ordo_log::EntryReader;
use ordo_txn::Address;
use ordo_txn::attest::SYSTEM_STREAM;
use ordo_txn::da::{BLOB_PREFIX, BlobRecord, parse_record_key, record_key};
use std::sync::Arc;

/// A record found in the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The blob.
    pub blob: [u8; 32],
    /// The record.
    pub record: BlobRecord,
}

/// The records of `blob` at version `at`: `owner`'s, or every owner's
/// (at most [`MAX_OWNERS_LISTED`]).
pub fn find(
    state: &MvccStore<Arc<RocksEngine>>,
    blob: &[u8; 32],
    owner: Option<&Address>,
    at: u64,
) -> Result<Vec<Found>, String> {
    let (start, end) = match owner {
        Some(owner) => {
            let key = record_key(blob, owner);
            let mut end = key.clone();
            end.push(0);
            (key, end)
        }
        None => {
            let start = [BLOB_PREFIX, blob.as_slice()].concat();
            let end = [start.as_slice(), &[0xff; 21]].concat();
            (start, end)
        }
    };
    let page = state
        .scan(
            &SYSTEM_STREAM,
            &start,
            Some(&end),
            at,
            MAX_OWNERS_LISTED,
            usize::MAX,
        )
        .map_err(|e| e.to_string())?;
    page.rows
        .into_iter()
        .filter(|row| parse_record_key(&row.key).is_some())
        .map(|row| {
            let record = BlobRecord::decode(&row.value)
                .map_err(|e| format!("a stored blob record does not decode: {e}"))?;
            Ok(Found {
                blob: *blob,
                record,
            })
        })
        .collect()
}

/// Most records of one blob a lookup without an owner returns.
pub const MAX_OWNERS_LISTED: usize = 64;

/// Why a blob could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A part could not be read or rebuilt from verified shards.
    #[error("reading part {seq}: {reason}")]
    Part {
        /// The part's entry.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// What was read is not the recorded blob.
    #[error("the bytes read back are not the recorded blob: {0}")]
    NotTheBlob(String),
}

/// `found`'s bytes, read from its parts through `reader` (each part's
/// shards verified against its entry's commitment, rebuilt from any `k`)
/// and then checked against the record's KZG commitment and blob id.
pub async fn read_blob(reader: &EntryReader, found: &Found) -> Result<Vec<u8>, ReadError> {
    let record = &found.record;
    let mut bytes = Vec::with_capacity(usize::try_from(record.size).unwrap_or(0));
    for part in &record.parts {
        let failed = |reason: String| ReadError::Part {
            seq: part.seq,
            reason,
        };
        let header = reader
            .header(part.seq)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if header.entry.commitment != part.commitment {
            return Err(failed(
                "its header names another commitment than the record".into(),
            ));
        }
        let (_, payload) = reader
            .payload(header)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if payload.payload.len() as u64 != part.len {
            return Err(failed("its length is not the recorded one".into()));
        }
        bytes.extend_from_slice(&payload.payload);
    }
    let (blob, commitment) = (found.blob, record.commitment.clone());
    tokio::task::spawn_blocking(move || {
        let not = |reason: String| Err(ReadError::NotTheBlob(reason));
        let commitment = match ordo_da::BlobCommitment::decode(&commitment) {
            Ok(c) if c.id() == blob => c,
            Ok(_) => return not("the recorded commitment is not the blob id's".into()),
            Err(e) => return not(e.to_string()),
        };
        match commitment.matches(&bytes) {
            Ok(true) => Ok(bytes),
            Ok(false) => not("they do not match the KZG commitment".into()),
            Err(e) => not(e.to_string()),
        }
    })
    .await
    .map_err(|e| ReadError::NotTheBlob(e.to_string()))?
}

/// `found`'s certificate, not signed yet (see [`super::certify`]).
pub async fn certificate(reader: &EntryReader, found: &Found) -> Result<Certificate, String> {
    let genesis = reader.header(0).await.map_err(|e| e.to_string())?;
    let mut headers = Vec::with_capacity(found.record.parts.len());
    for part in &found.record.parts {
        let header = reader.header(part.seq).await.map_err(|e| e.to_string())?;
        headers.push(header.encode());
    }
    let record = &found.record;
    Ok(Certificate {
        log: log_id(&genesis.encode()),
        blob: found.blob,
        owner: record.owner,
        size: record.size,
        expires_at: record.expires_at,
        recorded_in: record.recorded_in,
        commitment: record.commitment.clone(),
        headers,
        signatures: vec![],
        chain: None,
    })
}
