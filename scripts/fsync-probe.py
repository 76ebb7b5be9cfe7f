#!/usr/bin/env python3
"""What one small synced append costs on this disk, by how the file was made.

    python3 scripts/fsync-probe.py [DIR] [WRITES] [BYTES]

Appends WRITES records of BYTES bytes (default 2,000 of 1,671, the size of
one put's entry in `ordo dev`) to a new file in DIR (default: the current
directory), each followed by fdatasync, for four kinds of file:

- grow: an empty file that every append makes longer (as RocksDB's
  write-ahead log does), so each sync also writes the inode;
- keep_size: space reserved with fallocate(FALLOC_FL_KEEP_SIZE) (what
  RocksDB does), which still changes the size;
- fallocate: space reserved and the size set, blocks left unwritten;
- zeros: the whole file written with zeros and synced first (the ordo
  journal's segments).

Prints p50, p90 and the mean of each, twice over, alternating.
"""

import ctypes
import os
import statistics
import sys
import time

FALLOC_FL_KEEP_SIZE = 1


def grow(fd, size):
    pass


def keep_size(fd, size):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, ctypes.c_long(0), ctypes.c_long(size))
    os.fsync(fd)


def fallocate(fd, size):
    os.posix_fallocate(fd, 0, size)
    os.fsync(fd)


def zeros(fd, size):
    os.write(fd, b"\0" * size)
    os.fsync(fd)


def probe(directory, name, prepare, writes, record):
    path = os.path.join(directory, f"fsync-probe.{name}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        prepare(fd, writes * len(record) + 4096)
        os.lseek(fd, 0, os.SEEK_SET)
        took = []
        for _ in range(writes):
            started = time.perf_counter()
            os.write(fd, record)
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    p50, p90 = took[len(took) // 2], took[len(took) * 9 // 10]
    mean = statistics.mean(took)
    print(f"{name:10s} p50 {p50 * 1e6:6.1f} us  p90 {p90 * 1e6:6.1f} us  mean {mean * 1e6:6.1f} us")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    writes = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    record = b"x" * (int(sys.argv[3]) if len(sys.argv) > 3 else 1671)
    for _ in range(2):
        for name, prepare in [("grow", grow), ("keep_size", keep_size),
                              ("fallocate", fallocate), ("zeros", zeros)]:
            probe(directory, name, prepare, writes, record)


if __name__ == "__main__":
    main()
