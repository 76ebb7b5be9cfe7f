//! A single-process sequencer on a durable append-only file, with group commit.
//!
//! # File format
//!
//! `sequencer.log` is a series of frames, one per fsync:
//!
//! ```text
//! magic      u32 LE  = FRAME_MAGIC
//! body_len   u32 LE
//! first_seq  u64 LE
//! count      u32 LE
//! crc32c     u32 LE  over first_seq, count and the body
//! body       count x (len u16 LE, encoded EntryHeader)
//! ```
//!
//! # Group commit
//!
//! Appenders hand their descriptors to one writer thread through a bounded
//! queue. The writer takes everything waiting (up to
//! [`MAX_GROUP_COMMIT_ENTRIES`]), gives it consecutive seqs, writes one frame
//! and fsyncs once, then answers every appender in that group. Concurrent
//! appenders thus share the cost of one fsync.
//!
//! # Crash safety
//!
//! A frame is written only after the previous one is on disk, so only the
//! last frame can be torn. On open, a last frame that is incomplete or fails
//! its checksum is dropped (no appender was told about it: replies go out
//! after the fsync). A damaged frame *followed by more data* is not a torn
//! tail; opening fails with [`SequencerError::Corrupt`] rather than silently
//! dropping acknowledged entries.

use super::api::{Sequencer, SequencerError, WriteFault};
use super::writer_thread::{WriterThread, wait_beyond};
use crate::header::MAX_HEADER_BYTES;
use crate::limits::{MAX_GROUP_COMMIT_ENTRIES, MAX_READ_BATCH};
use crate::{EntryDescriptor, EntryHeader};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot, watch};

const FILE_NAME: &str = "sequencer.log";
const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"OSQ1");
const FRAME_HEADER_LEN: usize = 24;

/// Where each committed header lies in the file.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    len: u16,
}

/// Options of a [`LocalSequencer`].
#[derive(Debug, Clone)]
pub struct LocalSequencerOptions {
    /// fsync every frame. Turning this off breaks the durability promise and
    /// exists only for benchmarks that want to see the cost of fsync.
    pub fsync: bool,
    /// A switch that fails the next frame write, for the conformance
    /// suite's failure checks; `None` on real nodes.
    pub write_fault: Option<Arc<WriteFault>>,
}

impl Default for LocalSequencerOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            write_fault: None,
        }
    }
}

struct Request {
    entry: EntryDescriptor,
    reply: oneshot::Sender<Result<EntryHeader, SequencerError>>,
}

/// State the writer thread and readers share.
struct Shared {
    slots: RwLock<Vec<Slot>>,
    tail: watch::Sender<u64>,
    /// A separate open of the file (not a clone of the writer's descriptor),
    /// so the writer's lock is released when the writer closes, even while
    /// readers remain.
    reader: File,
    /// Time each fsync of a group took.
    fsync_micros: crate::stats::Histogram,
}

/// The embedded sequencer: see the module documentation.
pub struct LocalSequencer {
    shared: Arc<Shared>,
    writer: WriterThread<Request>,
    path: PathBuf,
}

impl std::fmt::Debug for LocalSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSequencer")
            .field("path", &self.path)
            .field("tail", &self.tail())
            .finish()
    }
}

impl LocalSequencer {
    /// Opens the log in `dir` (creating both if needed), drops a torn tail,
    /// and starts the writer thread. Fails if another handle holds the log.
    pub fn open(
        dir: impl AsRef<Path>,
        options: LocalSequencerOptions,
    ) -> Result<Self, SequencerError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => SequencerError::Locked(path.display().to_string()),
            std::fs::TryLockError::Error(e) => {
                SequencerError::Io(format!("locking {}: {e}", path.display()))
            }
        })?;
        if !existed {
            File::open(dir)?.sync_all()?;
        }
        let (slots, end) = recover(&file)?;
        let tail = slots.len() as u64;
        let shared = Arc::new(Shared {
            slots: RwLock::new(slots),
            tail: watch::Sender::new(tail),
            reader: File::open(&path)?,
            fsync_micros: crate::stats::Histogram::new(crate::stats::LATENCY_BOUNDS_MICROS),
        });
        let writer = Writer {
            file,
            end,
            next_seq: tail,
            fsync: options.fsync,
            shared: shared.clone(),
            poisoned: None,
            write_fault: options.write_fault,
        };
        let writer = WriterThread::spawn("ordo-sequencer", move |requests| writer.run(requests))?;
        Ok(Self {
            shared,
            writer,
            path,
        })
    }

    /// How long the group fsyncs took, in microseconds.
    pub fn fsync_latency(&self) -> crate::stats::HistogramSnapshot {
        self.shared.fsync_micros.snapshot()
    }

    /// Stops taking appends, lets the writer finish what it has, and waits
    /// for it, releasing the file lock. Appends after this fail with `Closed`.
    pub fn close(&self) {
        self.writer.close();
    }

    fn read_sync(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        let slots: Vec<Slot> = {
            let all = self.shared.slots.read().unwrap_or_else(|p| p.into_inner());
            let start = (from as usize).min(all.len());
            let end = start.saturating_add(max.min(MAX_READ_BATCH)).min(all.len());
            all[start..end].to_vec()
        };
        let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
            return Ok(Vec::new());
        };
        let span = (last.offset + u64::from(last.len) - first.offset) as usize;
        let mut buf = vec![0u8; span];
        self.shared.reader.read_exact_at(&mut buf, first.offset)?;
        slots
            .iter()
            .zip(from..)
            .map(|(slot, seq)| {
                let at = (slot.offset - first.offset) as usize;
                let header =
                    EntryHeader::decode(&buf[at..at + slot.len as usize]).map_err(|e| {
                        SequencerError::Corrupt {
                            offset: slot.offset,
                            reason: e.to_string(),
                        }
                    })?;
                if header.seq != seq {
                    return Err(SequencerError::Corrupt {
                        offset: slot.offset,
                        reason: format!("holds seq {} at {seq}", header.seq),
                    });
                }
                Ok(header)
            })
            .collect()
    }
}

