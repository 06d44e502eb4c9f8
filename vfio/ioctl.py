"""VFIO ioctl numbers, flags and argument structures (Linux include/uapi/linux/vfio.h).

Purpose: the only place that knows the kernel's binary interface. Every VFIO ioctl is
`_IO(VFIO_TYPE, VFIO_BASE + n)` with VFIO_TYPE = ';' (0x3B) and VFIO_BASE = 100, i.e. no
direction and no size bits (asm-generic/ioctl.h: nr in bits 7:0, type in 15:8), so the
numbers are 0x3B64 + n; the argument's size travels in its own `argsz` field instead.
The structures are ctypes mirrors of the header's (natural alignment, no packing), and
`call(fd, request, struct)` runs an ioctl on a mutable structure in place.
tests/vfio/test_vfio_host.py compiles a C file against <linux/vfio.h> and checks every
number and structure size here against the kernel's own.
"""

from __future__ import annotations

import ctypes
import fcntl
from typing import Final, TypeVar

# asm-generic/ioctl.h: _IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE: Final[int] = 0


def _IO(kind: int, nr: int) -> int:  # the kernel macro
    return (_IOC_NONE << _IOC_DIRSHIFT) | (kind << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (0 << _IOC_SIZESHIFT)


VFIO_TYPE: Final[int] = ord(";")
VFIO_BASE: Final[int] = 100

VFIO_API_VERSION: Final[int] = 0
VFIO_TYPE1_IOMMU: Final[int] = 1
VFIO_TYPE1v2_IOMMU: Final[int] = 3
VFIO_NOIOMMU_IOMMU: Final[int] = 8

# container (/dev/vfio/vfio)
VFIO_GET_API_VERSION: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 0)
VFIO_CHECK_EXTENSION: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 1)
VFIO_SET_IOMMU: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 2)
# group (/dev/vfio/N)
VFIO_GROUP_GET_STATUS: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 3)
VFIO_GROUP_SET_CONTAINER: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 4)
VFIO_GROUP_UNSET_CONTAINER: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 5)
VFIO_GROUP_GET_DEVICE_FD: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 6)
# device
VFIO_DEVICE_GET_INFO: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 7)
VFIO_DEVICE_GET_REGION_INFO: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 8)
VFIO_DEVICE_GET_IRQ_INFO: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 9)
VFIO_DEVICE_SET_IRQS: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 10)
VFIO_DEVICE_RESET: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 11)
# type1 IOMMU (on the container, after VFIO_SET_IOMMU)
VFIO_IOMMU_GET_INFO: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 12)
VFIO_IOMMU_MAP_DMA: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 13)
VFIO_IOMMU_UNMAP_DMA: Final[int] = _IO(VFIO_TYPE, VFIO_BASE + 14)

VFIO_GROUP_FLAGS_VIABLE: Final[int] = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET: Final[int] = 1 << 1
VFIO_DEVICE_FLAGS_RESET: Final[int] = 1 << 0
VFIO_DEVICE_FLAGS_PCI: Final[int] = 1 << 1
VFIO_REGION_INFO_FLAG_READ: Final[int] = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE: Final[int] = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP: Final[int] = 1 << 2
VFIO_REGION_INFO_FLAG_CAPS: Final[int] = 1 << 3
VFIO_DMA_MAP_FLAG_READ: Final[int] = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE: Final[int] = 1 << 1
VFIO_IOMMU_INFO_PGSIZES: Final[int] = 1 << 0
VFIO_IOMMU_INFO_CAPS: Final[int] = 1 << 1
VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: Final[int] = 1

# vfio-pci fixed region indexes (enum VFIO_PCI_*_REGION_INDEX)
VFIO_PCI_BAR0_REGION_INDEX: Final[int] = 0
VFIO_PCI_ROM_REGION_INDEX: Final[int] = 6
VFIO_PCI_CONFIG_REGION_INDEX: Final[int] = 7
VFIO_PCI_NUM_REGIONS: Final[int] = 9

# PCI configuration space (PCI Local Bus 3.0 §6.2): command register and its bits
PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_COMMAND, PCI_CLASS_REVISION = 0x00, 0x02, 0x04, 0x08
PCI_COMMAND_MEMORY, PCI_COMMAND_MASTER, PCI_COMMAND_INTX_DISABLE = 0x2, 0x4, 0x400


class GroupStatus(ctypes.Structure):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class DeviceInfo(ctypes.Structure):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("num_regions", ctypes.c_uint32), ("num_irqs", ctypes.c_uint32),
                ("cap_offset", ctypes.c_uint32)]


class RegionInfo(ctypes.Structure):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("index", ctypes.c_uint32), ("cap_offset", ctypes.c_uint32),
                ("size", ctypes.c_uint64), ("offset", ctypes.c_uint64)]


class DmaMap(ctypes.Structure):  # struct vfio_iommu_type1_dma_map
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("vaddr", ctypes.c_uint64), ("iova", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class DmaUnmap(ctypes.Structure):  # struct vfio_iommu_type1_dma_unmap (without data[])
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("iova", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class IommuInfo(ctypes.Structure):  # struct vfio_iommu_type1_info
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("iova_pgsizes", ctypes.c_uint64), ("cap_offset", ctypes.c_uint32),
                ("pad", ctypes.c_uint32)]


class InfoCapHeader(ctypes.Structure):  # struct vfio_info_cap_header
    _fields_ = [("id", ctypes.c_uint16), ("version", ctypes.c_uint16), ("next", ctypes.c_uint32)]


class IovaRange(ctypes.Structure):  # struct vfio_iova_range
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64)]


S = TypeVar("S", bound=ctypes.Structure)


def new(struct_type: type[S], **fields: int) -> S:
    """A zeroed structure with `argsz` set to its size, as every VFIO call expects."""
    value = struct_type(**fields)
    if any(field[0] == "argsz" for field in struct_type._fields_):
        setattr(value, "argsz", ctypes.sizeof(struct_type))
    return value


def call(fd: int, request: int, arg: ctypes.Structure | ctypes.c_int32) -> int:
    """ioctl(fd, request, &arg), the kernel filling `arg` in place; returns the result."""
    return int(fcntl.ioctl(fd, request, arg, True))
