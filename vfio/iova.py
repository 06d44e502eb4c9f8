"""IovaAllocator: device addresses (IOVAs) for VFIO DMA mappings, inside the IOMMU's reach.

Purpose: an IOVA is the address the device uses; with VFIO type1 we choose it. Using
iova = virtual address fails on IOMMUs with fewer address bits than the CPU: QEMU's
emulated VT-d (and many real ones) translate 39 bits (3-level page tables), so IOVAs
at or above 2^39 are refused (UNVMe issue #4; cloud-hypervisor #7030). This allocator
hands out page-aligned ranges from the usable windows: the ones the IOMMU reports
(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, which excludes e.g. the MSI window
0xfee00000-0xfeefffff) clipped to [floor, 2^addr_bits). First fit over a sorted free
list, with coalescing on free; `reserve` claims a fixed range (the shared-heap arena is
mapped at the heap's own IOVA base, so heap.iova(obj) stays the device address).

Interface: `alloc(size) -> iova`, `reserve(iova, size)`, `free(iova)`, `allocated()`,
`limit`. Errors: `VfioError` (exhausted, outside the windows, overlap, unknown iova).
Not thread safe: the owner (a Container) serializes calls.
"""

from __future__ import annotations

from .errors import VfioError

PAGE = 4096
VTD_ADDRESS_BITS = 39  # QEMU intel-iommu default aw-bits; 3-level VT-d page tables


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


class IovaAllocator:
    def __init__(self, windows: list[tuple[int, int]] | None = None,
                 address_bits: int = VTD_ADDRESS_BITS, floor: int = 0x10_0000) -> None:
        """`windows`: usable [start, end] ranges, inclusive ends (as VFIO reports them);
        default: the whole space. Everything is clipped to [floor, 2^address_bits)."""
        self.limit = 1 << address_bits
        self._free: list[tuple[int, int]] = []  # sorted (start, end exclusive)
        for start, end in windows or [(0, self.limit - 1)]:
            lo = _round_up(max(start, floor), PAGE)
            hi = min(end + 1, self.limit) // PAGE * PAGE
            if hi > lo:
                self._free.append((lo, hi))
        self._free.sort()
        if not self._free:
            raise VfioError(f"no usable IOVA window below 2^{address_bits} (IOMMU windows: "
                            f"{windows}); the IOMMU reports no room for DMA")
        self._used: dict[int, int] = {}  # iova -> size

    def alloc(self, size: int, align: int = PAGE) -> int:
        size = _round_up(size, PAGE)
        if size <= 0:
            raise VfioError(f"IOVA allocation of {size} bytes: the size must be positive")
        for i, (start, end) in enumerate(self._free):
            iova = _round_up(start, align)
            if iova + size <= end:
                self._take(i, iova, size)
                return iova
        raise VfioError(f"IOVA space exhausted: no free {size:#x}-byte range below "
                        f"{self.limit:#x} ({len(self._used)} mappings live); unmap buffers "
                        "you no longer need or map fewer, larger ones")

    def reserve(self, iova: int, size: int) -> None:
        """Claim exactly [iova, iova + size) (page aligned), e.g. for the heap arena."""
        if iova % PAGE or size % PAGE or size <= 0:
            raise VfioError(f"reserve({iova:#x}, {size:#x}): IOVA and size must be 4 KiB multiples")
        for i, (start, end) in enumerate(self._free):
            if start <= iova and iova + size <= end:
                self._take(i, iova, size)
                return
        raise VfioError(f"IOVA range {iova:#x}-{iova + size - 1:#x} is not free inside the "
                        f"IOMMU's windows below {self.limit:#x}: it overlaps a mapping, a "
                        "reserved window, or exceeds the IOMMU's address width (boot the "
                        "kernel with a heap whose IOVA range fits, e.g. a smaller heap_bytes)")

    def _take(self, i: int, iova: int, size: int) -> None:
        start, end = self._free.pop(i)
        pieces = [(start, iova), (iova + size, end)]
        self._free[i:i] = [p for p in pieces if p[1] > p[0]]
        self._used[iova] = size

    def free(self, iova: int) -> None:
        size = self._used.pop(iova, None)
        if size is None:
            raise VfioError(f"IOVA {iova:#x} was not allocated here")
        self._free.append((iova, iova + size))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for start, end in self._free:
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._free = merged

    def allocated(self) -> dict[int, int]:
        """Live ranges: iova -> size."""
        return dict(self._used)

    def free_bytes(self) -> int:
        return sum(end - start for start, end in self._free)
