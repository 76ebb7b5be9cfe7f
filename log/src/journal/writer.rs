//! Writing: the open segment, rotation to the next, and the keeper thread
//! that prepares segments ahead of need and retires old ones.
//!
//! Retired segments are reused rather than removed: removing a 64 MiB file
//! and zero-filling another each cost a burst of disk work that lands in
//! the queue ahead of the journal's syncs (a sync's p99.9 went from 0.2 to
//! 2.7-9.2 ms here while files were filled and removed beside it). A reused
//! segment's stale frames name their old segment, so they are never taken
//! for records of the new one (see `format`).

use super::direct::{DirectSegment, Written};
use super::format::{JournalError, SEAL_LEN, encode_frame, frame_len, list_segments, segment_path};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The next segment, made ready by the keeper before it is needed.
const PREPARED: &str = "next.tmp";

/// A retired segment kept for reuse as the next prepared one.
const SPARE: &str = "spare.tmp";

/// A segment made on the spot: the first one, or one for a record larger
/// than a segment.
const STAGED: &str = "staged.tmp";

/// Zeros written, and synced, per step while filling a segment: each sync
/// puts at most this much ahead of the journal's own syncs in the disk's
/// queue, where one sync of the whole segment would put all of it.
const ZERO_CHUNK: usize = 1 << 20;

/// Makes everything applied to the store so far durable (for RocksDB, a
/// flush of every column family). Once it returns, the segments written
/// before it was called are no longer needed.
pub(crate) type MakeDurable = Box<dyn Fn() -> Result<(), String> + Send>;

/// The writing end of a journal. Not shared: its owner serializes appends.
pub(crate) struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    /// The open segment for direct writes (`None` where the file system
    /// refuses them: frames are then written buffered and synced).
    direct: Option<DirectSegment>,
    path: PathBuf,
    index: u64,
    /// Where the next frame goes in the open segment.
    end: u64,
    size: u64,
    keeper: Keeper,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("segment", &self.path)
            .field("end", &self.end)
            .finish()
    }
}

