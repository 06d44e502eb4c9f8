"""The fs's read-ahead window (domains/rv6fs/bio.py): blocks read ahead are served from
memory, and a block that changes is never served from a stale copy. A window that kept
its copy of a block once the block entered the cache (and was changed there) fails here:
the test was run against exactly that bug."""

from __future__ import annotations

import numpy as np

from redleaf_lab.heap import Block, RRef
from redleaf_lab.interfaces.rv6 import NBUF, O_CREATE, O_RDONLY, O_RDWR
from redleaf_lab.rv6img import fsck, mkfs
from redleaf_lab.rv6img.console import Console
from redleaf_lab.rv6img.system import read_device

from .conftest import store_of

PID = 1


def block_of(tag: int, bn: int) -> bytes:
    return np.full(4096, (tag * 31 + bn) % 251, dtype=np.uint8).tobytes()


def write_blocks(fs, path: str, tag: int, blocks: range, buf: RRef) -> RRef:
    fd = fs.open(PID, path, O_CREATE | O_RDWR)
    assert fd >= 0
    fs.seek(PID, fd, blocks.start * 4096, 0)
    for bn in blocks:
        buf.write(block_of(tag, bn))
        n, buf = fs.write(PID, fd, buf, 4096)
        assert n == 4096
    assert fs.close(PID, fd) == 0
    return buf


def read_block(fs, path: str, bn: int, buf: RRef) -> tuple[bytes, RRef]:
    fd = fs.open(PID, path, O_RDONLY)
    assert fd >= 0, f"open {path}: {fd}"
    fs.seek(PID, fd, bn * 4096, 0)
    n, buf = fs.read(PID, fd, buf, 4096)
    assert n == 4096 and fs.close(PID, fd) == 0
    return buf.tobytes(), buf


def test_a_block_changed_after_read_ahead_is_never_served_stale(big_kernel):
    store = store_of(mkfs(4096, {}))
    big_kernel.load("membdev", store=store)
    fs = big_kernel.load("rv6fs", bdev=big_kernel.proxy("membdev"), console=Console())
    buf = RRef.new(Block)
    big = 2 * NBUF  # more than the cache holds: its first blocks leave the cache
    buf = write_blocks(fs, "/a", 1, range(big), buf)
    _commits, _logged, _hits, misses = fs.counters()
    got, buf = read_block(fs, "/a", 0, buf)  # a miss: blocks 0..31 are read ahead
    assert got == block_of(1, 0)
    misses_after = fs.counters()[3]
    assert misses_after - misses >= 32  # one batch brought the next 31 blocks too
    for bn in range(1, 32):  # all served from memory: no more misses
        got, buf = read_block(fs, "/a", bn, buf)
        assert got == block_of(1, bn)
    assert fs.counters()[3] == misses_after
    buf = write_blocks(fs, "/a", 2, range(5, 6), buf)  # change a block read ahead
    buf = write_blocks(fs, "/b", 3, range(NBUF + 8), buf)  # push it out of the cache
    got, buf = read_block(fs, "/a", 5, buf)
    assert got == block_of(2, 5)  # the new data, not the read-ahead copy
    for bn in (4, 6):
        got, buf = read_block(fs, "/a", bn, buf)
        assert got == block_of(1, bn)
    buf.drop()
    big_kernel.stop("rv6fs")
    assert fsck(read_device(big_kernel.proxy("membdev"))) == []
