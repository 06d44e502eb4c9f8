"""VfioDevice / VfioNvme: the `vfio` backend of `Device` (real hardware, or QEMU's models).

Purpose: what a driver domain needs, from a PCI function bound to vfio-pci:
* registers: BAR0 mmap'ed from the device fd; `Device` reads and writes it through numpy
  uint32/uint64 views (single aligned MMIO loads and stores), so the driver is unchanged;
* DMA memory: the kernel's shared-heap arena is mapped ONCE with VFIO_IOMMU_MAP_DMA at
  the heap's own IOVA base (default 4 GiB), so `Device.dma_alloc` and every RRef's
  `iova()` are device addresses as they are on the sim backend. The mapping pins the
  whole arena, so boot the kernel with a small heap for VFIO (`open_nvme` boots with
  64 MiB; the arena must lie below 2^39, the emulated VT-d's reach, and be at most
  `max_pin_bytes`). `map_buffer` maps other memory at an allocated IOVA (tests);
* `quiesce()` (the kernel calls it when the driver domain crashes, before reclaiming the
  driver's heap): clear Bus Master Enable, so no DMA continues; reset the function
  (VFIO_DEVICE_RESET; for NVMe, without a reset: CC.EN = 0 and wait for CSTS.RDY = 0,
  NVMe 1.4 §7.3.2); then set Bus Master again for the next incarnation, which starts
  from a disabled controller and re-initializes it (its init begins with CC.EN = 0);
* `close()`: bus master off, BAR views dropped, BAR unmapped, every DMA mapping
  unmapped, device/group/container fds closed.

Counters for tests and dashboards: `quiesces`, `resets`. Errors: `VfioError`.
Ownership: the kernel's heap must outlive this device (the IOMMU maps its arena); the
device belongs to the code that opened it (test, CLI), not to the driver domain.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import numpy as np

from redleaf_lab._core import ffi
from redleaf_lab._core.heap import CoreHeap
from redleaf_lab.devices.device import Device

from . import pci
from .device import VfioPci
from .errors import VfioError

NVME_CC, NVME_CSTS = 0x14, 0x1C  # NVMe 1.4 §3.1.5, §3.1.6
MAX_PIN_BYTES = 256 << 20


class VfioDevice(Device):
    kind = "vfio"

    def __init__(self, bdf: str, heap: CoreHeap, name: str | None = None, bar: int = 0,
                 max_pin_bytes: int = MAX_PIN_BYTES) -> None:
        if heap.size > max_pin_bytes:
            raise VfioError(f"the shared heap is {heap.size >> 20} MiB: VFIO pins all of it for "
                            f"DMA (limit {max_pin_bytes >> 20} MiB). Boot the kernel with a "
                            "smaller heap, e.g. redleaf_lab.boot(heap_bytes=64 << 20), or use "
                            "redleaf_lab.devices.open_nvme")
        self.pci = VfioPci(bdf)
        self.bdf = self.pci.bdf
        self.quiesces = 0
        self.resets = 0
        try:
            window = self.pci.map_bar(bar)
            base = int(ffi.cast("uintptr_t", heap.base))
            self.heap_iova = self.pci.container.map_dma(base, heap.size, iova=heap.iova_base)
            self.pci.bus_master(True)
        except BaseException:
            self.pci.close()
            raise
        self._extra: dict[int, Any] = {}  # iova -> the mapped buffer (kept alive)
        super().__init__(name or f"vfio:{self.bdf}", window, heap)

    # -- extra DMA mappings (tests, tools) ----------------------------------------------------
    def map_buffer(self, buffer: Any, iova: int | None = None) -> int:
        """Map a page-aligned writable buffer (e.g. an anonymous mmap) for DMA; its IOVA."""
        view = memoryview(buffer)
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
        iova = self.pci.container.map_dma(address, view.nbytes, iova)
        self._extra[iova] = (buffer, view)
        return iova

    def unmap_buffer(self, iova: int) -> None:
        self.pci.container.unmap_dma(iova)
        _buffer, view = self._extra.pop(iova)
        view.release()

    # -- crash path ------------------------------------------------------------------------
    def reset_function(self) -> None:
        """Reset the function; backends add a device-level fallback."""
        if self.pci.reset():
            self.resets += 1

    def quiesce(self) -> None:
        if self.pci.closed:
            return
        self.pci.bus_master(False)  # no DMA from here on
        self.reset_function()
        self.pci.bus_master(True)  # a reset device does no DMA until a driver enables it
        self.quiesces += 1

    def close(self) -> None:
        if self.pci.closed:
            return
        try:
            self.pci.bus_master(False)
        except (OSError, VfioError):
            pass
        empty = np.zeros(0, np.uint8)
        self._bar_buffer = empty
        self._r32 = empty.view("<u4")
        self._r64 = empty.view("<u8")
        for iova in list(self._extra):
            self.unmap_buffer(iova)
        self.pci.close()

    def __repr__(self) -> str:
        state = "closed" if self.pci.closed else f"BAR {self.bar_size} B"
        return f"<{type(self).__name__} {self.bdf} {state}>"


class VfioNvme(VfioDevice):
    """An NVMe controller (class 01:08:02) through VFIO, for drivers/nvme."""

    def __init__(self, bdf: str, heap: CoreHeap, name: str | None = None,
                 max_pin_bytes: int = MAX_PIN_BYTES) -> None:
        bdf = pci.parse_bdf(bdf)
        found = pci.read_hex(bdf, "class")
        if found != pci.NVME_CLASS:
            raise VfioError(f"{bdf} is not an NVMe controller (class {found:06x}, want "
                            f"{pci.NVME_CLASS:06x}); NVMe devices: "
                            f"{', '.join(pci.find_by_class(pci.NVME_CLASS)) or 'none'}")
        super().__init__(bdf, heap, name or f"nvme-vfio:{bdf}", 0, max_pin_bytes)

    def reset_function(self) -> None:
        """VFIO_DEVICE_RESET when offered; else an NVMe controller reset (CC.EN = 0)."""
        if self.pci.reset():
            self.resets += 1
            return
        self.write32(NVME_CC, 0)
        deadline = time.monotonic() + 10.0
        while self.read32(NVME_CSTS) & 1:
            if time.monotonic() > deadline:
                raise VfioError(f"{self.bdf}: CSTS.RDY stayed 1 for 10 s after CC.EN = 0")
            time.sleep(0.001)
        self.resets += 1
