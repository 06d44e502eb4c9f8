"""Is a PCI function in use by the host? And is the IOMMU on? (`vfio bind` safety.)

Purpose: `redleaf-lab vfio bind` unbinds a function's native driver, which would pull
the boot disk or the management NIC from under the running system. `in_use(bdf, root)`
names every reason the host still needs the function:

* a block device of the function (its disks and partitions, found by resolving
  /sys/class/block/* into the function's sysfs directory, plus device-mapper or md
  devices built on them: `holders/`) that is mounted (/proc/self/mountinfo by
  major:minor, /proc/mounts by name) or is active swap (/proc/swaps);
* a network interface of the function (/sys/class/net/*/device, or the function's
  `net/` directory) that carries the default route (/proc/net/route,
  /proc/net/ipv6_route) or has a configured address: a route of its own in
  /proc/net/route (an IPv4 address brings its subnet's route), a global IPv6 address
  in /proc/net/if_inet6, and, on the real host only, `ip -o addr show dev IFACE`.

`iommu(root)` says whether an IOMMU is on (/sys/kernel/iommu_groups, /sys/class/iommu)
and, when it is off, how to turn it on for this CPU's vendor (/proc/cpuinfo) given the
kernel command line (/proc/cmdline).

Every path is taken under `root` ("/" on the host; tests pass a fake sysfs/procfs tree,
so they are deterministic and never touch real devices). Stateless; reads only.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HOST = Path("/")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _function_dir(bdf: str, root: Path) -> Path:
    return (root / "sys" / "bus" / "pci" / "devices" / bdf).resolve()


def _below(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


# -- block devices -------------------------------------------------------------------------
def block_devices(bdf: str, root: Path = HOST) -> dict[str, str]:
    """{name: "major:minor"} of the function's block devices and of what is built on
    them (device-mapper, md: their `holders/`)."""
    top = _function_dir(bdf, root)
    table = root / "sys" / "class" / "block"
    found: dict[str, str] = {}
    entries = sorted(table.iterdir()) if table.is_dir() else []
    for entry in entries:
        if _below(entry.resolve(), top):
            found[entry.name] = _read(entry / "dev").strip()
    pending = list(found)
    while pending:  # what is stacked on them
        name = pending.pop()
        holders = table / name / "holders"
        for holder in sorted(holders.iterdir()) if holders.is_dir() else []:
            if holder.name not in found:
                found[holder.name] = _read(table / holder.name / "dev").strip()
                pending.append(holder.name)
    return found


def _dm_names(root: Path, devices: dict[str, str]) -> dict[str, str]:
    """/dev/mapper/NAME -> dm-N for the device-mapper devices among `devices`."""
    out = {}
    for name in devices:
        dm = _read(root / "sys" / "class" / "block" / name / "dm" / "name").strip()
        if dm:
            out[dm] = name
    return out


def _mounts(root: Path, devices: dict[str, str]) -> list[str]:
    reasons = []
    numbers = {number: name for name, number in devices.items() if number}
    seen = set()
    for line in _read(root / "proc" / "self" / "mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[2] in numbers:  # major:minor, mount point
            seen.add(fields[4])
            reasons.append(f"block device {numbers[fields[2]]} is mounted on {fields[4]}")
    mapper = _dm_names(root, devices)
    for line in _read(root / "proc" / "mounts").splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].startswith("/dev/") or fields[1] in seen:
            continue
        name = fields[0][5:]
        name = mapper.get(name[7:], name) if name.startswith("mapper/") else name
        if name in devices:
            seen.add(fields[1])
            reasons.append(f"block device {name} is mounted on {fields[1]} ({fields[2]})")
    return reasons


def _swaps(root: Path, devices: dict[str, str]) -> list[str]:
    reasons = []
    mapper = _dm_names(root, devices)
    for line in _read(root / "proc" / "swaps").splitlines()[1:]:
        fields = line.split()
        if not fields or not fields[0].startswith("/dev/"):
            continue
        name = fields[0][5:]
        name = mapper.get(name[7:], name) if name.startswith("mapper/") else name
        if name in devices:
            reasons.append(f"block device {name} is active swap")
    return reasons


# -- network interfaces --------------------------------------------------------------------
def interfaces(bdf: str, root: Path = HOST) -> list[str]:
    """Names of the function's network interfaces."""
    top = _function_dir(bdf, root)
    names = set()
    own = top / "net"
    if own.is_dir():
        names.update(p.name for p in own.iterdir())
    table = root / "sys" / "class" / "net"
    for entry in sorted(table.iterdir()) if table.is_dir() else []:
        link = entry / "device"
        if link.exists() and link.resolve() == top:
            names.add(entry.name)
    return sorted(names)


