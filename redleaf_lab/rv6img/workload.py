"""Rv6 as a live workload: a process writing and verifying files while its driver crashes.

`Rv6Workload(kernel)` boots Rv6 on the kernel (its block driver `rv6disk` behind a shadow,
the domain a panel's "inject panic" targets) and, on its traffic thread, acts as one
process (a syscall port with its own pid): it rewrites files /live0../live15 with a
pattern naming the file and its version, reads each back right after and counts a wrong
read (`wrong_reads`) and a failed call (`errors`: the program must see none).

`check()` compares every file with its last acknowledged version twice: read through
the running Rv6 (what a program sees; often from the buffer cache), and on the media:
the store's blocks mounted on a fresh file-system domain (log recovery included), so
neither the live cache nor the driver can answer for the disk. `lost_writes` counts
the files missing their version either way and must stay 0 across driver panics (the
key every workload's check has, which the demo sums).

Importing this module registers the workload as "rv6" (`live.register_workload`), so
`LabSession.add_workload("rv6")` and the panels can use it.

Threads: the traffic thread is the only user of its port; counters are plain ints
written by it (read under the GIL).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..heap import Block, RRef
from ..interfaces.rv6 import O_CREATE, O_RDONLY, O_RDWR, O_TRUNC
from ..live.workloads import Workload, register_workload
from .console import Console
from .lab import rv6_for
from .programs import SyscallPort

FILES = 16
PID = 10_000


def pattern(index: int, version: int) -> bytes:
    head = f"/live{index} v{version} ".encode()
    return (head * (4096 // len(head) + 1))[:4096 + (version % 3) * 1000]


class Rv6Workload(Workload):
    name = "rv6"
    domain = "rv6disk"
    modes = ("write-verify",)

    def __init__(self, kernel: Any, membdev_code: str | Path = "membdev") -> None:
        super().__init__()
        self.kernel = kernel
        self.system = rv6_for(kernel, membdev_code=membdev_code)
        self.port = SyscallPort(self.system.core, PID)
        self.acknowledged: dict[int, int] = {}  # file -> last version the program saw written
        self.wrong_reads = 0

    def _write(self, buf: RRef, path: str, data: bytes) -> tuple[bool, RRef]:
        fd = self.port.open(path, O_CREATE | O_RDWR | O_TRUNC)
        if fd < 0:
            return False, buf
        ok = True
        for off in range(0, len(data), 4096):
            chunk = data[off:off + 4096]
            buf.write(chunk)
            n, buf = self.port.write(fd, buf, len(chunk))
            ok = ok and n == len(chunk)
        return self.port.close(fd) == 0 and ok, buf

    def _read(self, buf: RRef, path: str, port: Any = None) -> tuple[bytes | None, RRef]:
        port = port or self.port
        fd = port.open(path, O_RDONLY)
        if fd < 0:
            return None, buf
        parts = []
        while True:
            n, buf = port.read(fd, buf, 4096)
            if n < 0:
                port.close(fd)
                return None, buf
            if n == 0:
                break
            parts.append(buf.tobytes()[:n])
        port.close(fd)
        return b"".join(parts), buf

    def traffic(self, stop: threading.Event) -> None:
        buf = RRef.new(Block)
        version = 0
        try:
            while not stop.is_set():
                index = version % FILES
                data = pattern(index, version)
                ok, buf = self._write(buf, f"/live{index}", data)
                if not ok:  # (the file may now hold neither version)
                    self.acknowledged.pop(index, None)
                    self.errors += 1
                    self.last_error = f"write of /live{index} failed"
                else:
                    self.acknowledged[index] = version
                    back, buf = self._read(buf, f"/live{index}")
                    if back is None:  # a call failed: the program saw an error
                        self.errors += 1
                        self.last_error = f"read of /live{index} failed"
                    elif back != data:
                        self.wrong_reads += 1
                    self.bytes_done += 2 * len(data)
                    self.ops_done += 2
                version += 1
        finally:
            buf.drop()

    def check(self) -> dict[str, Any]:
        buf = RRef.new(Block)
        lost_live: set[int] = set()
        try:
            for index, version in self.acknowledged.items():
                back, buf = self._read(buf, f"/live{index}")
                if back != pattern(index, version):
                    lost_live.add(index)
        finally:
            buf.drop()
        lost_media, media = self._check_media()
        return {"lost_writes": len(lost_live | lost_media), "wrong_reads": self.wrong_reads,
                "files": len(self.acknowledged), "lost_through_rv6": len(lost_live),
                "lost_on_media": len(lost_media), "media": media}

    def _check_media(self) -> tuple[set[int], str]:
        """The acknowledged files missing on the media, and how the media mounted."""
        snapshot = getattr(self.system.store, "snapshot", None)
        if snapshot is None:  # not a MemStore (an NVMe device): the live check only
            return set(), "not checked"
        from ..devices import MemStore

        image = snapshot()
        store = MemStore(len(image))
        store.write_many(np.arange(len(image)), image)
        disk, fs_name = f"{self.domain}-media", f"{self.domain}-media-fs"
        kernel = self.kernel
        lost: set[int] = set()
        buf = RRef.new(Block)
        try:
            kernel.load("membdev", name=disk, store=store)
            try:
                fs = kernel.load("rv6fs", name=fs_name, bdev=kernel.proxy(disk),
                                 console=Console())
            except Exception as exc:  # the media does not even mount
                return set(self.acknowledged), f"cannot mount: {exc}"
            port = _FsPort(fs, PID)
            for index, version in self.acknowledged.items():
                back, buf = self._read(buf, f"/live{index}", port)
                if back != pattern(index, version):
                    lost.add(index)
            return lost, "mounted"
        finally:
            buf.drop()
            for name in (fs_name, disk):
                _stop_and_forget(kernel, name)


class _FsPort:
    """The file-system domain's calls as a process's port (one pid)."""

    def __init__(self, fs: Any, pid: int) -> None:
        self._fs, self._pid = fs, pid

    def open(self, path: str, mode: int) -> int:
        return int(self._fs.open(self._pid, path, mode))

    def read(self, fd: int, buf: RRef, count: int) -> tuple[int, RRef]:
        n, buf = self._fs.read(self._pid, fd, buf, count)
        return int(n), buf

    def close(self, fd: int) -> int:
        return int(self._fs.close(self._pid, fd))


def _stop_and_forget(kernel: Any, name: str) -> None:
    try:
        domain = kernel.domain(name)
    except KeyError:
        return
    kernel.stop(name)
    if domain.settled.wait(2.0) and hasattr(kernel, "forget"):
        kernel.forget(name)


register_workload("rv6", Rv6Workload)
