"""Lab 5's graded exercises: Rv6's block map with its doubly-indirect block (xv6's "large
files" lab) and the log's `log_write` (absorption and pinning), each spliced into a copy
of domains/rv6fs and driven through the kernel: the fs domain mounted on a membdev driver
over an image made by mkfs, exactly as Rv6 boots.

Interface:
* `check_bmap(bmap, hidden=False)`: the student's `Inodes.bmap(self, ip, bn, alloc,
  zero=True)`. A file of 1100 blocks (direct, singly- and doubly-indirect) is written and
  read back through the fs domain; then the disk image is read with xv6's layout (addrs[13]
  -> entry bn // 1024 -> entry bn % 1024) and fsck'd. Hidden: sparse blocks far into the
  doubly-indirect range (the last one MAXFILE - 1), the exact number of blocks they
  allocate, holes that read as zeros and allocate nothing, a remount, unlink freeing all.
* `check_log_write(log_write, hidden=False)`: the student's `Log.log_write(self, buf)`. A
  workload of creates and writes must read back, fsck clean, survive a remount, and log
  exactly as many blocks as the absorbing log does. Hidden: a 24-buffer cache and an
  unlink that reads 30 indirect blocks after logging the directory block, so a logged
  buffer that is not pinned gets evicted before its commit; and a log_write outside a
  transaction must be refused.
Ownership: each check boots its own kernel (checks.fresh_kernel); stores are in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import MemStore
from ..errors import RpcError
from ..heap import Block, RRef
from ..interfaces.rv6 import (
    BPB,
    BSIZE,
    MAXFILE,
    NDIRECT,
    NINDIRECT,
    O_CREATE,
    O_RDWR,
    SEEK_SET,
)
from ..rv6img import fsck, mkfs
from ..rv6img.console import Console
from ..rv6img.layout import Superblock, read_dinode
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import rewrite_file, student_domain

PID = 1
DOUBLE_START = NDIRECT + NINDIRECT
SEQUENTIAL = DOUBLE_START + 64  # 1100 blocks: 64 of them doubly-indirect
SPARSE = (DOUBLE_START + NINDIRECT + 5, DOUBLE_START + 7 * NINDIRECT + 1023, MAXFILE - 1)
HOLES = (DOUBLE_START + 3 * NINDIRECT, DOUBLE_START + 7 * NINDIRECT, DOUBLE_START + 100)


def stamp(bn: int) -> bytes:
    """4 KiB unique to file block `bn`."""
    words = np.arange(BSIZE // 4, dtype=np.uint64) * 2654435761 + bn * 40503 + 1
    return (words & 0xFFFFFFFF).astype("<u4").tobytes()


def where(bn: int) -> str:
    if bn < NDIRECT:
        return f"direct, addrs[{bn}]"
    if bn < DOUBLE_START:
        return f"singly-indirect entry {bn - NDIRECT}"
    k = bn - DOUBLE_START
    return f"doubly-indirect entry {k // NINDIRECT}/{k % NINDIRECT}"


def _whose(data: bytes, candidates: range | tuple[int, ...]) -> str:
    if not any(data):
        return "zeros (a hole)"
    for bn in candidates:
        if data == stamp(bn):
            return f"the data of file block {bn} ({where(bn)})"
    return "data no block of the file was written with"


class _Rv6:
    """A mounted copy of rv6fs on a memory store, in one kernel."""

    def __init__(self, kernel: Any, folder: Path, files: dict[str, bytes] | None = None,
                 blocks: int = 4096, disk: str = "membdev", fs_name: str = "rv6fs",
                 trusted: bool = False, ninodes: int = 256) -> None:
        self.kernel = kernel
        self.folder: str | Path = "rv6fs" if trusted else folder
        self.disk = disk
        self.fs_name = fs_name
        image = mkfs(blocks, files or {}, ninodes=ninodes)
        self.store = MemStore(len(image))
        self.store.write_many(np.arange(len(image)), image)
        kernel.load("membdev", name=disk, store=self.store)
        self.mounts = 0
        self.name = fs_name
        self.fs = self.mount()
        self.buf = RRef.new(Block)

    def mount(self) -> Any:
        self.mounts += 1
        name = self.fs_name if self.mounts == 1 else f"{self.fs_name}_{self.mounts}"
        try:
            self.fs = self.kernel.load(self.folder, name=name, bdev=self.kernel.proxy(self.disk),
                                       console=Console())
        except Exception as err:
            raise ExerciseFailed(f"the file system did not mount: {panic_text(err)}") from None
        self.name = name
        return self.fs

    def remount(self) -> None:
        self.kernel.stop(self.name)
        self.mount()

    def call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.fs, method)(*args)
        except RpcError as err:
            raise ExerciseFailed(f"{what}: the file system panicked: {panic_text(err)}") from None

    def write_block(self, fd: int, bn: int, what: str) -> None:
        self.call(what, "seek", PID, fd, bn * BSIZE, SEEK_SET)
        self.buf.write(stamp(bn))
        n, self.buf = self.call(what, "write", PID, fd, self.buf, BSIZE)
        if n != BSIZE:
            raise ExerciseFailed(f"{what}: write returned {n}, not {BSIZE}")

    def read_block(self, fd: int, bn: int, what: str) -> bytes:
        self.call(what, "seek", PID, fd, bn * BSIZE, SEEK_SET)
        n, self.buf = self.call(what, "read", PID, fd, self.buf, BSIZE)
        if n != BSIZE:
            raise ExerciseFailed(f"{what}: read returned {n}, not {BSIZE}")
        return bytes(self.buf.tobytes()[:BSIZE])

    def open(self, path: str, what: str) -> int:
        fd = self.call(what, "open", PID, path, O_CREATE | O_RDWR)
        if fd < 0:
            raise ExerciseFailed(f"{what}: open({path}) returned {fd}")
        return int(fd)

    def image(self) -> np.ndarray:
        return self.store.snapshot()

    def free_blocks(self) -> int:
        image = self.image()
        sb = Superblock.read(image)
        bits = np.unpackbits(image[sb.bmapstart:sb.bmapstart + (sb.size + BPB - 1) // BPB]
                             .reshape(-1), bitorder="little")[:sb.size]
        return int(sb.size - bits.sum())

    def fsck(self, when: str) -> None:
        problems = fsck(self.image())
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ExerciseFailed(f"fsck after {when}: " + "; ".join(problems[:3]) + more)

    def close(self) -> None:
        try:
            self.buf.drop()
        except Exception:  # reclaimed with a crashed fs domain: nothing left to drop
            pass
        for name in (self.name, self.disk):
            if self.kernel.domain(name).state == "running":
                self.kernel.stop(name)


def _inum(rv6: _Rv6, path: str) -> int:
    fd = rv6.open(path, f"open {path}")
    inum = int(rv6.call("fstat", "fstat", PID, fd)[2])
    rv6.call("close", "close", PID, fd)
    return inum


def _on_disk(image: np.ndarray, inum: int, bn: int) -> int:
    """The disk block of file block bn by xv6's layout (0: not mapped)."""
    sb = Superblock.read(image)
    addrs = read_dinode(image, sb.inodestart, inum).addrs
    if bn < NDIRECT:
        return int(addrs[bn])
    entries = image.view("<u4").reshape(len(image), -1)
    if bn < DOUBLE_START:
        top = addrs[NDIRECT]
        return int(entries[top, bn - NDIRECT]) if top else 0
    k = bn - DOUBLE_START
    top = addrs[NDIRECT + 1]
    if not top:
        return 0
    mid = int(entries[top, k // NINDIRECT])
    return int(entries[mid, k % NINDIRECT]) if mid else 0


def _check_layout(rv6: _Rv6, inum: int, blocks: range | tuple[int, ...]) -> None:
    image = rv6.image()
    for bn in blocks:
        disk = _on_disk(image, inum, bn)
        if disk == 0 or image[disk].tobytes() != stamp(bn):
            found = "no block" if disk == 0 else f"block {disk}, which holds " + \
                _whose(image[disk].tobytes(), blocks)
            raise ExerciseFailed(f"on disk, file block {bn} is not where xv6's layout puts it: "
                                 f"{where(bn)} names {found}. Doubly-indirect: addrs[13] is "
                                 "the top block; entry (bn - 1036) // 1024 of it is a mid-level "
                                 "block; entry (bn - 1036) % 1024 of that is the data block")


def check_bmap(bmap: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `Inodes.bmap`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=64) as kernel:
        copy = student_domain("rv6fs", {"inode.py": {"Inodes.bmap": bmap}}, folder)
        rv6 = _Rv6(kernel, copy)
        try:
            _sequential(rv6)
            if hidden:
                _sparse(rv6)
        finally:
            rv6.close()


def _sequential(rv6: _Rv6) -> None:
    fd = rv6.open("/big", "create /big")
    for bn in range(SEQUENTIAL):
        rv6.write_block(fd, bn, f"writing file block {bn} ({where(bn)})")
    for bn in range(SEQUENTIAL):
        data = rv6.read_block(fd, bn, f"reading file block {bn} ({where(bn)})")
        if data != stamp(bn):
            raise ExerciseFailed(f"file block {bn} ({where(bn)}) read back as "
                                 f"{_whose(data, range(SEQUENTIAL))}")
    rv6.call("close", "close", PID, fd)
    _check_layout(rv6, _inum(rv6, "/big"), range(SEQUENTIAL))
    rv6.fsck(f"writing {SEQUENTIAL} blocks")


def _sparse(rv6: _Rv6) -> None:
    inum = _inum(rv6, "/big")
    before = rv6.free_blocks()
    fd = rv6.open("/big", "open /big")
    for bn in SPARSE:
        rv6.write_block(fd, bn, f"writing file block {bn} ({where(bn)})")
    used = before - rv6.free_blocks()
    want = len(SPARSE) * 2  # a data block and a new mid-level block each
    if used != want:
        raise ExerciseFailed(f"writing {len(SPARSE)} blocks far into the doubly-indirect range "
                             f"({', '.join(where(bn) for bn in SPARSE)}) allocated {used} blocks; "
                             f"xv6's layout needs {want}: each a data block and a mid-level "
                             "indirect block (the top block exists already)")
    free = rv6.free_blocks()
    for bn in HOLES:
        try:
            data = rv6.read_block(fd, bn, f"reading the hole at file block {bn} ({where(bn)})")
        except ExerciseFailed as failed:
            if "outside a transaction" not in str(failed):
                raise
            raise ExerciseFailed(f"{failed}: bmap(..., alloc=False) allocated a block (a read "
                                 "runs in no transaction); with alloc False, a missing "
                                 "mid-level block means a hole: return 0") from None
        if any(data):
            raise ExerciseFailed(f"file block {bn} ({where(bn)}) was never written, but reads "
                                 f"as {_whose(data, SPARSE)}, not zeros")
    if rv6.free_blocks() != free:
        raise ExerciseFailed(f"reading holes allocated {free - rv6.free_blocks()} blocks: "
                             "bmap(..., alloc=False) must allocate nothing, also no "
                             "mid-level indirect block")
    rv6.call("close", "close", PID, fd)
    _check_layout(rv6, inum, SPARSE)
    rv6.fsck("sparse writes")
    rv6.remount()
    fd = rv6.open("/big", "open /big after a remount")
    for bn in (*SPARSE, 0, NDIRECT, DOUBLE_START):
        data = rv6.read_block(fd, bn, f"reading file block {bn} after a remount")
        if data != stamp(bn):
            raise ExerciseFailed(f"after a remount, file block {bn} ({where(bn)}) reads as "
                                 f"{_whose(data, (*SPARSE, *range(SEQUENTIAL)))}")
    rv6.call("close", "close", PID, fd)
    if rv6.call("unlink", "unlink", PID, "/big") != 0:
        raise ExerciseFailed("unlink /big failed")
    rv6.fsck("unlink of the big file")


# -- the log ---------------------------------------------------------------------------
SMALL_CACHE = 24
SPREAD = 30  # mid-level indirect blocks of the file the small-cache test unlinks


def _workload(rv6: _Rv6) -> dict[str, bytes]:
    """Creates, whole-block and unaligned writes, appends, a directory; returns contents."""
    want: dict[str, bytes] = {}
    rng = np.random.default_rng(5)
    for i in range(6):
        path = f"/f{i}"
        data = rng.integers(0, 256, 3 * BSIZE + 1000 + 517 * i, np.uint8).tobytes()
        fd = rv6.open(path, f"create {path}")
        for off in range(0, len(data), BSIZE):
            chunk = data[off:off + BSIZE]
            rv6.buf.write(chunk)
            n, rv6.buf = rv6.call(f"write to {path}", "write", PID, fd, rv6.buf, len(chunk))
            if n != len(chunk):
                raise ExerciseFailed(f"write to {path} returned {n}, not {len(chunk)}")
        rv6.call("close", "close", PID, fd)
        want[path] = data
    if rv6.call("mkdir /d", "mkdir", PID, "/d") != 0:
        raise ExerciseFailed("mkdir /d failed")
    fd = rv6.open("/d/log", "create /d/log")
    text = b""
    for i in range(40):  # appends of 300 bytes: every 14th crosses a block boundary
        line = (f"{i:04d} " * 60).encode()
        rv6.buf.write(line)
        n, rv6.buf = rv6.call("append to /d/log", "write", PID, fd, rv6.buf, len(line))
        text += line
    rv6.call("close", "close", PID, fd)
    want["/d/log"] = text
    return want


def _read_all(rv6: _Rv6, want: dict[str, bytes], when: str) -> None:
    for path, data in want.items():
        fd = rv6.call(f"open {path}", "open", PID, path, O_RDWR)
        if fd < 0:
            raise ExerciseFailed(f"{when}: {path} is missing (open returned {fd})")
        got = b""
        while True:
            n, rv6.buf = rv6.call(f"read {path}", "read", PID, fd, rv6.buf, BSIZE)
            if n <= 0:
                break
            got += bytes(rv6.buf.tobytes()[:n])
        rv6.call("close", "close", PID, fd)
        if got != data:
            first = next((i for i, (a, b) in enumerate(zip(got, data, strict=False)) if a != b),
                         min(len(got), len(data)))
            raise ExerciseFailed(f"{when}: {path} reads back wrong ({len(got)} bytes, "
                                 f"{len(data)} written; first difference at byte {first})")


def _logged(rv6: _Rv6) -> tuple[int, int]:
    commits, logged, _hits, _misses = rv6.call("counters", "counters")
    return int(commits), int(logged)


def check_log_write(log_write: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `Log.log_write`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        reference = _Rv6(kernel, Path(folder), disk="refdisk", fs_name="rv6fs_ref",
                         trusted=True)
        try:
            _workload(reference)
            ref_commits, ref_logged = _logged(reference)
        finally:
            reference.close()
        copy = student_domain("rv6fs", {"log.py": {"Log.log_write": log_write}}, folder)
        rv6 = _Rv6(kernel, copy)
        try:
            want = _workload(rv6)
            commits, logged = _logged(rv6)
            _read_all(rv6, want, "after the workload")
            rv6.fsck("the workload")
            if commits != ref_commits or logged != ref_logged:
                raise ExerciseFailed(
                    f"your log wrote {logged} blocks to the log in {commits} commits; the "
                    f"absorbing log writes {ref_logged} in {ref_commits} for the same calls. A "
                    "block changed twice in one transaction takes ONE log slot (absorption): "
                    "writing a new block logs the bitmap and the zeroed block, then writei "
                    "changes that block again")
            rv6.remount()
            _read_all(rv6, want, "after a remount")
            if hidden:
                _outside_transaction(kernel, rv6)
        finally:
            rv6.close()
        if hidden:
            _small_cache(kernel, log_write, Path(folder))


def _outside_transaction(kernel: Any, rv6: _Rv6) -> None:
    fs = kernel.domain(rv6.name).impl  # the trusted checker calls the log directly
    buf = fs._cache.bread(fs.sb.inodestart)
    try:
        fs._log.log_write(buf)
    except RuntimeError:
        return
    except Exception as err:
        raise ExerciseFailed(f"log_write outside a transaction raised {panic_text(err)}, "
                             "expected RuntimeError") from None
    finally:
        fs._cache.brelse(buf)
    raise ExerciseFailed("log_write outside a transaction (no begin_op) was accepted: it must "
                         "raise RuntimeError, or the change would never be committed")


def _small_cache(kernel: Any, log_write: Callable[..., Any] | str, folder: Path) -> None:
    """A logged buffer must stay in the cache until its commit installs it (pinned): with
    a 24-buffer cache, unlinking a file with 30 mid-level indirect blocks reads them all
    (bread) in the one transaction that logged the directory block first."""
    copy = student_domain("rv6fs", {"log.py": {"Log.log_write": log_write}}, folder / "small")
    rewrite_file(copy, "rv6fs.py", "BufCache(bdev, NBUF)", f"BufCache(bdev, {SMALL_CACHE})")
    rv6 = _Rv6(kernel, copy, blocks=2048)
    what = (f"with a {SMALL_CACHE}-buffer cache (a file with {SPREAD} mid-level indirect "
            "blocks written, then unlinked)")
    try:
        fd = rv6.open("/spread", "create /spread")
        for k in range(SPREAD):
            rv6.write_block(fd, DOUBLE_START + k * NINDIRECT, f"writing mid-level block {k}")
        rv6.call("close", "close", PID, fd)
        if rv6.call("unlink /spread", "unlink", PID, "/spread") != 0:
            raise ExerciseFailed("unlink /spread failed")
        rv6.remount()
        if rv6.call("open /spread", "open", PID, "/spread", O_RDWR) >= 0:
            raise ExerciseFailed("the file is still there after a remount")
        rv6.fsck(what)
    except ExerciseFailed as failed:
        raise ExerciseFailed(f"{what}: {failed}. A logged buffer was evicted before its "
                             "commit: log_write must pin it (cache.pin) so it stays until "
                             "the commit installs it") from None
    finally:
        rv6.close()