impl Journal {
    /// Starts writing in `dir` after recovery: retires the `old` segments
    /// (whose records the caller has already made durable in its store),
    /// reusing two of them as the first segment and the spare, and opens a
    /// fresh segment numbered after them.
    pub(crate) fn start(
        dir: &Path,
        old: &[u64],
        segment_bytes: u64,
        make_durable: MakeDurable,
    ) -> Result<Self, JournalError> {
        for stale in [PREPARED, SPARE, STAGED] {
            remove_if_present(&dir.join(stale))?;
        }
        let staged = dir.join(STAGED);
        let reused = reuse_old(dir, old, segment_bytes, &[&staged, &dir.join(SPARE)])?;
        if reused == 0 {
            zero_filled(&staged, segment_bytes)?;
        }
        let index = old.last().map_or(0, |last| last + 1);
        let path = segment_path(dir, index);
        let file = install(dir, &staged, &path)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            file,
            direct: DirectSegment::open(&path, segment_bytes),
            path,
            index,
            end: 0,
            size: segment_bytes,
            keeper: Keeper::spawn(dir, segment_bytes, make_durable)?,
        })
    }

    /// Appends `record` and waits until it is on disk: one direct,
    /// synchronous write (see `direct`), or a buffered write and one
    /// `fdatasync`, on a file whose size does not change, so no inode write
    /// with it.
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<(), JournalError> {
        assert!(!record.is_empty(), "a journal record is never empty");
        let need = frame_len(record.len());
        if self.end + need + SEAL_LEN > self.size {
            self.rotate(need)?;
        }
        self.write_synced(record)?;
        self.end += need;
        Ok(())
    }

    fn write_synced(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        let frame = encode_frame(payload, self.end, self.index);
        let io = JournalError::io;
        if let Some(direct) = &mut self.direct {
            match direct.write(&frame, self.end).map_err(io(&self.path))? {
                Written::Durable => return Ok(()),
                Written::NotDirect => direct.wrote(&frame, self.end),
                Written::Refused => self.direct = None,
            }
        }
        self.file
            .write_all_at(&frame, self.end)
            .map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Seals the open segment, moves to the next (big enough for a frame
    /// of `need` bytes and a seal), and asks the keeper to retire the one
    /// just sealed.
    fn rotate(&mut self, need: u64) -> Result<(), JournalError> {
        // Durable before the next segment has a name: recovery requires
        // every segment but the last to end in its seal.
        self.write_synced(&[])?;
        let prepared = need + SEAL_LEN <= self.segment_bytes;
        let staged = if prepared {
            self.keeper.take_prepared()?;
            self.dir.join(PREPARED)
        } else {
            let staged = self.dir.join(STAGED);
            zero_filled(&staged, need + SEAL_LEN)?;
            staged
        };
        let path = segment_path(&self.dir, self.index + 1);
        self.file = install(&self.dir, &staged, &path)?;
        self.direct = DirectSegment::open(&path, (need + SEAL_LEN).max(self.segment_bytes));
        if prepared {
            self.keeper.send(Task::Prepare);
        }
        self.keeper.send(Task::Retire {
            through: self.index,
        });
        self.index += 1;
        self.path = path;
        self.size = (need + SEAL_LEN).max(self.segment_bytes);
        self.end = 0;
        Ok(())
    }

    /// Stops the keeper, waiting for what it is doing.
    pub(crate) fn close(&mut self) {
        self.keeper.stop();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Moves old segments of the usual size to `targets` (in order, as many
/// as there are) and removes the rest; returns how many were moved. Every
/// old segment is durable in the store, so any subset of these renames and
/// unlinks that a crash keeps is still safe to replay.
fn reuse_old(
    dir: &Path,
    old: &[u64],
    segment_bytes: u64,
    targets: &[&Path],
) -> Result<usize, JournalError> {
    let mut moved = 0;
    let mut removed = Vec::new();
    for &index in old {
        let path = segment_path(dir, index);
        let usual = std::fs::metadata(&path).is_ok_and(|m| m.len() == segment_bytes);
        match targets.get(moved) {
            Some(target) if usual => {
                std::fs::rename(&path, target).map_err(JournalError::io(&path))?;
                moved += 1;
            }
            _ => removed.push(index),
        }
    }
    remove_segments(dir, &removed)?;
    Ok(moved)
}

fn remove_if_present(path: &Path) -> Result<(), JournalError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(JournalError::io(path)(e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(JournalError::io(dir))
}

/// Removes segments `indices`, oldest first: whatever subset of the
/// unlinks a crash keeps, what is left after the last gap is still a run
/// that recovery may replay.
fn remove_segments(dir: &Path, indices: &[u64]) -> Result<(), JournalError> {
    for &index in indices {
        remove_if_present(&segment_path(dir, index))?;
    }
    if indices.is_empty() {
        Ok(())
    } else {
        sync_dir(dir)
    }
}

/// Writes `len` zeros to a new file at `path` and syncs it: a segment whose
/// blocks are allocated and whose size is final, so that appends change
/// neither.
fn zero_filled(path: &Path, len: u64) -> Result<(), JournalError> {
    let io = JournalError::io(path);
    let file = File::create(path).map_err(io)?;
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut written = 0u64;
    while written < len {
        let chunk = (len - written).min(ZERO_CHUNK as u64) as usize;
        file.write_all_at(&zeros[..chunk], written)
            .and_then(|()| file.sync_data())
            .map_err(JournalError::io(path))?;
        written += chunk as u64;
    }
    file.sync_all().map_err(JournalError::io(path))
}

/// Gives the staged file its segment name, makes the name durable, and
/// opens the segment for writing.
fn install(dir: &Path, staged: &Path, path: &Path) -> Result<File, JournalError> {
    std::fs::rename(staged, path).map_err(JournalError::io(path))?;
    sync_dir(dir)?;
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(JournalError::io(path))
}

enum Task {
    /// Ready the next segment: the spare if there is one, else a new file
    /// of zeros.
    Prepare,
    /// Make the store durable, then retire segments up to `through`: one
    /// becomes the spare, the others are removed.
    Retire { through: u64 },
}

/// The keeper thread and its two channels.
struct Keeper {
    tasks: Option<mpsc::Sender<Task>>,
    prepared: mpsc::Receiver<Result<(), String>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Keeper {
    fn spawn(
        dir: &Path,
        segment_bytes: u64,
        make_durable: MakeDurable,
    ) -> Result<Self, JournalError> {
        let (tasks, queue) = mpsc::channel();
        let (done, prepared) = mpsc::channel();
        let dir = dir.to_path_buf();
        let thread_dir = dir.clone();
        let handle = std::thread::Builder::new()
            .name("ordo-journal".into())
            .spawn(move || run_keeper(&thread_dir, segment_bytes, &make_durable, &queue, &done))
            .map_err(JournalError::io(&dir))?;
        let keeper = Self {
            tasks: Some(tasks),
            prepared,
            handle: Some(handle),
        };
        keeper.send(Task::Prepare);
        Ok(keeper)
    }

    fn send(&self, task: Task) {
        if let Some(tasks) = &self.tasks {
            // A stopped keeper shows up in `take_prepared`.
            let _ = tasks.send(task);
        }
    }

    /// Waits for the next segment to be ready (normally it long is).
    fn take_prepared(&self) -> Result<(), JournalError> {
        match self.prepared.recv() {
            Ok(result) => result.map_err(JournalError::Preparation),
            Err(_) => Err(JournalError::Preparation(
                "the keeper thread stopped".into(),
            )),
        }
    }

    fn stop(&mut self) {
        self.tasks.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run_keeper(
    dir: &Path,
    segment_bytes: u64,
    make_durable: &MakeDurable,
    tasks: &mpsc::Receiver<Task>,
    prepared: &mpsc::Sender<Result<(), String>>,
) {
    while let Ok(task) = tasks.recv() {
        match task {
            Task::Prepare => {
                let made = prepare(dir, segment_bytes);
                let _ = prepared.send(made.map_err(|e| e.to_string()));
            }
            Task::Retire { through } => {
                if let Err(reason) = retire(dir, through, segment_bytes, make_durable) {
                    // The segments stay; the next retirement covers them.
                    tracing::warn!(%reason, through, "retiring journal segments failed");
                }
            }
        }
    }
}

/// Readies `next.tmp`: the spare renamed, or a new file of zeros.
fn prepare(dir: &Path, segment_bytes: u64) -> Result<(), JournalError> {
    let (spare, next) = (dir.join(SPARE), dir.join(PREPARED));
    if spare.exists() {
        std::fs::rename(&spare, &next).map_err(JournalError::io(&next))
    } else {
        zero_filled(&next, segment_bytes)
    }
}

fn retire(
    dir: &Path,
    through: u64,
    segment_bytes: u64,
    make_durable: &MakeDurable,
) -> Result<(), String> {
    make_durable()?;
    let mut old: Vec<u64> = list_segments(dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|index| *index <= through)
        .collect();
    let spare = dir.join(SPARE);
    // The oldest goes first (see `remove_segments`); a segment of the usual
    // size becomes the spare if there is none.
    if let Some(&oldest) = old.first() {
        let path = segment_path(dir, oldest);
        let usual = std::fs::metadata(&path).is_ok_and(|m| m.len() == segment_bytes);
        if usual && !spare.exists() {
            std::fs::rename(&path, &spare).map_err(|e| e.to_string())?;
            old.remove(0);
        }
    }
    remove_segments(dir, &old).map_err(|e| e.to_string())
}
