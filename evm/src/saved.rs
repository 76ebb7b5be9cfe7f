//! The followed headers kept on disk, so that a restarted node asks the
//! chain only for the blocks after the last one it scanned instead of
//! every event since the contract was deployed.
//!
//! Two files in the directory the settings name:
//!
//! ```text
//! headers   every followed header in seq order, each as
//!           len u32 LE | EntryHeader::encode()
//! cursor    "OEC1" | chain_id u64 | contract[20] | headers u64
//!           | scanned u64 | anchor_number u64 | anchor_hash[32]
//!           (all integers LE; anchor_number u64::MAX: no anchor yet)
//! ```
//!
//! Headers are appended and synced before the cursor that counts them is
//! replaced (written aside, then renamed), so the cursor never counts a
//! header that is not on disk. A crash between the two leaves headers past
//! the cursor's count: they are cut off at open and taken from the chain
//! again, from the block after the cursor's `scanned`. A cursor for another
//! chain or contract is refused, not overwritten.
//!
//! On open the anchor is checked like any other (a reorg past it while
//! the node was down stops the sequencer), and every header's seq must be
//! its place in the file.

use alloy::primitives::{Address as ChainAddress, B256};
use ordo_log::EntryHeader;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const CURSOR_MAGIC: &[u8; 4] = b"OEC1";
const CURSOR_LEN: usize = 4 + 8 + 20 + 8 + 8 + 8 + 32;
const NO_ANCHOR: u64 = u64::MAX;

/// Why the saved headers could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The files could not be read or written.
    #[error("the saved chain headers in {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The files do not hold what this module writes.
    #[error("the saved chain headers in {dir} are damaged: {reason}")]
    Damaged {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The files follow another contract.
    #[error(
        "the saved chain headers in {dir} follow contract {saved} on chain {saved_chain}, not contract {contract} on chain {chain_id}"
    )]
    OtherContract {
        /// The directory.
        dir: PathBuf,
        /// The contract they follow.
        saved: ChainAddress,
        /// The chain they follow.
        saved_chain: u64,
        /// The contract asked for.
        contract: ChainAddress,
        /// The chain asked for.
        chain_id: u64,
    },
}

/// What was followed, as saved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Every header taken, in seq order.
    pub headers: Vec<EntryHeader>,
    /// The last block scanned for events.
    pub scanned: Option<u64>,
    /// The newest block headers were taken from, and its hash.
    pub anchor: Option<(u64, B256)>,
}

/// The saved headers of one contract.
#[derive(Debug)]
pub struct SavedHeaders {
    dir: PathBuf,
    chain_id: u64,
    contract: ChainAddress,
    /// Headers on disk (the file is cut to this at open).
    written: u64,
    /// The bytes they take: an append first cuts the file back to this, so
    /// one that failed half-way leaves no broken record behind.
    bytes: u64,
}

impl SavedHeaders {
    /// Opens (creating if needed) the saved headers in `dir` for
    /// `contract` on `chain_id`, and reads what they hold.
    pub fn open(
        dir: &Path,
        chain_id: u64,
        contract: ChainAddress,
    ) -> Result<(Self, Progress), SavedError> {
        let io = |source| SavedError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut saved = Self {
            dir: dir.to_path_buf(),
            chain_id,
            contract,
            written: 0,
            bytes: 0,
        };
        let Some(cursor) = saved.read_cursor()? else {
            saved.cut_headers(0)?;
            return Ok((saved, Progress::default()));
        };
        let (headers, used) = saved.read_headers(cursor.headers)?;
        saved.cut_headers(used)?;
        saved.written = cursor.headers;
        saved.bytes = used;
        let progress = Progress {
            headers,
            scanned: Some(cursor.scanned),
            anchor: cursor.anchor,
        };
        Ok((saved, progress))
    }

    /// Saves `progress`: appends (and syncs) the headers not yet on disk,
    /// then replaces the cursor.
    pub fn save(&mut self, progress: &Progress) -> Result<(), SavedError> {
        let count = progress.headers.len() as u64;
        if count > self.written {
            let new = &progress.headers[self.written as usize..];
            self.append_headers(new)?;
            self.written = count;
        }
        let Some(scanned) = progress.scanned else {
            return Ok(());
        };
        self.write_cursor(&Cursor {
            headers: count,
            scanned,
            anchor: progress.anchor,
        })
    }

