"""Power cuts for the Rv6 tests: a block store that records writes, drops them after a
point, or tears the multi-block write at the point; a random workload with its model.

`CutStore` is a MemStore (the membdev driver's device) that records every write call as
one event (its block numbers and data). With `cut_after=N` it applies the first N write
calls and drops every later one (the power went off); with `tear=True` the call at the
cut lands partly (a random subset of its blocks: a multi-block write torn by the cut).

The campaign replays a recorded trace instead of re-running the workload per cut: the
disk after a cut at event c is the initial image plus events[:c] (plus a torn part of
events[c]), which is exactly what a CutStore with cut_after=c leaves, because the file
system never reads back a block it wrote while it runs (tests/rv6/test_powercut.py checks
the equivalence on a few live cuts).
"""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np

from redleaf_lab.devices import MemStore
from redleaf_lab.heap import Block, RRef
from redleaf_lab.interfaces.rv6 import O_CREATE, O_RDWR, O_TRUNC, T_DIR


class CutStore(MemStore):
    def __init__(self, num_blocks: int, cut_after: int | None = None, tear: bool = False,
                 seed: int = 0) -> None:
        super().__init__(num_blocks)
        self.events: list[tuple[np.ndarray, np.ndarray]] = []
        self.cut_after = cut_after
        self.tear = tear
        self.rng = random.Random(seed)
        self.recording = False

    def write_from(self, block: Any, src: np.ndarray) -> None:
        self._event(np.array([int(block)]), np.asarray(src).reshape(1, -1))

    def write_many(self, blocks: Any, src: np.ndarray) -> None:
        self._event(np.asarray(blocks, dtype=np.int64), np.asarray(src))

    def _event(self, blocks: np.ndarray, datas: np.ndarray) -> None:
        if not self.recording:
            MemStore.write_many(self, blocks, datas)
            return
        n = len(self.events)
        self.events.append((blocks.copy(), datas.copy()))
        if self.cut_after is None or n < self.cut_after:
            MemStore.write_many(self, blocks, datas)
        elif n == self.cut_after and self.tear:
            keep = [i for i in range(len(blocks)) if self.rng.random() < 0.5]
            if keep:
                MemStore.write_many(self, blocks[keep], datas[keep])


def is_commit(event: tuple[np.ndarray, np.ndarray], logstart: int) -> bool:
    blocks, datas = event
    return len(blocks) == 1 and int(blocks[0]) == logstart and struct.unpack_from(
        "<I", datas[0], 0)[0] > 0


class Workload:
    """Random file-system calls through an Rv6FS proxy (pid 1), with a model: after each
    call, `snapshots[j]` is the model and `marks[j]` the number of write events so far."""

    def __init__(self, fs: Any, store: CutStore, seed: int) -> None:
        self.fs = fs
        self.store = store
        self.rng = random.Random(seed)
        self.names: dict[str, int] = {}  # path -> inode (hard links share one)
        self.data: dict[int, bytes] = {}
        self.next_inode = 0
        self.dirs = {"/"}
        self.snapshots: list[dict[str, bytes]] = []
        self.dir_snapshots: list[set[str]] = []
        self.marks: list[int] = []
        self.buf = RRef.new(Block)

    @property
    def model(self) -> dict[str, bytes]:
        return {path: self.data[ino] for path, ino in self.names.items()}

    def _mark(self) -> None:
        self.snapshots.append(self.model)
        self.dir_snapshots.append(set(self.dirs))
        self.marks.append(len(self.store.events))

    def _write(self, fd: int, data: bytes) -> None:
        self.buf.write(data)
        n, self.buf = self.fs.write(1, fd, self.buf, len(data))
        assert n == len(data), n

    def step(self) -> None:
        rng, fs = self.rng, self.fs
        files = sorted(self.model)
        choice = rng.random()
        if choice < 0.45 or not files:
            parent = rng.choice(sorted(self.dirs))
            path = parent.rstrip("/") + f"/f{rng.randrange(30)}"
            if path in self.dirs:
                return
            fd = fs.open(1, path, O_CREATE | O_RDWR | O_TRUNC)
            assert fd >= 0, (path, fd)
            if path not in self.names:
                self.names[path] = self.next_inode
                self.next_inode += 1
            ino = self.names[path]
            self.data[ino] = b""
            self._mark()
            data = bytes([rng.randrange(1, 256)]) * rng.randrange(1, 3 * 4096)
            for off in range(0, len(data), 4096):
                self._write(fd, data[off:off + 4096])
                self.data[ino] += data[off:off + 4096]
                self._mark()
            assert fs.close(1, fd) == 0
            self._mark()
        elif choice < 0.6:
            path = rng.choice(files)
            assert fs.unlink(1, path) == 0
            del self.names[path]
            self._mark()
        elif choice < 0.75:
            path = rng.choice(files)
            fd = fs.open(1, path, O_RDWR)
            fs.seek(1, fd, 0, 2)
            data = bytes([rng.randrange(1, 256)]) * rng.randrange(1, 5000)
            self._write(fd, data[:4096])
            self.data[self.names[path]] += data[:4096]
            self._mark()
            fs.close(1, fd)
            self._mark()
        elif choice < 0.85:
            path = f"/d{rng.randrange(4)}"
            if path not in self.dirs and path not in self.names:
                assert fs.mkdir(1, path) == 0
                self.dirs.add(path)
                self._mark()
        else:
            old = rng.choice(files)
            new = f"/l{rng.randrange(20)}"
            if new not in self.names and new not in self.dirs:
                assert fs.link(1, old, new) == 0
                self.names[new] = self.names[old]
                self._mark()

    def run(self, steps: int) -> None:
        self._mark()
        for _ in range(steps):
            self.step()
        self.buf.drop()


def read_tree(fs: Any, pid: int = 1) -> tuple[dict[str, bytes], set[str]]:
    """Every file's contents and every directory, walked through the fs domain."""
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    buf = RRef.new(Block)

    def walk(path: str) -> None:
        nonlocal buf
        dirs.add(path)
        fd = fs.open(pid, path, 0)
        err, entries = fs.readdir(pid, fd)
        fs.close(pid, fd)
        assert err == 0
        for _inum, name in entries:
            if name in (".", ".."):
                continue
            child = path.rstrip("/") + "/" + name
            fd = fs.open(pid, child, 0)
            st = fs.fstat(pid, fd)
            if st[3] == T_DIR:
                fs.close(pid, fd)
                walk(child)
                continue
            parts = []
            while True:
                n, buf = fs.read(pid, fd, buf, 4096)
                assert n >= 0
                if n == 0:
                    break
                parts.append(buf.tobytes()[:n])
            fs.close(pid, fd)
            files[child] = b"".join(parts)

    walk("/")
    buf.drop()
    return files, dirs
