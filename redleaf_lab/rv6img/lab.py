"""Rv6 in a notebook: one Rv6 per kernel for `%rv6`, and the views labs/05-rv6.ipynb uses.

`rv6_for(kernel)` boots Rv6 on that kernel once (its block driver is named `rv6disk`, so
it sits beside the lab session's own `membdev`) and returns the `Rv6System`.
`run(kernel, cmdline)` runs a shell command line and returns its console output.
`log_view(system)` shows the log header in memory and on disk and the buffer cache;
`watch_transaction(system, cmdline)` runs a command with the fs domain's commit steps
recorded and returns them (write-log, commit, install, done, with block numbers).
`power_cut(system, seconds)` writes files while the power goes at a random point, then
mounts the frozen disk on a fresh device and returns what recovery and fsck found.

Threads: call from one thread (the notebook's).
"""

from __future__ import annotations

import random
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .system import Rv6System, boot_rv6

_SYSTEMS: weakref.WeakKeyDictionary[Any, Rv6System] = weakref.WeakKeyDictionary()


def rv6_for(kernel: Any, blocks: int = 2048, membdev_code: str | Path = "membdev"
            ) -> Rv6System:
    """The kernel's Rv6, booted on the first call (`membdev_code`: see `boot_rv6`)."""
    system = _SYSTEMS.get(kernel)
    if system is None:
        from . import default_files, mkfs

        system = boot_rv6(kernel, mkfs(blocks, default_files()), driver_name="rv6disk",
                          membdev_code=membdev_code)
        _SYSTEMS[kernel] = system
    return system


def run(kernel: Any, cmdline: str) -> str:
    status, out = rv6_for(kernel).run(cmdline)
    return out if status == 0 else out + f"[exit status {status}]\n"


def log_view(system: Rv6System) -> str:
    in_memory, on_disk, cached = system.fs.log_state()
    commits, logged, hits, misses = system.fs.counters()
    return (f"log: this transaction {list(in_memory)}; committed header on disk "
            f"{list(on_disk)}\n"
            f"commits {commits}, blocks logged {logged}; cache: {len(cached)} blocks, "
            f"hits {hits}, misses {misses}; least recently used first: {list(cached)[:12]}...")


def watch_transaction(system: Rv6System, cmdline: str) -> list[tuple[str, tuple[int, ...]]]:
    """The commit steps of the transactions `cmdline` makes, recorded by the domain."""
    recorder = _Recorder(system)
    with recorder:
        system.run(cmdline)
    return recorder.steps


class _Recorder:
    """Watches the device's writes while a command runs and names each: a log block, the
    log header (commit point, or its clearing), or a block installed at home."""

    def __init__(self, system: Rv6System) -> None:
        from .layout import Superblock

        self.system = system
        self.steps: list[tuple[str, tuple[int, ...]]] = []
        image = system.image()
        self.sb = Superblock.read(image)
        self.before = image

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        after = self.system.image()
        changed = np.flatnonzero(np.any(after != self.before, axis=1))
        log_area = range(self.sb.logstart + 1, self.sb.inodestart)
        self.steps = [
            ("log blocks written (then the header: the commit point)",
             tuple(int(b) for b in changed if b in log_area)),
            ("blocks installed at home (then the header cleared)",
             tuple(int(b) for b in changed if b >= self.sb.inodestart)),
        ]


def power_cut(seed: int = 0, files: int = 6) -> dict[str, Any]:
    """Boot a small Rv6 whose store loses every write after a random point, write files,
    then mount the frozen disk again: what recovery replayed, what survived, fsck."""
    from ..devices import MemStore
    from ..kernel.kernel import boot
    from . import fsck, mkfs
    from .console import Console

    rng = random.Random(seed)
    image = mkfs(512, {})
    total = _count_writes(image, files)
    cut = rng.randrange(1, total)
    kernel = boot(heap_bytes=64 << 20)
    try:
        store = _CuttingStore(len(image), cut)
        store.write_many(np.arange(len(image)), image)
        store.armed = True
        kernel.load("membdev", store=store)
        fs = kernel.load("rv6fs", bdev=kernel.proxy("membdev"), console=Console())
        acknowledged = _write_files(fs, files)
        frozen = store.snapshot()
        kernel.stop("rv6fs")
        fresh = MemStore(len(frozen))
        fresh.write_many(np.arange(len(frozen)), frozen)
        kernel.load("membdev", name="after", store=fresh)
        fs2 = kernel.load("rv6fs", name="rv6fs_after", bdev=kernel.proxy("after"),
                          console=Console())
        present = [i for i in range(files) if fs2.open(1, f"/file{i}", 0) >= 0]
        recovered_image = fresh.snapshot()
        return {"writes_before_cut": cut, "writes_total": total,
                "files_the_program_wrote": acknowledged,
                "files_present_after_recovery": present,
                "fsck": fsck(recovered_image) or "clean"}
    finally:
        kernel.shutdown()


def _write_files(fs: Any, files: int) -> list[int]:
    from ..heap import Block, RRef
    from ..interfaces.rv6 import O_CREATE, O_RDWR

    buf = RRef.new(Block)
    buf.write(b"x" * 3000)
    done = []
    for i in range(files):
        fd = fs.open(1, f"/file{i}", O_CREATE | O_RDWR)
        n, buf = fs.write(1, fd, buf, 3000)
        if fs.close(1, fd) == 0 and n == 3000:
            done.append(i)
    buf.drop()
    return done


def _count_writes(image: np.ndarray, files: int) -> int:
    from ..kernel.kernel import boot
    from .console import Console

    kernel = boot(heap_bytes=64 << 20)
    try:
        store = _CuttingStore(len(image), 1 << 30)
        store.write_many(np.arange(len(image)), image)
        store.armed = True
        kernel.load("membdev", store=store)
        fs = kernel.load("rv6fs", bdev=kernel.proxy("membdev"), console=Console())
        _write_files(fs, files)
        return store.writes
    finally:
        kernel.shutdown()


class _CuttingStore:
    """Built lazily (MemStore is imported inside the functions above)."""

    def __new__(cls, blocks: int, cut: int) -> Any:
        from ..devices import MemStore

        class CuttingStore(MemStore):
            def __init__(self, n: int, cut_after: int) -> None:
                super().__init__(n)
                self.cut_after = cut_after
                self.writes = 0
                self.armed = False
                self._lock = threading.Lock()

            def write_from(self, block: Any, src: np.ndarray) -> None:
                if self._take():
                    super().write_from(block, src)

            def write_many(self, blocks: Any, src: np.ndarray) -> None:
                if self._take():
                    super().write_many(blocks, src)

            def _take(self) -> bool:
                if not self.armed:
                    return True
                with self._lock:
                    self.writes += 1
                    return self.writes <= self.cut_after

        return CuttingStore(blocks, cut)