    fn io(&self, source: std::io::Error) -> SavedError {
        SavedError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    fn damaged(&self, reason: String) -> SavedError {
        SavedError::Damaged {
            dir: self.dir.clone(),
            reason,
        }
    }

    fn headers_path(&self) -> PathBuf {
        self.dir.join("headers")
    }

    fn append_headers(&mut self, headers: &[EntryHeader]) -> Result<(), SavedError> {
        let mut bytes = Vec::new();
        for header in headers {
            let encoded = header.encode();
            bytes.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&encoded);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.headers_path())
            .map_err(|e| self.io(e))?;
        file.set_len(self.bytes).map_err(|e| self.io(e))?;
        file.write_all(&bytes).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Reads the first `count` headers, checking each one's seq; with the
    /// bytes they take.
    fn read_headers(&self, count: u64) -> Result<(Vec<EntryHeader>, u64), SavedError> {
        let mut bytes = Vec::new();
        match File::open(self.headers_path()) {
            Ok(mut file) => file.read_to_end(&mut bytes).map_err(|e| self.io(e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(self.io(e)),
        };
        let mut headers = Vec::with_capacity(count as usize);
        let mut rest = &bytes[..];
        while (headers.len() as u64) < count {
            let seq = headers.len() as u64;
            let short = || self.damaged(format!("the headers file ends before header {seq}"));
            let (len, after) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let len = u32::from_le_bytes(*len) as usize;
            let record = after.get(..len).ok_or_else(short)?;
            let header = EntryHeader::decode(record)
                .map_err(|e| self.damaged(format!("header {seq}: {e}")))?;
            if header.seq != seq {
                return Err(self.damaged(format!("header {seq} says seq {}", header.seq)));
            }
            headers.push(header);
            rest = &after[len..];
        }
        Ok((headers, (bytes.len() - rest.len()) as u64))
    }

    /// Cuts the headers file to its first `len` bytes (dropping records
    /// appended after the cursor was last replaced).
    fn cut_headers(&self, len: u64) -> Result<(), SavedError> {
        let file = match OpenOptions::new().write(true).open(self.headers_path()) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && len == 0 => return Ok(()),
            Err(e) => return Err(self.io(e)),
        };
        let on_disk = file.metadata().map_err(|e| self.io(e))?.len();
        if len < on_disk {
            file.set_len(len).map_err(|e| self.io(e))?;
            file.sync_data().map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn read_cursor(&self) -> Result<Option<Cursor>, SavedError> {
        let bytes = match std::fs::read(self.dir.join("cursor")) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let cursor = Cursor::decode(&bytes).ok_or_else(|| {
            self.damaged(format!(
                "a cursor of {} bytes, not {CURSOR_LEN}",
                bytes.len()
            ))
        })?;
        let (chain_id, contract) = cursor.0;
        if (chain_id, contract) != (self.chain_id, self.contract) {
            return Err(SavedError::OtherContract {
                dir: self.dir.clone(),
                saved: contract,
                saved_chain: chain_id,
                contract: self.contract,
                chain_id: self.chain_id,
            });
        }
        Ok(Some(cursor.1))
    }

    fn write_cursor(&self, cursor: &Cursor) -> Result<(), SavedError> {
        let aside = self.dir.join("cursor.new");
        let bytes = cursor.encode(self.chain_id, self.contract);
        std::fs::write(&aside, bytes).map_err(|e| self.io(e))?;
        std::fs::rename(&aside, self.dir.join("cursor")).map_err(|e| self.io(e))
    }
}

/// How far following got, as the cursor file records it.
struct Cursor {
    headers: u64,
    scanned: u64,
    anchor: Option<(u64, B256)>,
}

impl Cursor {
    fn encode(&self, chain_id: u64, contract: ChainAddress) -> Vec<u8> {
        let (number, hash) = self.anchor.unwrap_or((NO_ANCHOR, B256::ZERO));
        let mut bytes = Vec::with_capacity(CURSOR_LEN);
        bytes.extend_from_slice(CURSOR_MAGIC);
        bytes.extend_from_slice(&chain_id.to_le_bytes());
        bytes.extend_from_slice(contract.as_slice());
        for value in [self.headers, self.scanned, number] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(hash.as_slice());
        bytes
    }

    /// The chain and contract, and the cursor; `None` if `bytes` is not a
    /// cursor.
    fn decode(bytes: &[u8]) -> Option<((u64, ChainAddress), Self)> {
        if bytes.len() != CURSOR_LEN || !bytes.starts_with(CURSOR_MAGIC) {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        let chain_id = u64_at(4)?;
        let contract = ChainAddress::from_slice(bytes.get(12..32)?);
        let (headers, scanned, number) = (u64_at(32)?, u64_at(40)?, u64_at(48)?);
        let hash = B256::from_slice(bytes.get(56..88)?);
        let anchor = (number != NO_ANCHOR).then_some((number, hash));
        let cursor = Self {
            headers,
            scanned,
            anchor,
        };
        Some(((chain_id, contract), cursor))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(seq: u64) -> EntryHeader {
        EntryHeader {
            seq,
            entry: ordo_log::stress::descriptor(1, 0, seq),
        }
    }

    fn progress(count: u64, scanned: u64) -> Progress {
        Progress {
            headers: (0..count).map(header).collect(),
            scanned: Some(scanned),
            anchor: Some((scanned, B256::repeat_byte(7))),
        }
    }

    const CONTRACT: ChainAddress = ChainAddress::repeat_byte(0xc0);

    #[test]
    fn saved_headers_come_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut saved, empty) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        assert_eq!(empty, Progress::default());
        saved.save(&progress(3, 10)).unwrap();
        saved.save(&progress(5, 12)).unwrap();
        drop(saved);
        let (_, back) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        assert_eq!(back, progress(5, 12));
    }

    #[test]
    fn headers_past_the_cursor_are_cut_off_and_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut saved, _) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        saved.save(&progress(2, 10)).unwrap();
        // A crash after appending two more headers, before the cursor.
        saved.append_headers(&[header(2), header(3)]).unwrap();
        drop(saved);
        let (mut saved, back) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        assert_eq!(back, progress(2, 10));
        saved.save(&progress(4, 11)).unwrap();
        let (_, again) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        assert_eq!(again, progress(4, 11), "no header twice");
    }

    #[test]
    fn another_contract_s_headers_are_refused_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (mut saved, _) = SavedHeaders::open(dir.path(), 1, CONTRACT).unwrap();
        saved.save(&progress(2, 10)).unwrap();
        let other = SavedHeaders::open(dir.path(), 1, ChainAddress::repeat_byte(1));
        assert!(matches!(other, Err(SavedError::OtherContract { .. })));
        let chain = SavedHeaders::open(dir.path(), 2, CONTRACT);
        assert!(matches!(chain, Err(SavedError::OtherContract { .. })));
        std::fs::write(dir.path().join("headers"), b"\x05\0\0\0ab").unwrap();
        let damaged = SavedHeaders::open(dir.path(), 1, CONTRACT);
        assert!(
            matches!(damaged, Err(SavedError::Damaged { .. })),
            "{damaged:?}"
        );
    }
}
