"""Host-side tests of the VFIO layer and the guest builder: the parts that need no guest.

ioctl numbers and structure sizes against the kernel's own <linux/vfio.h> (compiled with
gcc when both are present), the IOVA allocator's bounds (39 bits, the IOMMU's windows,
exhaustion, reserve/free), clear errors for a bogus or missing BDF, a missing
/dev/vfio, an IOMMU that is off, a heap too large to pin, unknown device specs; and the
guest builder's cpio writer, module ordering, accelerator choice and QEMU command line.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from redleaf_lab.vfio import container, ioctl, pci
from redleaf_lab.vfio.backend import VfioDevice
from redleaf_lab.vfio.device import VfioPci
from redleaf_lab.vfio.errors import VfioError
from redleaf_lab.vfio.iova import IovaAllocator

from images import cpio, guest
from redleaf_lab._core.heap import CoreHeap

HEADER = Path("/usr/include/linux/vfio.h")
NAMES = ["VFIO_GET_API_VERSION", "VFIO_CHECK_EXTENSION", "VFIO_SET_IOMMU",
         "VFIO_GROUP_GET_STATUS", "VFIO_GROUP_SET_CONTAINER", "VFIO_GROUP_UNSET_CONTAINER",
         "VFIO_GROUP_GET_DEVICE_FD", "VFIO_DEVICE_GET_INFO", "VFIO_DEVICE_GET_REGION_INFO",
         "VFIO_DEVICE_GET_IRQ_INFO", "VFIO_DEVICE_SET_IRQS", "VFIO_DEVICE_RESET",
         "VFIO_IOMMU_GET_INFO", "VFIO_IOMMU_MAP_DMA", "VFIO_IOMMU_UNMAP_DMA",
         "VFIO_TYPE1_IOMMU", "VFIO_TYPE1v2_IOMMU", "VFIO_NOIOMMU_IOMMU",
         "VFIO_PCI_CONFIG_REGION_INDEX", "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE"]
STRUCTS = {"GroupStatus": "vfio_group_status", "DeviceInfo": "vfio_device_info",
           "RegionInfo": "vfio_region_info", "DmaMap": "vfio_iommu_type1_dma_map",
           "DmaUnmap": "vfio_iommu_type1_dma_unmap", "IommuInfo": "vfio_iommu_type1_info",
           "InfoCapHeader": "vfio_info_cap_header", "IovaRange": "vfio_iova_range"}


def test_ioctl_numbers_follow_the_io_macro() -> None:
    # _IO(';', 100 + n) = 0x3B64 + n: the values in the kernel's header
    assert ioctl.VFIO_GET_API_VERSION == 0x3B64
    assert ioctl.VFIO_GROUP_GET_DEVICE_FD == 0x3B6A
    assert ioctl.VFIO_DEVICE_GET_REGION_INFO == 0x3B6C
    assert ioctl.VFIO_DEVICE_RESET == 0x3B6F
    assert (ioctl.VFIO_IOMMU_MAP_DMA, ioctl.VFIO_IOMMU_UNMAP_DMA) == (0x3B71, 0x3B72)


@pytest.mark.skipif(not HEADER.exists() or shutil.which("gcc") is None,
                    reason="needs gcc and <linux/vfio.h> (linux-libc-dev)")
def test_ioctl_numbers_and_struct_sizes_match_the_kernel_header(tmp_path: Path) -> None:
    body = "".join(f'printf("{n} %lu\\n", (unsigned long)({n}));\n' for n in NAMES)
    body += "".join(f'printf("{py} %zu\\n", sizeof(struct {c}));\n' for py, c in STRUCTS.items())
    src = tmp_path / "numbers.c"
    src.write_text(f"#include <stdio.h>\n#include <linux/vfio.h>\nint main(void) {{\n{body}return 0;\n}}\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "numbers"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "numbers")], capture_output=True, text=True, check=True)
    kernel = {k: int(v) for k, v in (line.split() for line in out.stdout.splitlines())}
    for name in NAMES:
        assert getattr(ioctl, name) == kernel[name], name
    import ctypes

    for py in STRUCTS:
        assert ctypes.sizeof(getattr(ioctl, py)) == kernel[py], py


# -- IOVA allocator ----------------------------------------------------------------------------
def test_iova_allocator_stays_inside_39_bits_and_the_windows() -> None:
    windows = [(0, 0xFEDFFFFF), (0xFEF00000, (1 << 48) - 1)]  # as QEMU's VT-d reports
    alloc = IovaAllocator(windows)
    assert alloc.limit == 1 << 39
    got = [alloc.alloc(1 << 30) for _ in range(40)]
    assert all(a >= 0x10_0000 and a + (1 << 30) <= 1 << 39 for a in got)
    assert not any(a < 0xFEF00000 and a + (1 << 30) > 0xFEE00000 for a in got)  # MSI window
    with pytest.raises(VfioError, match="IOVA space exhausted"):
        for _ in range(1 << 10):
            alloc.alloc(1 << 30)


def test_iova_reserve_free_and_coalesce() -> None:
    alloc = IovaAllocator()
    alloc.reserve(0x1_0000_0000, 64 << 20)  # the heap arena at its IOVA base
    with pytest.raises(VfioError, match="not free"):
        alloc.reserve(0x1_0000_0000 + 4096, 4096)
    with pytest.raises(VfioError, match="address width"):
        alloc.reserve((1 << 39) - 4096, 8192)
    free0 = alloc.free_bytes()
    a, b = alloc.alloc(4096), alloc.alloc(3 * 4096)
    assert a % 4096 == 0 and b == a + 4096
    alloc.free(a)
    alloc.free(b)
    assert alloc.free_bytes() == free0 and alloc.alloc(4 * 4096) == a  # coalesced
    with pytest.raises(VfioError, match="not allocated"):
        alloc.free(12345 * 4096)


# -- clear errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "04:00", "0000:04:00.8", "zz:00.0", "0000:4:00.0"])
def test_malformed_bdf(text: str) -> None:
    with pytest.raises(VfioError, match="malformed PCI address"):
        pci.parse_bdf(text)


def test_bdf_normalized() -> None:
    assert pci.parse_bdf("04:00.0") == "0000:04:00.0"
    assert pci.parse_bdf(" 0000:0A:1F.7 ") == "0000:0a:1f.7"


@pytest.fixture
def fake_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dev = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:00:04.0"
    dev.mkdir(parents=True)
    for attr, value in (("class", "0x010802"), ("vendor", "0x1b36"), ("device", "0x0010")):
        (dev / attr).write_text(value + "\n")
    monkeypatch.setattr(pci, "SYSFS", tmp_path / "sys")
    monkeypatch.setattr(container, "DEV_VFIO", tmp_path / "dev" / "vfio")
    return dev


def test_missing_bdf_is_named(fake_sysfs: Path) -> None:
    with pytest.raises(VfioError, match=r"no PCI device 0000:00:05.0.*present: 0000:00:04.0"):
        VfioPci("00:05.0")


def test_missing_dev_vfio_says_no_vfio_or_iommu(fake_sysfs: Path) -> None:
    with pytest.raises(VfioError, match=r"dev/vfio/vfio does not exist.*intel_iommu=on"):
        VfioPci("0000:00:04.0")
    with pytest.raises(VfioError, match=r"VFIO is not available.*modprobe vfio-pci"):
        container.Container()


def test_no_iommu_group_says_the_iommu_is_off(fake_sysfs: Path, tmp_path: Path) -> None:
    (tmp_path / "dev" / "vfio").mkdir(parents=True)
    (tmp_path / "dev" / "vfio" / "vfio").touch()
    with pytest.raises(VfioError, match="no IOMMU group: the IOMMU is off"):
        VfioPci("0000:00:04.0")
    assert pci.status("0000:00:04.0").group is None


def test_not_bound_to_vfio_pci(fake_sysfs: Path, tmp_path: Path) -> None:
    (tmp_path / "dev" / "vfio").mkdir(parents=True)
    (tmp_path / "dev" / "vfio" / "vfio").touch()
    groups = tmp_path / "sys" / "kernel" / "iommu_groups" / "3"
    groups.mkdir(parents=True)
    (fake_sysfs / "iommu_group").symlink_to(groups)
    with pytest.raises(VfioError, match=r"bound to no driver, not vfio-pci.*vfio bind 0000:00:04.0"):
        VfioPci("0000:00:04.0")
    with pytest.raises(VfioError, match="vfio-pci driver is not loaded"):
        pci.bind_vfio("0000:00:04.0")


def test_permission_denied_and_busy_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    def denied(*args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    def busy(*args: object) -> int:
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(VfioError, match=r"permission denied opening /dev/vfio/7: run as root.*chown"):
        container._open(Path("/dev/vfio/7"), "x")
    monkeypatch.setattr(os, "open", busy)
    with pytest.raises(VfioError, match=r"/dev/vfio/7 is busy: another process"):
        container._open(Path("/dev/vfio/7"), "x")


def test_heap_too_large_to_pin() -> None:
    heap = CoreHeap(arena_bytes=1 << 30, max_objects=1024)
    with pytest.raises(VfioError, match=r"pins all of it.*heap_bytes=64 << 20"):
        VfioDevice("0000:00:04.0", heap)


def test_device_specs() -> None:
    import redleaf_lab
    from redleaf_lab.devices.select import open_nvme
    from redleaf_lab.devices.sim_nvme import SimNvme

    kernel = redleaf_lab.boot(heap_bytes=16 << 20, max_objects=1024)
    try:
        with pytest.raises(ValueError, match="unknown NVMe device spec 'bogus'"):
            open_nvme(kernel, "bogus")
        with pytest.raises(VfioError, match="malformed PCI address"):
            open_nvme(kernel, "vfio:zz")
        dev = open_nvme(kernel, "sim", blocks=64)
        assert isinstance(dev, SimNvme)
        dev.close()
    finally:
        kernel.shutdown()


# -- guest builder -----------------------------------------------------------------------------
def test_cpio_newc_layout() -> None:
    archive = cpio.Archive()
    archive.directory("bin")
    archive.char_device("dev/console", 5, 1)
    archive.file("init", b"#!/bin/sh\n", 0o755)
    data = archive.finish()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert data.endswith(b"TRAILER!!!\0" + b"\0" * (-(110 + 11) % 4))
    entry = data[data.index(b"070701", 6) :]  # dev/console: c 5:1 in rdevmajor/rdevminor
    assert int(entry[6 + 8 : 14 + 8], 16) & 0o170000 == 0o020000
    assert (int(entry[78:86], 16), int(entry[86:94], 16)) == (5, 1)
    gzip.compress(data)


def test_modules_are_ordered_by_their_depends(tmp_path: Path) -> None:
    for name, deps in (("a", "b,c-d"), ("b", "c_d"), ("c-d", "")):
        (tmp_path / f"{name}.ko").write_bytes(b"\x7fELF\0license=GPL\0depends=" + deps.encode() + b"\0")
    order = [p.name for p in guest.resolve_modules(tmp_path, ["a"])]
    assert order == ["c-d.ko", "b.ko", "a.ko"]
    with pytest.raises(guest.GuestError, match="module nope not found"):
        guest.resolve_modules(tmp_path, ["nope"])


def test_accel_choice_and_qemu_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDLEAF_QEMU_ACCEL", "tcg")
    assert guest.choose_accel() == "tcg"
    monkeypatch.delenv("REDLEAF_QEMU_ACCEL")
    if "vmx" not in Path("/proc/cpuinfo").read_text() and "svm" not in Path("/proc/cpuinfo").read_text():
        assert guest.choose_accel() == "tcg"  # a /dev/kvm without VT-x/AMD-V is not used
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed")
    image = guest.GuestImage("v", tmp_path / "k", tmp_path / "i")
    disks = [(tmp_path / "d0", 512), (tmp_path / "d1", 4096)]
    argv = " ".join(guest.qemu_command(image, tmp_path, disks, "echo hi", "tcg"))
    assert "intel-iommu,intremap=on,caching-mode=on" in argv and "-device e1000e" in argv
    assert "accel=tcg" in argv
    # QEMU's default 512-byte format first (no option), then a 4 KiB namespace
    assert f"file={tmp_path}/d0,if=none,id=nvm0" in argv
    assert "nvme,serial=rllab-lba512,drive=nvm0 " in argv
    assert "nvme,serial=rllab-lba4096,drive=nvm1,logical_block_size=4096" in argv
    with pytest.raises(guest.GuestError, match="NVMe logical block size 520"):
        guest.qemu_command(image, tmp_path, [(tmp_path / "d", 520)], "echo hi", "tcg")
    with pytest.raises(guest.GuestError, match="command too long"):
        guest.qemu_command(image, tmp_path, disks, "x" * 3000, "tcg")


def test_cli_vfio_errors_are_one_line_reasons(capsys: pytest.CaptureFixture[str],
                                             fake_sysfs: Path) -> None:
    from redleaf_lab.cli import main

    assert main(["vfio", "status", "zz"]) == 1
    assert "malformed PCI address 'zz'" in capsys.readouterr().err
    assert main(["vfio", "bind"]) == 1
    assert "needs a PCI address" in capsys.readouterr().err
    assert main(["vfio", "status", "00:04.0"]) == 0
    out = capsys.readouterr().out
    assert "1b36:0010 class 010802" in out and "IOMMU off" in out
    assert main(["vfio", "list"]) == 0 and "0000:00:04.0" in capsys.readouterr().out
