"""VfioPci: one PCI function through VFIO: regions, BAR mmap, config space, reset.

Purpose: opens the function the way the kernel requires (vfio/container.py: container,
viable group, IOMMU model), then gets the device fd (VFIO_GROUP_GET_DEVICE_FD) and
its info (VFIO_DEVICE_GET_INFO: flags RESET/PCI, number of regions). Every region is
at an offset of the device fd that VFIO_DEVICE_GET_REGION_INFO reports:
* BARs (regions 0-5) with the MMAP flag are mmap'ed (`map_bar`); a numpy or
  memoryview("I"/"Q") view gives single aligned 32/64-bit loads and stores (x86 MMIO);
* the config space (region 7) is read and written with pread/pwrite (`config_read`,
  `config_write`); `bus_master(on)` flips PCI_COMMAND bit 2 (PCI 3.0 §6.2.2), the only
  switch that lets the function issue DMA, and keeps memory decoding (bit 1) on;
* `reset()` is VFIO_DEVICE_RESET (a function-level or bus reset chosen by the kernel,
  which saves and restores the config space around it), when the device flags allow.

`close()` unmaps the BARs (refusing, with a clear error, while views of them are still
alive), closes the device fd, and closes the container (which unmaps all DMA). The
object owns everything it opened; one thread at a time.
"""

from __future__ import annotations

import fcntl
import mmap
import os

from . import container as ctr
from . import ioctl as io
from . import pci
from .container import Container, Group
from .errors import VfioError


class VfioPci:
    def __init__(self, bdf: str) -> None:
        self.bdf = pci.parse_bdf(bdf)
        pci.device_dir(self.bdf)  # clear error for a missing device
        if not (ctr.DEV_VFIO / "vfio").exists():
            raise VfioError(f"{ctr.DEV_VFIO / 'vfio'} does not exist: no VFIO (and probably no IOMMU). "
                            "Boot with intel_iommu=on (or amd_iommu=on) iommu=pt, then "
                            "`modprobe vfio-pci`; see vfio/README.md")
        number = pci.iommu_group(self.bdf)
        bound = pci.driver(self.bdf)
        if bound != "vfio-pci":
            raise VfioError(f"{self.bdf} is bound to {bound or 'no driver'}, not vfio-pci: run "
                            f"`redleaf-lab vfio bind {self.bdf}` (as root) first")
        self.container = Container()
        self.fd = -1
        self._bars: dict[int, mmap.mmap] = {}
        try:
            self.group = Group(number)
            self.container.add_group(self.group)
            self.fd = self.group.device_fd(self.bdf)
            info = io.new(io.DeviceInfo)
            io.call(self.fd, io.VFIO_DEVICE_GET_INFO, info)
            self.flags: int = info.flags
            self.num_regions: int = info.num_regions
            if not self.flags & io.VFIO_DEVICE_FLAGS_PCI:
                raise VfioError(f"{self.bdf} is not a PCI device for VFIO (flags {self.flags:#x})")
            self._config = self.region(io.VFIO_PCI_CONFIG_REGION_INDEX)
        except BaseException:
            self.close()
            raise

    @property
    def can_reset(self) -> bool:
        return bool(self.flags & io.VFIO_DEVICE_FLAGS_RESET)

    def region(self, index: int) -> io.RegionInfo:
        if not 0 <= index < self.num_regions:
            raise VfioError(f"{self.bdf} has no region {index} (it has {self.num_regions})")
        info = io.new(io.RegionInfo, index=index)
        try:
            io.call(self.fd, io.VFIO_DEVICE_GET_REGION_INFO, info)
        except OSError as exc:
            raise VfioError(f"VFIO_DEVICE_GET_REGION_INFO({index}) on {self.bdf}: {exc}",
                            exc.errno) from None
        return info

    # -- BARs -------------------------------------------------------------------------------
    def map_bar(self, index: int = 0) -> mmap.mmap:
        """The BAR mmap'ed read/write (cached per index)."""
        if index in self._bars:
            return self._bars[index]
        if not 0 <= index <= 5:
            raise VfioError(f"BAR index must be 0..5, got {index}")
        info = self.region(index)
        size, flags = info.size, info.flags
        if size == 0:
            raise VfioError(f"{self.bdf} has no BAR{index} (size 0)")
        if not flags & io.VFIO_REGION_INFO_FLAG_MMAP:
            raise VfioError(f"BAR{index} of {self.bdf} cannot be mmap'ed (flags {flags:#x}: an "
                            "I/O-port BAR, or MMIO the kernel must trap)")
        try:
            bar = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                            offset=info.offset)
        except OSError as exc:
            raise VfioError(f"mmap of BAR{index} ({size:#x} bytes) of {self.bdf} failed: {exc}",
                            exc.errno) from None
        self._bars[index] = bar
        return bar

    # -- config space -----------------------------------------------------------------------
    def config_read(self, offset: int, size: int) -> int:
        data = os.pread(self.fd, size, self._config.offset + offset)
        if len(data) != size:
            raise VfioError(f"config read of {size} bytes at {offset:#x} on {self.bdf} was short")
        return int.from_bytes(data, "little")

    def config_write(self, offset: int, size: int, value: int) -> None:
        done = os.pwrite(self.fd, value.to_bytes(size, "little"),
                         self._config.offset + offset)
        if done != size:
            raise VfioError(f"config write of {size} bytes at {offset:#x} on {self.bdf} was short")

    def bus_master(self, on: bool) -> None:
        """PCI_COMMAND.BME (bit 2): may the function issue DMA. Memory space stays on."""
        cmd = self.config_read(io.PCI_COMMAND, 2)
        cmd = (cmd | io.PCI_COMMAND_MASTER | io.PCI_COMMAND_MEMORY) if on \
            else (cmd & ~io.PCI_COMMAND_MASTER) | io.PCI_COMMAND_MEMORY
        self.config_write(io.PCI_COMMAND, 2, cmd)

    def bus_master_enabled(self) -> bool:
        return bool(self.config_read(io.PCI_COMMAND, 2) & io.PCI_COMMAND_MASTER)

    def ids(self) -> tuple[int, int, int]:
        """(vendor, device, class code) from the config space."""
        return (self.config_read(io.PCI_VENDOR_ID, 2), self.config_read(io.PCI_DEVICE_ID, 2),
                self.config_read(io.PCI_CLASS_REVISION, 4) >> 8)

    def reset(self) -> bool:
        """VFIO_DEVICE_RESET; False when the device offers no reset."""
        if not self.can_reset:
            return False
        try:
            fcntl.ioctl(self.fd, io.VFIO_DEVICE_RESET)
        except OSError as exc:
            raise VfioError(f"VFIO_DEVICE_RESET of {self.bdf} failed: {exc}", exc.errno) from None
        return True

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.fd < 0 and self.container.closed

    def close(self) -> None:
        """Unmap BARs, close the device fd, the group and the container (all DMA unmapped)."""
        busy = []
        for index, bar in list(self._bars.items()):
            try:
                bar.close()
                del self._bars[index]
            except BufferError:
                busy.append(index)
        if busy:
            raise VfioError(f"cannot unmap BAR{busy} of {self.bdf}: views of it are still alive "
                            "(drop every numpy array or memoryview of the BAR first)")
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.container.close()
