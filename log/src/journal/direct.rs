//! Frames written straight to the disk: one `pwrite` with `O_DIRECT |
//! O_DSYNC` in place of a buffered `pwrite` and an `fdatasync`.
//!
//! A buffered write copies the frame into the page cache, and the sync then
//! walks the file's dirty pages, builds the block requests and waits for
//! them and for the cache flush. A direct write with `O_DSYNC` hands the
//! aligned blocks to the device at once and returns when they and the flush
//! are done: one system call and none of the writeback machinery. On this
//! project's machine (ext4 on virtio, no FUA) a 1.7 KB record took 48-49 µs
//! and 10 µs of CPU this way against 54-56 µs and 14-18 µs buffered, on a
//! process held to the core that does not take the disk's interrupts;
//! 33-36 against 38-46 µs unpinned (docs/BENCHMARKS.md, "Journal frames
//! written directly").
//!
//! Direct writes must start and end on block boundaries, from aligned
//! memory. Frames are packed, so the block holding the segment's end also
//! holds the last frames written: the writer keeps those bytes (the
//! *tail*) and writes them again, unchanged, ahead of the next frame. A
//! buffered write's sync rewrites the whole page around a frame just the
//! same, so the disk sees no write the buffered journal would not make.
//! The rest of the last block is written as zeros, which recovery reads as
//! the end of the segment, as it does the zeros of a new segment.
//!
//! A file system that refuses direct writes (tmpfs, some network file
//! systems) refuses them before writing anything; the journal then writes
//! buffered, as it always did.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// What direct writes are aligned to (offset, length and memory): a
/// multiple of every logical block size in use (512 bytes and 4 KiB).
const DIRECT_BLOCK: usize = 4096;

/// A segment opened for direct, synchronous writes.
pub(crate) struct DirectSegment {
    file: File,
    /// The bytes of the block holding the segment's end, from the block's
    /// start to the end.
    tail: Vec<u8>,
    /// Scratch memory, one block larger than the largest write so far, so
    /// an aligned window of it can be taken.
    scratch: Vec<u8>,
    /// The segment's size rounded down to a block: no direct write goes
    /// past it (the file never grows).
    limit: u64,
}

/// What a direct write did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The frame is on disk.
    Durable,
    /// Nothing was written: the frame's blocks reach past the last whole
    /// block of the segment. The caller writes it the buffered way.
    NotDirect,
    /// The file system refused the direct write (`EINVAL`). The caller
    /// writes the frame the buffered way, and the rest of the segment too.
    Refused,
}

/// Scratch memory kept between writes: a write larger than this (a group
/// commit of many entries) frees its scratch afterwards, so one large
/// group does not keep its size allocated for the life of the segment.
const KEEP_SCRATCH: usize = 1 << 20;

impl DirectSegment {
    /// Opens the new segment at `path`, `size` bytes long and written up
    /// to nothing yet, for direct writes; `None` where the file system does
    /// not take them.
    pub(crate) fn open(path: &Path, size: u64) -> Option<Self> {
        // O_DSYNC, not O_SYNC: a write must not wait for the inode's new
        // modification time to reach the disk too.
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(path)
            .ok()?;
        Some(Self {
            file,
            tail: Vec::new(),
            scratch: Vec::new(),
            limit: size - size % DIRECT_BLOCK as u64,
        })
    }

    /// Writes `frame` at `end` (the segment's end) and waits until it is
    /// durable, or writes nothing and says so.
    pub(crate) fn write(&mut self, frame: &[u8], end: u64) -> std::io::Result<Written> {
        let block = DIRECT_BLOCK as u64;
        debug_assert_eq!(
            end % block,
            self.tail.len() as u64,
            "the tail ends at the end"
        );
        let start = end - self.tail.len() as u64;
        let len = (self.tail.len() + frame.len()).next_multiple_of(DIRECT_BLOCK);
        if start + len as u64 > self.limit {
            return Ok(Written::NotDirect);
        }
        let (tail, window) = (self.tail.len(), aligned(&mut self.scratch, len));
        window[..tail].copy_from_slice(&self.tail);
        window[tail..tail + frame.len()].copy_from_slice(frame);
        window[tail + frame.len()..].fill(0);
        let written = self.file.write_all_at(window, start);
        if len > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        match written {
            // Refused for its alignment or its flags: whatever part was
            // written holds the same bytes the buffered write puts there.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Written::Refused),
            Err(e) => Err(e),
            Ok(()) => {
                self.wrote(frame, end);
                Ok(Written::Durable)
            }
        }
    }

