"""Rv6 as a live workload: a process writing and verifying files while its driver crashes.

`Rv6Workload(kernel)` boots Rv6 on the kernel (its block driver `rv6disk` behind a shadow,
the domain a panel's "inject panic" targets) and, on its traffic thread, acts as one
process (a syscall port with its own pid): it rewrites files /live0../live15 with a
pattern naming the file and its version, reads each back right after and counts a wrong
read as an error. `check()` reads every file again and compares it with the last
acknowledged version: `lost_acknowledged_writes` must stay 0 across driver panics.

Importing this module registers the workload as "rv6" (`live.register_workload`), so
`LabSession.add_workload("rv6")` and the panels can use it.

Threads: the traffic thread is the only user of its port; counters are plain ints
written by it (read under the GIL).
"""

from __future__ import annotations

import threading
from typing import Any

from ..heap import Block, RRef
from ..interfaces.rv6 import O_CREATE, O_RDONLY, O_RDWR, O_TRUNC
from ..live.workloads import Workload, register_workload
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

    def __init__(self, kernel: Any) -> None:
        super().__init__()
        self.kernel = kernel
        self.system = rv6_for(kernel)
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

    def _read(self, buf: RRef, path: str) -> tuple[bytes | None, RRef]:
        fd = self.port.open(path, O_RDONLY)
        if fd < 0:
            return None, buf
        parts = []
        while True:
            n, buf = self.port.read(fd, buf, 4096)
            if n < 0:
                self.port.close(fd)
                return None, buf
            if n == 0:
                break
            parts.append(buf.tobytes()[:n])
        self.port.close(fd)
        return b"".join(parts), buf

    def traffic(self, stop: threading.Event) -> None:
        buf = RRef.new(Block)
        version = 0
        try:
            while not stop.is_set():
                index = version % FILES
                data = pattern(index, version)
                ok, buf = self._write(buf, f"/live{index}", data)
                if not ok:
                    self.errors += 1
                    self.last_error = f"write of /live{index} failed"
                else:
                    self.acknowledged[index] = version
                    back, buf = self._read(buf, f"/live{index}")
                    if back != data:
                        self.wrong_reads += 1
                        self.errors += 1
                    self.bytes_done += 2 * len(data)
                    self.ops_done += 2
                version += 1
        finally:
            buf.drop()

    def check(self) -> dict[str, Any]:
        buf = RRef.new(Block)
        lost = 0
        try:
            for index, version in self.acknowledged.items():
                back, buf = self._read(buf, f"/live{index}")
                lost += back != pattern(index, version)
        finally:
            buf.drop()
        return {"lost_acknowledged_writes": lost, "wrong_reads": self.wrong_reads,
                "files": len(self.acknowledged)}


register_workload("rv6", Rv6Workload)