impl Drop for LocalSequencer {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl Sequencer for LocalSequencer {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        let (reply, answer) = oneshot::channel();
        self.writer.send(Request { entry, reply }).await?;
        answer.await.map_err(|_| SequencerError::Closed)?
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        // A bounded read of at most MAX_READ_BATCH headers, normally from the
        // page cache: cheap enough to do in place rather than on a blocking pool.
        self.read_sync(from, max)
    }

    fn tail(&self) -> u64 {
        *self.shared.tail.borrow()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        wait_beyond(&self.shared.tail, seq).await
    }
}

/// The one thread that writes the file.
struct Writer {
    file: File,
    end: u64,
    next_seq: u64,
    fsync: bool,
    shared: Arc<Shared>,
    poisoned: Option<String>,
    write_fault: Option<Arc<WriteFault>>,
}

impl Writer {
    fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(first) = requests.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP_COMMIT_ENTRIES {
                match requests.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        if let Some(reason) = &self.poisoned {
            for request in group {
                let _ = request
                    .reply
                    .send(Err(SequencerError::Poisoned(reason.clone())));
            }
            return;
        }
        let headers: Vec<EntryHeader> = group
            .iter()
            .zip(self.next_seq..)
            .map(|(r, seq)| EntryHeader {
                seq,
                entry: r.entry.clone(),
            })
            .collect();
        let (frame, slots) = encode_frame(self.next_seq, &headers, self.end);
        match self.write(&frame) {
            Ok(()) => {
                self.end += frame.len() as u64;
                self.next_seq += headers.len() as u64;
                self.shared
                    .slots
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(slots);
                self.shared.tail.send_replace(self.next_seq);
                for (request, header) in group.into_iter().zip(headers) {
                    let _ = request.reply.send(Ok(header));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "sequencer write failed; refusing appends until reopened");
                self.poisoned = Some(reason.clone());
                for request in group {
                    let _ = request
                        .reply
                        .send(Err(SequencerError::Poisoned(reason.clone())));
                }
            }
        }
    }

    fn write(&self, frame: &[u8]) -> std::io::Result<()> {
        if self.write_fault.as_ref().is_some_and(|f| f.take()) {
            return Err(std::io::Error::other("write failed (injected)"));
        }
        self.file.write_all_at(frame, self.end)?;
        if self.fsync {
            let started = std::time::Instant::now();
            self.file.sync_data()?;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.shared.fsync_micros.observe(micros);
        }
        Ok(())
    }
}