    /// Notes that `frame` now lies at `end` (written either way), so the
    /// tail stays the bytes of the block holding the new end.
    pub(crate) fn wrote(&mut self, frame: &[u8], end: u64) {
        let block = DIRECT_BLOCK as u64;
        let new_end = end + frame.len() as u64;
        if end / block == new_end / block {
            self.tail.extend_from_slice(frame);
            return;
        }
        let into_last_block = (new_end % block) as usize;
        self.tail.clear();
        self.tail
            .extend_from_slice(&frame[frame.len() - into_last_block..]);
    }
}

/// An aligned window of `len` bytes of `scratch`, grown to one block more
/// than `len` when it is smaller.
fn aligned(scratch: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if scratch.len() < len + DIRECT_BLOCK {
        *scratch = vec![0u8; len + DIRECT_BLOCK];
    }
    let skip = scratch.as_ptr().align_offset(DIRECT_BLOCK);
    &mut scratch[skip..skip + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero-filled file of `size` bytes in a fresh directory.
    fn segment(size: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, vec![0u8; size]).unwrap();
        (dir, path)
    }

    fn frame(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn frames_written_directly_read_back_as_if_packed_by_buffered_writes() {
        let (_dir, path) = segment(64 * 1024);
        let Some(mut direct) = DirectSegment::open(&path, 64 * 1024) else {
            panic!("the test directory's file system takes direct writes");
        };
        let mut expected = Vec::new();
        for (i, len) in [16, 48, 4080, 16, 4096, 8208, 32, 2000]
            .into_iter()
            .enumerate()
        {
            let frame = frame(len, i as u8 + 1);
            let end = expected.len() as u64;
            assert_eq!(direct.write(&frame, end).unwrap(), Written::Durable);
            expected.extend_from_slice(&frame);
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_frame_larger_than_the_kept_scratch_is_written_and_its_scratch_freed() {
        let size = 4 * KEEP_SCRATCH;
        let (_dir, path) = segment(size);
        let mut direct = DirectSegment::open(&path, size as u64).unwrap();
        let (large, small) = (frame(2 * KEEP_SCRATCH + 48, 5), frame(80, 6));
        assert_eq!(direct.write(&large, 0).unwrap(), Written::Durable);
        assert!(direct.scratch.is_empty(), "a large write frees its scratch");
        let end = large.len() as u64;
        assert_eq!(direct.write(&small, end).unwrap(), Written::Durable);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..large.len()], &large[..]);
        assert_eq!(&on_disk[large.len()..large.len() + 80], &small[..]);
    }

    #[test]
    fn a_frame_reaching_past_the_last_whole_block_is_left_to_buffered_writes() {
        // 4096 + 100 bytes: the second block is not whole.
        let size = DIRECT_BLOCK + 100;
        let (_dir, path) = segment(size);
        let mut direct = DirectSegment::open(&path, size as u64).unwrap();
        assert_eq!(direct.write(&frame(4000, 1), 0).unwrap(), Written::Durable);
        assert_eq!(direct.write(&frame(96, 2), 4000).unwrap(), Written::Durable);
        assert_eq!(
            direct.write(&frame(32, 3), 4096).unwrap(),
            Written::NotDirect
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size as u64);
    }

    #[test]
    fn the_tail_follows_frames_written_either_way() {
        let (_dir, path) = segment(32 * 1024);
        let mut direct = DirectSegment::open(&path, 32 * 1024).unwrap();
        let (a, b, c) = (frame(3000, 1), frame(3000, 2), frame(64, 3));
        direct.write(&a, 0).unwrap();
        // Written buffered by the caller, then noted.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&b, 3000)
            .unwrap();
        direct.wrote(&b, 3000);
        direct.write(&c, 6000).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..3000], &a[..]);
        assert_eq!(&on_disk[3000..6000], &b[..]);
        assert_eq!(&on_disk[6000..6064], &c[..]);
    }
}
