"""PCI functions in sysfs: BDF parsing, IOMMU groups, driver binding (bind/unbind/status).

Purpose: everything about a PCI function that is read or written through
/sys/bus/pci (Documentation/ABI/testing/sysfs-bus-pci): `parse_bdf` normalizes
"04:00.0" or "0000:04:00.0"; `iommu_group(bdf)` reads the iommu_group link; `bind_vfio`
hands a function to vfio-pci with driver_override + drivers_probe (the kernel's
recommended way since 3.16), but first refuses a function the host is using (a mounted
disk, active swap, the NIC with the default route or an address: vfio/inuse.py) unless
forced; `unbind` releases it, `status` describes it (with its in-use reasons) and
`candidates` lists the NVMe controllers and NICs. Each failure raises `VfioError`
naming the likely cause and the fix. Every function takes `root`: the directory that
stands for "/" (None: the host's, through `SYSFS`); tests pass a fake sysfs/procfs tree.

Ownership: none; these are stateless helpers. Binding needs root (or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import inuse
from .errors import VfioError

SYSFS = Path("/sys")
DEV_VFIO = Path("/dev/vfio")
_BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$")

NVME_CLASS = 0x010802  # mass storage, NVM, NVM Express (PCI Code and ID Assignment §1.2)
NIC_CLASS = 0x020000  # network controller, Ethernet


def _sys(root: Path | None) -> Path:
    return SYSFS if root is None else Path(root) / "sys"


def _root(root: Path | None) -> Path:
    return SYSFS.parent if root is None else Path(root)


def parse_bdf(text: str) -> str:
    """'DDDD:BB:DD.F' (domain 0000 when omitted), lower case; clear error otherwise."""
    found = _BDF.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise VfioError(f"malformed PCI address {text!r}: expected DDDD:BB:DD.F such as "
                        "0000:04:00.0 (see `lspci -D`)")
    domain, bus, dev, fn = found.groups()
    return f"{(domain or '0000').lower()}:{bus.lower()}:{dev.lower()}.{fn}"


def device_dir(bdf: str, root: Path | None = None) -> Path:
    bdf = parse_bdf(bdf)
    path = _sys(root) / "bus" / "pci" / "devices" / bdf
    if not path.exists():
        present = sorted(p.name for p in (_sys(root) / "bus" / "pci" / "devices").glob("*"))
        raise VfioError(f"no PCI device {bdf}: it is not in {path.parent} (present: "
                        f"{', '.join(present[:12]) or 'none'}); check the address with `lspci -D`")
    return path


def read_hex(bdf: str, attr: str, root: Path | None = None) -> int:
    return int((device_dir(bdf, root) / attr).read_text().strip(), 16)


def driver(bdf: str, root: Path | None = None) -> str | None:
    link = device_dir(bdf, root) / "driver"
    return os.path.basename(os.readlink(link)) if link.exists() else None


def iommu_group(bdf: str, root: Path | None = None) -> int:
    link = device_dir(bdf, root) / "iommu_group"
    if not link.exists():
        raise VfioError(f"{bdf} has no IOMMU group: the IOMMU is off. Enable VT-d/AMD-Vi in the "
                        "firmware and boot with intel_iommu=on (or amd_iommu=on) iommu=pt")
    return int(os.path.basename(os.readlink(link)))


def group_devices(group: int, root: Path | None = None) -> list[str]:
    path = _sys(root) / "kernel" / "iommu_groups" / str(group) / "devices"
    return sorted(p.name for p in path.glob("*")) if path.exists() else []


def find_by_class(pci_class: int, root: Path | None = None) -> list[str]:
    """BDFs of functions of this class (e.g. NVME_CLASS), sorted."""
    found = []
    for path in sorted((_sys(root) / "bus" / "pci" / "devices").glob("*")):
        try:
            if int((path / "class").read_text(), 16) == pci_class:
                found.append(path.name)
        except (OSError, ValueError):
            continue
    return found


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text)
    except PermissionError:
        raise VfioError(f"{what}: permission denied writing {path}: run as root") from None
    except OSError as exc:
        raise VfioError(f"{what}: writing {text!r} to {path} failed: {exc}") from None


def candidates(root: Path | None = None) -> list[str]:
    """The functions `vfio bind` is for: NVMe controllers and Ethernet NICs, sorted."""
    return find_by_class(NVME_CLASS, root) + find_by_class(NIC_CLASS, root)


def bind_vfio(bdf: str, force: bool = False, root: Path | None = None) -> int:
    """Bind `bdf` to vfio-pci (loading nothing: the vfio-pci module must be loaded);
    returns its IOMMU group. Refuses, naming why, a function the host is using
    (inuse.in_use) unless `force`; unbinds the current driver first."""
    bdf = parse_bdf(bdf)
    path = device_dir(bdf, root)
    current = driver(bdf, root)
    if current != "vfio-pci" and not force:
        reasons = inuse.in_use(bdf, _root(root))
        if reasons:
            raise VfioError(f"refusing to unbind {bdf} from {current or 'its driver'}: the host "
                            f"is using it: {'; '.join(reasons)}. Free it first (umount, swapoff, "
                            "move the route and addresses to another NIC), or pass --force")
    if not (_sys(root) / "bus" / "pci" / "drivers" / "vfio-pci").exists():
        raise VfioError("the vfio-pci driver is not loaded: run `modprobe vfio-pci`")
    group = iommu_group(bdf, root)
    if current == "vfio-pci":
        return group
    if current is not None:
        _write(path / "driver" / "unbind", bdf, f"unbind {bdf} from {current}")
    _write(path / "driver_override", "vfio-pci", f"set the driver override of {bdf}")
    _write(_sys(root) / "bus" / "pci" / "drivers_probe", bdf, f"probe {bdf}")
    if driver(bdf, root) != "vfio-pci":
        raise VfioError(f"{bdf} did not bind to vfio-pci (driver now: {driver(bdf, root)}); "
                        "see dmesg")
    return group


def unbind(bdf: str, reprobe: bool = True, root: Path | None = None) -> None:
    """Release `bdf` from its driver and clear the override; reprobe lets the kernel
    give it back to its native driver (nvme, ixgbe, ...)."""
    bdf = parse_bdf(bdf)
    path = device_dir(bdf, root)
    current = driver(bdf, root)
    if current is not None:
        _write(path / "driver" / "unbind", bdf, f"unbind {bdf} from {current}")
    _write(path / "driver_override", "\n", f"clear the driver override of {bdf}")
    if reprobe:
        _write(_sys(root) / "bus" / "pci" / "drivers_probe", bdf, f"probe {bdf}")


@dataclass(frozen=True)
class Status:
    bdf: str
    vendor: int
    device: int
    pci_class: int
    driver: str | None
    group: int | None
    group_devices: tuple[str, ...]
    dev_node: str | None  # /dev/vfio/N when it exists
    in_use: tuple[str, ...] = ()  # why `bind` would refuse it (inuse.in_use)

    def lines(self) -> list[str]:
        group = "none (IOMMU off)" if self.group is None else str(self.group)
        use = "; ".join(self.in_use) if self.in_use else "no (bind may take it)"
        return [f"{self.bdf}: {self.vendor:04x}:{self.device:04x} class {self.pci_class:06x}",
                f"  driver: {self.driver or '(none)'}",
                f"  IOMMU group: {group} ({', '.join(self.group_devices) or '-'})",
                f"  VFIO node: {self.dev_node or '(none: not bound to vfio-pci)'}",
                f"  in use by the host: {use}"]


def status(bdf: str, root: Path | None = None) -> Status:
    bdf = parse_bdf(bdf)
    path = device_dir(bdf, root)
    group = int(os.path.basename(os.readlink(path / "iommu_group"))) \
        if (path / "iommu_group").exists() else None
    dev_vfio = DEV_VFIO if root is None else Path(root) / "dev" / "vfio"
    node = dev_vfio / str(group) if group is not None else None
    current = driver(bdf, root)
    reasons = () if current == "vfio-pci" else tuple(inuse.in_use(bdf, _root(root)))
    return Status(bdf, read_hex(bdf, "vendor", root), read_hex(bdf, "device", root),
                  read_hex(bdf, "class", root), current, group,
                  tuple(group_devices(group, root)) if group is not None else (),
                  str(node) if node is not None and node.exists() else None, reasons)
