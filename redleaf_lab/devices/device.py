"""Device: what a driver domain sees of a device (a register window plus DMA memory).

Purpose: the backend-neutral capability handed to drivers (NVMe now, ixgbe and VFIO
later). A backend (`sim_nvme.SimNvme`, later a VFIO one) gives it a BAR buffer and,
optionally, a hook run after register writes; everything a driver uses is here:

* registers: `read32/write32/read64/write64(offset)` on the BAR (little-endian, aligned);
  `regs32()` returns a uint32 numpy view of the BAR for hot paths that poll;
* DMA memory: `dma_alloc(size) -> DmaBuffer(iova, array, handle)` allocates zeroed,
  4096-aligned memory in the kernel's shared heap (the arena the device DMAs into),
  owned by the calling domain, so a crash reclaims it; `dma_free(handle)` frees it.
  `array` is a uint8 numpy view; `iova` the device address of its first byte;
* `quiesce()`: stop all DMA now (the kernel calls it before reclaiming a crashed
  driver's memory); the next driver must re-initialize the device;
* `bind_driver(domain_id)` / `revoke_driver()`: the kernel binds the device to the
  driver domain it is given to (before init) and revokes it when that domain crashes
  or stops; register writes from any other domain then raise DeviceRevokedError
  (root, i.e. trusted code, may always write).

A VFIO backend supplies a BAR mapped from the device file and IOVAs from an IOMMU
mapping of the same arena, and needs no write hook; the driver code does not change.

Locking/ownership: register accesses are single aligned loads/stores (atomic on x86-64);
ordering with a device thread follows the model's rules (csrc/nvme_model.h): write DMA
memory first, then the doorbell; read a completion's phase tag before its fields. DMA
buffers belong to the domain that allocated them; views of them must not be used after
a free or a crash. Several threads may share a Device; they must not share a queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._core import ffi
from .._core.heap import OWNER_ROOT, CoreHeap  # root: trusted code (kernel, tests)
from ..errors import DeviceRevokedError
from ..heap.layout import Layout
from ..heap.rref import new_exporter, pin_object
from ..kernel.context import current_owner_id
from ..sealed import Sealed

PAGE = 4096
REVOKED = -1  # bound to no domain: the driver crashed or stopped
DMA_MEMORY = Layout.scalar("dma-memory", np.uint8)


@dataclass(frozen=True)
class DmaBuffer(Sealed):
    """DMA memory: device address, numpy view (uint8), and the handle to free it with."""

    iova: int
    array: npt.NDArray[np.uint8]
    handle: int


class Device(Sealed):
    """A register window plus DMA memory from the shared heap; see the module docstring."""

    kind = "device"

    def __init__(self, name: str, bar: Any, heap: CoreHeap,
                 after_write: Callable[[int], None] | None = None) -> None:
        self.name = name
        self._bar_buffer = bar
        self._r32: npt.NDArray[np.uint32] = np.frombuffer(bar, dtype="<u4")
        self._r64: npt.NDArray[np.uint64] = np.frombuffer(bar, dtype="<u8")
        self._bar_bytes = int(self._r32.nbytes)
        self._heap = heap
        self._after_write = after_write
        self._driver: int | None = None  # None: unbound (trusted code drives it directly)
        self._dma: set[int] = set()

    # -- registers -------------------------------------------------------------------
    @property
    def bar_size(self) -> int:
        return self._bar_bytes

    def _check(self, offset: int, width: int) -> int:
        if type(offset) is not int or offset < 0 or offset % width or offset + width > self._bar_bytes:
            raise ValueError(f"{self.name}: bad {width * 8}-bit register offset {offset!r} "
                             f"(BAR is {self.bar_size} bytes)")
        return offset // width

    def read32(self, offset: int) -> int:
        return int(self._r32[self._check(offset, 4)])

    def read64(self, offset: int) -> int:
        return int(self._r64[self._check(offset, 8)])

    def write32(self, offset: int, value: int) -> None:
        if self._driver is not None:
            self._check_writer()
        self._r32[self._check(offset, 4)] = value & 0xFFFF_FFFF
        if self._after_write is not None:
            self._after_write(offset)

    def write64(self, offset: int, value: int) -> None:
        if self._driver is not None:
            self._check_writer()
        self._r64[self._check(offset, 8)] = value & 0xFFFF_FFFF_FFFF_FFFF
        if self._after_write is not None:
            self._after_write(offset)

    # -- which domain drives it --------------------------------------------------------
    def bind_driver(self, domain_id: int) -> None:
        """The kernel hands the device to driver domain `domain_id` (before its init):
        from now on only that domain, and trusted root code, may write its registers."""
        self._driver = domain_id

    def revoke_driver(self) -> None:
        """The driver crashed or stopped: until the kernel binds the next incarnation, only
        root may write (a dead incarnation's thread that has not unwound yet cannot ring a
        doorbell of the controller its successor re-initializes)."""
        self._driver = REVOKED

    def _check_writer(self) -> None:
        me = current_owner_id()
        if me != self._driver and me != OWNER_ROOT:
            holder = "no driver" if self._driver == REVOKED else f"domain {self._driver}"
            raise DeviceRevokedError(f"{self.name}: domain {me} may not write registers: the "
                                     f"device belongs to {holder}")

    def regs32(self) -> npt.NDArray[np.uint32]:
        """A read-only uint32 view of the whole BAR (for polling status registers)."""
        view = self._r32.view()
        view.flags.writeable = False
        return view

    # -- DMA memory --------------------------------------------------------------------
    def dma_alloc(self, size: int) -> DmaBuffer:
        """`size` zeroed bytes (rounded up to whole 4 KiB pages, so page aligned), owned
        by the calling domain."""
        if type(size) is not int or size <= 0:
            raise ValueError(f"dma_alloc: size must be a positive int, got {size!r}")
        rounded = -(-size // PAGE) * PAGE
        obj_id, ptr = self._heap.alloc(rounded, DMA_MEMORY.type_id, current_owner_id())
        iova = self._heap.iova(obj_id)
        if iova % PAGE:  # the heap aligns objects of >= 4096 bytes to 4096
            self._heap.free(obj_id)
            raise RuntimeError(f"dma_alloc: heap returned an unaligned IOVA {iova:#x}")
        # pinned: after a free or a crash's reclaim, a view the driver still holds keeps
        # the memory out of reuse until the view goes (heap/rref.py ViewExporter)
        exporter = new_exporter(int(ffi.cast("uintptr_t", ptr)), rounded, None,
                                pin_object(self._heap, obj_id))
        array = np.asarray(exporter)[:size]
        self._dma.add(obj_id)
        return DmaBuffer(iova, array, obj_id)

    def dma_free(self, handle: int) -> None:
        if handle not in self._dma:
            raise ValueError(f"dma_free: {handle!r} is not a live DMA buffer of {self.name}")
        self._dma.discard(handle)
        self._heap.free_if_live(handle)

    def dma_live(self) -> int:
        """DMA buffers allocated and not freed or reclaimed (for leak checks)."""
        self._dma = {h for h in self._dma if self._heap.is_live(h)}
        return len(self._dma)

    # -- lifecycle ---------------------------------------------------------------------
    def quiesce(self) -> None:
        """Stop all DMA (backends override)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} BAR {self.bar_size} B>"
