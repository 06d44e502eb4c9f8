"""SimNvme: the `sim` backend of an NVMe device (the C controller model behind a Device).

Purpose: creates a controller model (csrc/nvme_model.c, module `_redleaf_dev`, which
releases the GIL) that DMAs into the kernel's shared-heap arena, and exposes it as a
`Device`: the BAR is the model's register memory (an `ffi.buffer`), DMA memory comes
from the heap. Two modes:

* inline (`threaded=False`, the default; deterministic): every register write through
  `write32/write64` runs one model pass (`nvm_process`) before it returns, so a command
  is complete when the doorbell write returns;
* threaded: a C device thread polls CC and the doorbells; the driver polls completions.

Test and lab hooks (trusted code only; a driver gets the Device, which has them too, but
the safe subset gives a driver no reason to call them): `fatal()` sets CSTS.CFS,
`fatal_after(n)`, `stats()`, `media()` (a numpy view of the namespace), `close()`.

Locking/ownership: the model has its own mutex (nvme_model.h). The SimNvme keeps its
heap alive (the model holds raw pointers into the arena) and destroys the model in
`close()` or when garbage. `quiesce()` is the kernel's crash-path hook: it stops all
DMA at once, like a function-level reset (queues dropped, CC/AQA/ASQ/ACQ/doorbells 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .._core._redleaf_dev import ffi as dffi
from .._core._redleaf_dev import lib as dlib
from .._core.heap import CoreHeap
from .device import Device
from .keepgil import call_keeping_gil, pass_pointers

REG_CAP, REG_VS, REG_CC, REG_CSTS = dlib.NVM_REG_CAP, dlib.NVM_REG_VS, dlib.NVM_REG_CC, dlib.NVM_REG_CSTS
REG_AQA, REG_ASQ, REG_ACQ, REG_DBS = dlib.NVM_REG_AQA, dlib.NVM_REG_ASQ, dlib.NVM_REG_ACQ, dlib.NVM_REG_DBS


@dataclass(frozen=True)
class NvmeStats:
    commands: int
    errors: int
    reads: int
    writes: int
    bytes_read: int
    bytes_written: int
    resets: int
    passes: int


class SimNvme(Device):
    """An NVMe controller model with one namespace; see the module docstring."""

    def __init__(self, heap: CoreHeap, blocks: int = 1 << 16, lba_shift: int = 12,
                 mqes: int = 1023, dstrd: int = 0, max_ioq: int = 16,
                 media_path: str | None = None, threaded: bool = False,
                 name: str = "nvme0") -> None:
        path = dffi.new("char[]", media_path.encode()) if media_path else dffi.NULL
        raw = dlib.nvm_create(dffi.cast("void *", int(_address(heap.base))), heap.size,
                              heap.iova_base, blocks, lba_shift, mqes, dstrd, max_ioq, path)
        if raw == dffi.NULL:
            raise ValueError(
                f"cannot create the NVMe model (blocks={blocks}, lba_shift={lba_shift} (9..12), "
                f"mqes={mqes} (1..65535), dstrd={dstrd} (0..4), max_ioq={max_ioq} (1..1024), "
                f"media_path={media_path!r})")
        self._ctrl: Any = dffi.gc(raw, dlib.nvm_destroy)
        self._raw = raw
        self.blocks = blocks
        self.lba_shift = lba_shift
        self.threaded = threaded
        bar = dffi.buffer(dlib.nvm_bar(raw), dlib.nvm_bar_size(raw))
        super().__init__(name, bar, heap, None if threaded else self._kick)
        self._process = dlib.nvm_process
        self._pass_fn, self._pass_arg = pass_pointers(dffi.addressof(dlib, "nvm_process"), raw)
        # doorbells from here on belong to I/O queues (§3.1.24: 0x1000 + (2y) * stride)
        self._io_doorbells = REG_DBS + 2 * (4 << dstrd)
        if threaded and dlib.nvm_start_thread(raw) != 0:
            raise RuntimeError("cannot start the NVMe device thread")

    def _kick(self, offset: int) -> None:
        if offset >= self._io_doorbells:  # the data path: yield the GIL during the pass
            self._process(self._raw)
        else:  # control registers and the admin queue: keep it (csrc/keepgil.h)
            call_keeping_gil(self._pass_fn, self._pass_arg)

    # -- modes and faults ------------------------------------------------------------------
    def start_thread(self) -> None:
        if not dlib.nvm_thread_running(self._raw) and dlib.nvm_start_thread(self._raw) != 0:
            raise RuntimeError("cannot start the NVMe device thread")
        self.threaded = True
        self._after_write = None

    def stop_thread(self) -> None:
        dlib.nvm_stop_thread(self._raw)
        self.threaded = False
        self._after_write = self._kick

    def process(self) -> int:
        """Run one model pass now (inline mode); returns completions posted."""
        return int(self._process(self._raw))

    def fatal(self) -> None:
        """Controller fatal status: CSTS.CFS = 1, no more processing until a reset."""
        dlib.nvm_fatal(self._raw)

    def fatal_after(self, commands: int) -> None:
        """Go fatal after `commands` more completions (0 disarms)."""
        dlib.nvm_fatal_after(self._raw, commands)

    def quiesce(self) -> None:
        if self._ctrl is not None:
            dlib.nvm_quiesce(self._raw)

    # -- observation ---------------------------------------------------------------------
    def stats(self) -> NvmeStats:
        out = dffi.new("nvm_stats *")
        dlib.nvm_get_stats(self._raw, out)
        return NvmeStats(*(int(getattr(out, f.name)) for f in fields(NvmeStats)))

    def media(self) -> npt.NDArray[np.uint8]:
        """The namespace's bytes (a live view; for tests and checks)."""
        size = int(dlib.nvm_media_bytes(self._raw))
        return np.frombuffer(dffi.buffer(dlib.nvm_media(self._raw), size), dtype=np.uint8)

    def bench_host(self, mem_iova: int, mem_bytes: int, depth: int, nlb: int, ios: int,
                   write: bool, random: bool, seed: int = 1) -> int:
        """Run the C baseline loop (nvme_host.c) on this controller; returns ns."""
        return int(dlib.nvm_host_bench(self._raw, mem_iova, mem_bytes, depth, nlb, ios,
                                       int(write), int(random), seed))

    def close(self) -> None:
        """Stop the device thread and free the model (the Device is unusable after)."""
        if self._ctrl is not None:
            dlib.nvm_stop_thread(self._raw)
            self._after_write = None
            ctrl, self._ctrl, self._raw = self._ctrl, None, dffi.NULL
            dffi.release(ctrl)


def _address(pointer: Any) -> int:
    """The integer address of a cdata pointer from the core module."""
    from .._core import ffi as core_ffi

    return int(core_ffi.cast("uintptr_t", pointer))


def host_bench_bytes(depth: int, nlb: int, lba_shift: int = 12) -> int:
    return int(dlib.nvm_host_bench_bytes(depth, nlb, lba_shift))


def memcpy_ns(dst: Any, src: Any, nbytes: int, rounds: int) -> int:
    """Time `rounds` C memcpy calls of `nbytes` between two numpy arrays."""
    return int(dlib.nvm_memcpy_bench(dffi.from_buffer(dst), dffi.from_buffer(src), nbytes, rounds))
