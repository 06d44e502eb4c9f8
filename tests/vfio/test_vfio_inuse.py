"""`redleaf-lab vfio bind` refuses a function the host is using; `vfio status` explains the
IOMMU and lists every candidate (issue 12, item 4).

Everything runs against a fake sysfs/procfs tree (`--root`), so the tests are
deterministic and never touch a real device. The tree has, like a real host:
* 0000:00:04.0, the boot disk's NVMe controller: / on nvme0n1p2 (mountinfo and mounts),
  swap on nvme0n1p1, /home on an LVM volume (dm-0) built on nvme0n1p3 (mounts only);
* 0000:00:05.0, a second NVMe controller with an unmounted namespace;
* NICs: eth0 (the default route and its subnet), eth1 (an IPv4 address: its subnet's
  route), eth2 (a global IPv6 address), eth3 (only a link-local IPv6 address: free).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redleaf_lab.vfio import inuse, pci
from redleaf_lab.vfio.errors import VfioError

from redleaf_lab.cli import main

NVME, NVME2 = "0000:00:04.0", "0000:00:05.0"
NICS = {"0000:00:06.0": "eth0", "0000:00:07.0": "eth1", "0000:00:08.0": "eth2",
        "0000:00:09.0": "eth3"}


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _function(root: Path, bdf: str, pci_class: str, driver: str, group: int) -> Path:
    dev = root / "sys" / "devices" / "pci0000:00" / bdf
    for attr, value in (("class", pci_class), ("vendor", "0x8086"), ("device", "0x1234")):
        _write(dev / attr, value + "\n")
    _write(dev / "driver_override", "(null)\n")
    drivers = root / "sys" / "bus" / "pci" / "drivers"
    _write(drivers / driver / "unbind", "")
    _link(dev / "driver", drivers / driver)
    groups = root / "sys" / "kernel" / "iommu_groups" / str(group)
    _link(groups / "devices" / bdf, dev)
    _link(dev / "iommu_group", groups)
    _link(root / "sys" / "bus" / "pci" / "devices" / bdf, dev)
    return dev


def _disk(root: Path, ctrl: Path, name: str, number: str) -> Path:
    path = ctrl / name
    _write(path / "dev", number + "\n")
    _link(root / "sys" / "class" / "block" / path.name, path)
    return path


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "sys" / "bus" / "pci" / "drivers" / "vfio-pci").mkdir(parents=True)
    _write(root / "sys" / "bus" / "pci" / "drivers_probe", "")
    ctrl = _function(root, NVME, "0x010802", "nvme", 4) / "nvme" / "nvme0"
    ns = _disk(root, ctrl, "nvme0n1", "259:0")
    _disk(root, ns, "nvme0n1p1", "259:1")
    _disk(root, ns, "nvme0n1p2", "259:2")
    _disk(root, ns, "nvme0n1p3", "259:3")
    dm = _disk(root, root / "sys" / "devices" / "virtual" / "block", "dm-0", "253:0")
    _write(dm / "dm" / "name", "vg-home\n")
    _link(ns / "nvme0n1p3" / "holders" / "dm-0", dm)
    _disk(root, _function(root, NVME2, "0x010802", "nvme", 5) / "nvme" / "nvme1", "nvme1n1",
          "259:4")
    for group, (bdf, name) in enumerate(NICS.items(), start=6):
        dev = _function(root, bdf, "0x020000", "e1000e", group)
        (dev / "net" / name).mkdir(parents=True)
        _link(root / "sys" / "class" / "net" / name / "device", dev)
    _write(root / "proc" / "self" / "mountinfo",
           "25 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
           "26 25 0:22 / /proc rw - proc proc rw\n")
    _write(root / "proc" / "mounts", "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n"
                                     "proc /proc proc rw 0 0\n"
                                     "/dev/mapper/vg-home /home ext4 rw 0 0\n")
    _write(root / "proc" / "swaps", "Filename Type Size Used Priority\n"
                                    "/dev/nvme0n1p1 partition 8388604 0 -2\n")
    _write(root / "proc" / "net" / "route",
           "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
           "eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
           "eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
           "eth1\t00000A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    _write(root / "proc" / "net" / "if_inet6",
           "20010db8000000000000000000000001 04 40 00 80     eth2\n"
           "fe800000000000000000000000000009 05 40 20 80     eth3\n")
    _write(root / "proc" / "net" / "ipv6_route", "")
    _write(root / "proc" / "cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n")
    _write(root / "proc" / "cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/nvme0n1p2 ro quiet\n")
    return root


def test_the_boot_disk_controller_is_refused_with_every_reason(
        host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vfio", "bind", NVME, "--root", str(host)]) == 1
    err = capsys.readouterr().err
    assert f"refusing to unbind {NVME} from nvme" in err and "--force" in err
    assert "block device nvme0n1p2 is mounted on /" in err
    assert "block device nvme0n1p1 is active swap" in err
    assert "block device dm-0 is mounted on /home (ext4)" in err  # LVM on nvme0n1p3
    dev = host / "sys" / "devices" / "pci0000:00" / NVME
    assert (dev / "driver_override").read_text() == "(null)\n"  # nothing was written
    assert (host / "sys" / "bus" / "pci" / "drivers" / "nvme" / "unbind").read_text() == ""


@pytest.mark.parametrize(("bdf", "reason"), [
    ("0000:00:06.0", "network interface eth0 carries the default route"),
    ("0000:00:07.0", "network interface eth1 has an IPv4 address"),
    ("0000:00:08.0", "network interface eth2 has address 2001:0db8:0000:0000:0000:0000:0000:0001/64"),
])
def test_a_nic_with_the_default_route_or_an_address_is_refused(
        host: Path, capsys: pytest.CaptureFixture[str], bdf: str, reason: str) -> None:
    assert main(["vfio", "bind", bdf, "--root", str(host)]) == 1
    err = capsys.readouterr().err
    assert reason in err and "refusing" in err


@pytest.mark.parametrize("bdf", [NVME2, "0000:00:09.0"])
def test_a_free_function_is_bound(host: Path, bdf: str) -> None:
    """Nothing mounted, no route, only a link-local address: bind goes ahead (the fake
    tree has no kernel to act on the writes, so it ends with 'did not bind')."""
    assert inuse.in_use(bdf, host) == []
    with pytest.raises(VfioError, match="did not bind to vfio-pci"):
        pci.bind_vfio(bdf, root=host)
    dev = host / "sys" / "devices" / "pci0000:00" / bdf
    assert (dev / "driver_override").read_text() == "vfio-pci"
    assert (host / "sys" / "bus" / "pci" / "drivers_probe").read_text() == bdf


def test_force_binds_a_function_in_use(host: Path) -> None:
    with pytest.raises(VfioError, match="did not bind"):
        pci.bind_vfio(NVME, force=True, root=host)
    assert (host / "sys" / "bus" / "pci" / "drivers" / "nvme" / "unbind").read_text() == NVME


def test_status_without_an_address_lists_every_candidate(
        host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vfio", "status", "--root", str(host)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("IOMMU: on (6 IOMMU groups")
    for bdf in [NVME, NVME2, *NICS]:
        assert f"{bdf}: 8086:1234 class" in out
    assert "in use by the host: block device nvme0n1p2 is mounted on /" in out
    assert out.count("in use by the host: no (bind may take it)") == 2  # 05.0 and eth3


@pytest.mark.parametrize(("vendor", "param", "firmware"), [
    ("GenuineIntel", "intel_iommu=on", "VT-d"), ("AuthenticAMD", "amd_iommu=on", "AMD-Vi")])
def test_status_says_the_iommu_is_off_and_how_to_turn_it_on(
        host: Path, capsys: pytest.CaptureFixture[str], vendor: str, param: str,
        firmware: str) -> None:
    for link in (host / "sys" / "devices" / "pci0000:00").glob("*/iommu_group"):
        link.unlink()
    for group in (host / "sys" / "kernel" / "iommu_groups").iterdir():
        for dev in (group / "devices").iterdir():
            dev.unlink()
        (group / "devices").rmdir()
        group.rmdir()
    _write(host / "proc" / "cpuinfo", f"vendor_id\t: {vendor}\n")
    assert main(["vfio", "status", NVME2, "--root", str(host)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("IOMMU: OFF (no IOMMU groups")
    assert f"add {param} iommu=pt to the kernel command line" in out
    assert f"enable {firmware}" in out and f"lacks {param}" in out
    assert "IOMMU group: none (IOMMU off)" in out
    assert main(["vfio", "status", "--root", str(host)]) == 0
    assert "IOMMU: OFF" in capsys.readouterr().out