/// Encodes one frame for `headers` starting at `first_seq`, to be written at
/// `offset`; returns it with the slots of its headers.
fn encode_frame(first_seq: u64, headers: &[EntryHeader], offset: u64) -> (Vec<u8>, Vec<Slot>) {
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    let mut slots = Vec::with_capacity(headers.len());
    for header in headers {
        let bytes = header.encode();
        frame.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        slots.push(Slot {
            offset: offset + frame.len() as u64,
            len: bytes.len() as u16,
        });
        frame.extend_from_slice(&bytes);
    }
    let body_len = (frame.len() - FRAME_HEADER_LEN) as u32;
    frame[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
    frame[4..8].copy_from_slice(&body_len.to_le_bytes());
    frame[8..16].copy_from_slice(&first_seq.to_le_bytes());
    frame[16..20].copy_from_slice(&(headers.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[8..20]), &frame[FRAME_HEADER_LEN..]);
    frame[20..24].copy_from_slice(&crc.to_le_bytes());
    (frame, slots)
}

/// Largest frame the writer can produce.
const MAX_FRAME_BYTES: u64 =
    (FRAME_HEADER_LEN + MAX_GROUP_COMMIT_ENTRIES * (2 + MAX_HEADER_BYTES)) as u64;

/// What scanning one frame found.
enum Scan {
    /// A good frame of this many bytes with these header slots.
    Frame(u64, Vec<Slot>),
    /// The end of the file.
    End,
    /// A torn or damaged frame, with the reason.
    Bad(String),
}

/// Reads every frame, truncates a torn tail, and returns the slots and the end.
fn recover(file: &File) -> Result<(Vec<Slot>, u64), SequencerError> {
    let file_len = file.metadata()?.len();
    let mut data = Vec::with_capacity(file_len as usize);
    (&*file).read_to_end(&mut data)?;
    let mut slots = Vec::new();
    let mut offset = 0u64;
    loop {
        match scan_frame(&data[offset as usize..], offset, slots.len() as u64) {
            Scan::Frame(len, frame_slots) => {
                slots.extend(frame_slots);
                offset += len;
            }
            Scan::End => break,
            Scan::Bad(reason) => {
                if !is_torn_tail(&data[offset as usize..]) {
                    return Err(SequencerError::Corrupt { offset, reason });
                }
                tracing::warn!(offset, dropped = file_len - offset, %reason, "dropping torn tail of the sequencer log");
                file.set_len(offset)?;
                file.sync_all()?;
                break;
            }
        }
    }
    Ok((slots, offset))
}

/// Whether damaged bytes at the end of the file can be the one frame that was
/// being written when the process died: nothing after it parses as a frame
/// boundary we could trust, and it is no longer than the largest frame.
fn is_torn_tail(rest: &[u8]) -> bool {
    if rest.len() < FRAME_HEADER_LEN {
        return true;
    }
    let magic_ok = rest[0..4] == FRAME_MAGIC.to_le_bytes();
    let body_len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if magic_ok {
        // A frame whose stated end is at or past the end of the file.
        FRAME_HEADER_LEN + body_len >= rest.len()
    } else {
        rest.len() as u64 <= MAX_FRAME_BYTES
    }
}

fn scan_frame(rest: &[u8], offset: u64, expected_seq: u64) -> Scan {
    if rest.is_empty() {
        return Scan::End;
    }
    if rest.len() < FRAME_HEADER_LEN {
        return Scan::Bad("incomplete frame header".into());
    }
    let word = |at: usize| u32::from_le_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
    if word(0) != FRAME_MAGIC {
        return Scan::Bad("bad frame magic".into());
    }
    let body_len = word(4) as usize;
    let first_seq = u64::from_le_bytes(rest[8..16].try_into().unwrap_or_default());
    let count = word(16) as usize;
    if FRAME_HEADER_LEN + body_len > rest.len() {
        return Scan::Bad("frame runs past the end of the file".into());
    }
    let body = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + body_len];
    if crc32c::crc32c_append(crc32c::crc32c(&rest[8..20]), body) != word(20) {
        return Scan::Bad("frame checksum mismatch".into());
    }
    if first_seq != expected_seq {
        return Scan::Bad(format!(
            "frame starts at seq {first_seq}, expected {expected_seq}"
        ));
    }
    match parse_body(body, offset + FRAME_HEADER_LEN as u64, first_seq, count) {
        Ok(slots) => Scan::Frame((FRAME_HEADER_LEN + body_len) as u64, slots),
        Err(reason) => Scan::Bad(reason),
    }
}

/// Splits a checksummed body into header slots, decoding each to be sure.
fn parse_body(
    body: &[u8],
    body_offset: u64,
    first_seq: u64,
    count: usize,
) -> Result<Vec<Slot>, String> {
    let mut slots = Vec::with_capacity(count.min(MAX_GROUP_COMMIT_ENTRIES));
    let mut at = 0usize;
    for seq in first_seq..first_seq + count as u64 {
        let len_bytes = body.get(at..at + 2).ok_or("record length past the frame")?;
        let len = u16::from_le_bytes([len_bytes[0], len_bytes[1]]);
        let bytes = body
            .get(at + 2..at + 2 + len as usize)
            .ok_or("record past the frame")?;
        let header = EntryHeader::decode(bytes).map_err(|e| e.to_string())?;
        if header.seq != seq {
            return Err(format!(
                "record holds seq {} where {seq} belongs",
                header.seq
            ));
        }
        slots.push(Slot {
            offset: body_offset + at as u64 + 2,
            len,
        });
        at += 2 + len as usize;
    }
    if at != body.len() {
        return Err("frame body longer than its records".into());
    }
    Ok(slots)
}
