"""`redleaf-lab vfio bind|unbind|status|list`: hand PCI functions to vfio-pci and back.

Purpose: the command-line side of vfio/pci.py, registered by redleaf_lab/cli.py with
`add_parser(subparsers)`:

    redleaf-lab vfio status                # the IOMMU, then every NVMe controller and NIC
    redleaf-lab vfio status 0000:04:00.0   # ids, driver, IOMMU group, /dev/vfio node, in use?
    redleaf-lab vfio bind 0000:04:00.0     # unbind the native driver, bind vfio-pci
    redleaf-lab vfio bind 0000:04:00.0 --force   # even if the host uses it (mounts, routes)
    redleaf-lab vfio unbind 0000:04:00.0   # release it; the kernel reprobes its driver
    redleaf-lab vfio list                  # the same as `status` without an address

Exit status 0 on success, 1 with a one-line reason (VfioError: cause and fix) on failure.
bind refuses a function the host is using (a mounted file system or active swap on its
disks, the default route or an address on its NIC: vfio/inuse.py), naming why, unless
--force. status says when the IOMMU is off and how to turn it on. bind and unbind need
root; bind loads vfio-pci with modprobe when it is missing. `--root DIR` reads sysfs and
procfs under DIR instead of / (tests use a fake tree).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from . import inuse, pci
from .errors import VfioError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("vfio", help="bind PCI functions to vfio-pci, show status")
    parser.add_argument("action", choices=["bind", "unbind", "status", "list"])
    parser.add_argument("bdf", nargs="?", default="", help="PCI address DDDD:BB:DD.F (lspci -D)")
    parser.add_argument("--no-reprobe", action="store_true",
                        help="unbind: leave the function without a driver")
    parser.add_argument("--force", action="store_true",
                        help="bind: even a function the host is using (mounted disk, swap, "
                             "the NIC with the default route or an address)")
    parser.add_argument("--root", type=Path, default=None,
                        help="read sysfs/procfs under this directory instead of / (tests)")
    parser.set_defaults(func=run)


def _modprobe(root: Path | None) -> None:
    sysfs = pci.SYSFS if root is None else root / "sys"
    if root is not None or (sysfs / "bus" / "pci" / "drivers" / "vfio-pci").exists():
        return
    if shutil.which("modprobe"):
        subprocess.run(["modprobe", "vfio-pci"], check=False, capture_output=True)


def run(args: argparse.Namespace) -> int:
    root: Path | None = getattr(args, "root", None)
    try:
        if args.action == "list" or (args.action == "status" and not args.bdf):
            iommu = inuse.iommu(root or inuse.HOST)
            print("\n".join(iommu.lines()))
            found = pci.candidates(root)
            for bdf in found:
                print("\n".join(pci.status(bdf, root).lines()))
            if not found:
                print("no NVMe controller (class 010802) or Ethernet NIC (class 020000) found")
            return 0
        if not args.bdf:
            raise VfioError(f"`redleaf-lab vfio {args.action}` needs a PCI address (see "
                            "`redleaf-lab vfio status` or `lspci -D`)")
        if args.action == "status":
            iommu = inuse.iommu(root or inuse.HOST)
            lines = pci.status(args.bdf, root).lines()
            print("\n".join(lines if iommu.on else iommu.lines() + lines))
        elif args.action == "bind":
            _modprobe(root)
            group = pci.bind_vfio(args.bdf, force=args.force, root=root)
            print(f"{pci.parse_bdf(args.bdf)} bound to vfio-pci: /dev/vfio/{group}")
        else:
            pci.unbind(args.bdf, reprobe=not args.no_reprobe, root=root)
            now = pci.driver(args.bdf, root)
            print(f"{pci.parse_bdf(args.bdf)} released; driver now: {now or '(none)'}")
        return 0
    except VfioError as exc:
        print(f"redleaf-lab vfio: {exc}", file=sys.stderr)
        return 1
