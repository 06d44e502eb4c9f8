"""VFIO container and group: the IOMMU context and the unit of isolation.

Purpose: the order the kernel requires (Documentation/driver-api/vfio.rst, "VFIO Usage
Example"): open /dev/vfio/vfio (the container); check VFIO_GET_API_VERSION ==
VFIO_API_VERSION and VFIO_CHECK_EXTENSION(TYPE1v2 or TYPE1); open /dev/vfio/<group>,
check VFIO_GROUP_GET_STATUS says VIABLE (every device of the group is bound to vfio-pci
or to no driver); VFIO_GROUP_SET_CONTAINER; then, once, VFIO_SET_IOMMU (MAP_DMA before
it fails with EINVAL); then VFIO_IOMMU_GET_INFO gives the usable IOVA windows, which
bound the `IovaAllocator`. `map_dma(vaddr, size, iova=None)` pins the pages and maps
them at an IOVA (allocated, or fixed, as for the shared-heap arena); `unmap_dma` and
`close()` undo everything: unmap every mapping, unset the container of every group,
close the fds.

Errors: `VfioError` with the cause and the fix (no VFIO, no IOMMU, permission denied,
device not bound, group not viable, group busy, RLIMIT_MEMLOCK too small ...).
Ownership: a Container owns its groups and mappings; one thread at a time.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from pathlib import Path

from . import ioctl as io
from .errors import VfioError
from .iova import VTD_ADDRESS_BITS, IovaAllocator

DEV_VFIO = Path("/dev/vfio")


def _open(path: Path, what: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        if not DEV_VFIO.exists() or not (DEV_VFIO / "vfio").exists():
            raise VfioError(f"{path} does not exist: VFIO is not available. Load it with "
                            "`modprobe vfio-pci`, and make sure an IOMMU is on (firmware "
                            "VT-d/AMD-Vi, kernel intel_iommu=on or amd_iommu=on)",
                            errno.ENOENT) from None
        raise VfioError(f"{path} does not exist: {what} is not bound to vfio-pci. Run "
                        "`redleaf-lab vfio bind BDF` (as root)", errno.ENOENT) from None
    except PermissionError:
        raise VfioError(f"permission denied opening {path}: run as root, or give your user "
                        f"the node (`chown $USER {path}`) and raise the locked-memory limit "
                        "(`ulimit -l`), see vfio/README.md", errno.EACCES) from None
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise VfioError(f"{path} is busy: another process (or another Container in this "
                            "one) already holds this IOMMU group; close it first",
                            exc.errno) from None
        raise VfioError(f"cannot open {path}: {exc}", exc.errno) from None


class Group:
    """/dev/vfio/<number>: checked viable at open."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.path = DEV_VFIO / str(number)
        self.fd = _open(self.path, f"no device of IOMMU group {number}")
        self.container: Container | None = None
        status = io.new(io.GroupStatus)
        try:
            io.call(self.fd, io.VFIO_GROUP_GET_STATUS, status)
        except OSError as exc:
            os.close(self.fd)
            raise VfioError(f"VFIO_GROUP_GET_STATUS on {self.path} failed: {exc}", exc.errno) from None
        if not status.flags & io.VFIO_GROUP_FLAGS_VIABLE:
            os.close(self.fd)
            from .pci import group_devices

            raise VfioError(f"IOMMU group {number} is not viable: every device in it "
                            f"({', '.join(group_devices(number)) or '?'}) must be bound to "
                            "vfio-pci or to no driver. Bind or unbind the others too "
                            "(`redleaf-lab vfio bind BDF` for each)")

    def device_fd(self, bdf: str) -> int:
        """VFIO_GROUP_GET_DEVICE_FD (the name in a bytearray, else the fd is lost)."""
        name = bytearray(bdf.encode() + b"\0")
        try:
            return int(fcntl.ioctl(self.fd, io.VFIO_GROUP_GET_DEVICE_FD, name, True))
        except OSError as exc:
            raise VfioError(f"cannot get {bdf} from IOMMU group {self.number}: {exc} (is "
                            f"{bdf} in this group and bound to vfio-pci? is it already open?)",
                            exc.errno) from None

    def close(self) -> None:
        if self.fd < 0:
            return
        if self.container is not None:
            try:
                fcntl.ioctl(self.fd, io.VFIO_GROUP_UNSET_CONTAINER)
            except OSError:
                pass  # closing the fd releases it too
            self.container = None
        os.close(self.fd)
        self.fd = -1