def _routes(root: Path, iface: str) -> list[str]:
    reasons = []
    default4 = own4 = False
    for line in _read(root / "proc" / "net" / "route").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[0] == iface:
            if fields[1] == "00000000" and fields[7] == "00000000":
                default4 = True
            else:
                own4 = True
    default6 = False
    for line in _read(root / "proc" / "net" / "ipv6_route").splitlines():
        fields = line.split()  # dest, dest prefix length, ..., device last
        if len(fields) >= 10 and fields[-1] == iface and fields[1] == "00" \
                and set(fields[0]) == {"0"}:
            default6 = True
    if default4 or default6:
        reasons.append(f"network interface {iface} carries the default route")
    if own4:
        reasons.append(f"network interface {iface} has an IPv4 address (a route of its own "
                       "in /proc/net/route)")
    return reasons


def _addresses(root: Path, iface: str) -> list[str]:
    """Configured addresses (not link-local): `ip -o addr show dev IFACE` on the real host
    when `ip` exists; else the global IPv6 addresses of /proc/net/if_inet6 (IPv4
    addresses show as the interface's own routes, see _routes)."""
    found = []
    if root == HOST and shutil.which("ip"):
        done = subprocess.run(["ip", "-o", "addr", "show", "dev", iface], capture_output=True,
                              text=True, check=False)
        for line in done.stdout.splitlines():
            fields = line.split()  # "2: eth0 inet 10.0.0.5/24 brd ... scope global eth0"
            scope = fields[fields.index("scope") + 1] if "scope" in fields[:-1] else ""
            if len(fields) > 3 and fields[2] in ("inet", "inet6") and scope not in ("link", "host"):
                found.append(fields[3])
    else:
        for line in _read(root / "proc" / "net" / "if_inet6").splitlines():
            fields = line.split()  # address, index, prefix length, scope, flags, name
            if len(fields) == 6 and fields[5] == iface and int(fields[3], 16) == 0:  # global
                words = [fields[0][i : i + 4] for i in range(0, 32, 4)]
                found.append(":".join(words) + f"/{int(fields[2], 16)}")
    return [f"network interface {iface} has address {a}" for a in found]


# -- the verdicts ----------------------------------------------------------------------------
def in_use(bdf: str, root: Path = HOST) -> list[str]:
    """Why the host still needs `bdf` (empty: it may be handed to vfio-pci)."""
    devices = block_devices(bdf, root)
    reasons = _mounts(root, devices) + _swaps(root, devices)
    for iface in interfaces(bdf, root):
        reasons += _routes(root, iface) + _addresses(root, iface)
    return reasons


@dataclass(frozen=True)
class IommuState:
    on: bool
    detail: str  # what was found, or how to turn it on

    def lines(self) -> list[str]:
        return [f"IOMMU: {'on' if self.on else 'OFF'} ({self.detail})"]


def iommu(root: Path = HOST) -> IommuState:
    """Whether an IOMMU is on, and if not, how to turn it on."""
    groups = root / "sys" / "kernel" / "iommu_groups"
    count = len(list(groups.iterdir())) if groups.is_dir() else 0
    units = root / "sys" / "class" / "iommu"
    names = sorted(p.name for p in units.iterdir()) if units.is_dir() else []
    if count:
        return IommuState(True, f"{count} IOMMU groups; units: {', '.join(names) or '-'}")
    cpu = _read(root / "proc" / "cpuinfo")
    cmdline = _read(root / "proc" / "cmdline").split()
    if "AuthenticAMD" in cpu:
        param, firmware = "amd_iommu=on", "AMD-Vi (IOMMU) in the BIOS/UEFI setup"
    elif "GenuineIntel" in cpu:
        param, firmware = "intel_iommu=on", "VT-d in the BIOS/UEFI setup"
    else:
        param, firmware = "intel_iommu=on (Intel) or amd_iommu=on (AMD)", \
            "VT-d (Intel) or AMD-Vi (AMD) in the BIOS/UEFI setup"
    have = [p for p in cmdline if p.startswith(("intel_iommu=", "amd_iommu=", "iommu="))]
    told = (f"the kernel command line has {' '.join(have)}, but no IOMMU came up: check "
            "the firmware setting" if have else
            f"the kernel command line lacks {param}")
    return IommuState(False, f"no IOMMU groups in /sys/kernel/iommu_groups: VFIO cannot "
                             f"isolate a device. Turn it on: enable {firmware}, add {param} "
                             f"iommu=pt to the kernel command line (GRUB_CMDLINE_LINUX in "
                             f"/etc/default/grub, then update-grub) and reboot; {told}")