class Container:
    """/dev/vfio/vfio plus its groups and DMA mappings; see the module docstring."""

    def __init__(self, address_bits: int = VTD_ADDRESS_BITS) -> None:
        self.fd = _open(DEV_VFIO / "vfio", "VFIO")
        self.address_bits = address_bits
        self.groups: list[Group] = []
        self.iommu_type: int | None = None
        self.iova: IovaAllocator | None = None
        self.windows: list[tuple[int, int]] = []
        self.page_sizes = 0
        self._maps: dict[int, tuple[int, int]] = {}  # iova -> (vaddr, size)
        try:
            version = fcntl.ioctl(self.fd, io.VFIO_GET_API_VERSION)
            if version != io.VFIO_API_VERSION:
                raise VfioError(f"unknown VFIO API version {version} (this code speaks "
                                f"{io.VFIO_API_VERSION})")
            for kind in (io.VFIO_TYPE1v2_IOMMU, io.VFIO_TYPE1_IOMMU):
                if fcntl.ioctl(self.fd, io.VFIO_CHECK_EXTENSION, kind) > 0:
                    self.iommu_type = kind
                    break
            else:
                raise VfioError("VFIO has no type1 IOMMU backend: load vfio_iommu_type1, and "
                                "check that the IOMMU is on (dmesg | grep -e DMAR -e AMD-Vi)")
        except BaseException:
            os.close(self.fd)
            raise

    def check_extension(self, kind: int) -> bool:
        return fcntl.ioctl(self.fd, io.VFIO_CHECK_EXTENSION, kind) > 0

    def add_group(self, group: Group) -> None:
        """Attach a viable group; the first one selects the IOMMU model."""
        cfd = ctypes.c_int32(self.fd)
        try:
            io.call(group.fd, io.VFIO_GROUP_SET_CONTAINER, cfd)
        except OSError as exc:
            raise VfioError(f"VFIO_GROUP_SET_CONTAINER for group {group.number} failed: {exc}",
                            exc.errno) from None
        group.container = self
        self.groups.append(group)
        if len(self.groups) == 1:
            try:
                fcntl.ioctl(self.fd, io.VFIO_SET_IOMMU, self.iommu_type or io.VFIO_TYPE1_IOMMU)
            except OSError as exc:
                raise VfioError(f"VFIO_SET_IOMMU(type {self.iommu_type}) failed: {exc}",
                                exc.errno) from None
            self._read_iommu_info()

    def _read_iommu_info(self) -> None:
        """Page sizes and the valid IOVA windows (capability chain after the struct)."""
        info = io.new(io.IommuInfo)
        io.call(self.fd, io.VFIO_IOMMU_GET_INFO, info)
        size = max(info.argsz, ctypes.sizeof(io.IommuInfo))
        raw = bytearray(size)
        head = io.IommuInfo.from_buffer(raw)
        head.argsz = size
        del head
        fcntl.ioctl(self.fd, io.VFIO_IOMMU_GET_INFO, raw, True)
        info = io.IommuInfo.from_buffer_copy(raw)
        self.page_sizes = info.iova_pgsizes
        offset = info.cap_offset if info.flags & io.VFIO_IOMMU_INFO_CAPS else 0
        while offset:
            cap = io.InfoCapHeader.from_buffer_copy(raw, offset)
            if cap.id == io.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
                count = int.from_bytes(raw[offset + 8 : offset + 12], "little")
                for i in range(count):
                    rng = io.IovaRange.from_buffer_copy(raw, offset + 16 + 16 * i)
                    self.windows.append((rng.start, rng.end))
            offset = cap.next
        self.iova = IovaAllocator(self.windows or None, self.address_bits)

    # -- DMA mappings ---------------------------------------------------------------------
    def map_dma(self, vaddr: int, size: int, iova: int | None = None) -> int:
        """Pin [vaddr, vaddr + size) and map it for device reads and writes at `iova`
        (allocated below 2^address_bits when None); returns the IOVA."""
        if self.iova is None:
            raise VfioError("map_dma before any group joined the container (VFIO_SET_IOMMU "
                            "comes after VFIO_GROUP_SET_CONTAINER; MAP_DMA before it is EINVAL)")
        if vaddr % 4096 or size % 4096 or size <= 0:
            raise VfioError(f"map_dma({vaddr:#x}, {size:#x}): address and size must be 4 KiB multiples")
        if iova is None:
            iova = self.iova.alloc(size)
        else:
            self.iova.reserve(iova, size)
        arg = io.new(io.DmaMap, flags=io.VFIO_DMA_MAP_FLAG_READ | io.VFIO_DMA_MAP_FLAG_WRITE,
                     vaddr=vaddr, iova=iova, size=size)
        try:
            io.call(self.fd, io.VFIO_IOMMU_MAP_DMA, arg)
        except OSError as exc:
            self.iova.free(iova)
            hint = {errno.ENOMEM: "the locked-memory limit (ulimit -l / RLIMIT_MEMLOCK) or "
                                  "the type1 dma_entry_limit is too small, or RAM is short",
                    errno.EINVAL: "the IOVA is outside the IOMMU's range or overlaps a mapping",
                    errno.EEXIST: "the IOVA range is already mapped"}.get(exc.errno or 0, "see dmesg")
            raise VfioError(f"VFIO_IOMMU_MAP_DMA of {size:#x} bytes at IOVA {iova:#x} failed: "
                            f"{exc.strerror}: {hint}", exc.errno) from None
        self._maps[iova] = (vaddr, size)
        return iova

    def unmap_dma(self, iova: int) -> None:
        if iova not in self._maps:
            raise VfioError(f"unmap_dma: nothing is mapped at IOVA {iova:#x}")
        _vaddr, size = self._maps.pop(iova)
        arg = io.new(io.DmaUnmap, iova=iova, size=size)
        try:
            io.call(self.fd, io.VFIO_IOMMU_UNMAP_DMA, arg)
        except OSError as exc:
            raise VfioError(f"VFIO_IOMMU_UNMAP_DMA at {iova:#x} failed: {exc}", exc.errno) from None
        finally:
            if self.iova is not None:
                self.iova.free(iova)

    def mappings(self) -> dict[int, tuple[int, int]]:
        """Live DMA mappings: iova -> (vaddr, size)."""
        return dict(self._maps)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        """Unmap everything, detach and close every group, close the container."""
        if self.fd < 0:
            return
        errors = []
        for iova in list(self._maps):
            try:
                self.unmap_dma(iova)
            except VfioError as exc:
                errors.append(str(exc))
        for group in self.groups:
            group.close()
        self.groups.clear()
        os.close(self.fd)
        self.fd = -1
        if errors:
            raise VfioError("closing the container: " + "; ".join(errors))
