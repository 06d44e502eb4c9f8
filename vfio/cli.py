"""`redleaf-lab vfio bind|unbind|status|list`: hand PCI functions to vfio-pci and back.

Purpose: the command-line side of vfio/pci.py, registered by redleaf_lab/cli.py with
`add_parser(subparsers)`:

    redleaf-lab vfio status 0000:04:00.0   # ids, driver, IOMMU group, /dev/vfio node
    redleaf-lab vfio bind 0000:04:00.0     # unbind the native driver, bind vfio-pci
    redleaf-lab vfio unbind 0000:04:00.0   # release it; the kernel reprobes its driver
    redleaf-lab vfio list                  # NVMe controllers and NICs with their drivers

Exit status 0 on success, 1 with a one-line reason (VfioError: cause and fix) on failure.
bind and unbind need root; bind loads vfio-pci with modprobe when it is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from . import pci
from .errors import VfioError

NIC_CLASS = 0x020000  # network controller, Ethernet


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("vfio", help="bind PCI functions to vfio-pci, show status")
    parser.add_argument("action", choices=["bind", "unbind", "status", "list"])
    parser.add_argument("bdf", nargs="?", default="", help="PCI address DDDD:BB:DD.F (lspci -D)")
    parser.add_argument("--no-reprobe", action="store_true",
                        help="unbind: leave the function without a driver")
    parser.set_defaults(func=run)


def _modprobe() -> None:
    if (pci.SYSFS / "bus" / "pci" / "drivers" / "vfio-pci").exists():
        return
    if shutil.which("modprobe"):
        subprocess.run(["modprobe", "vfio-pci"], check=False, capture_output=True)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            for bdf in pci.find_by_class(pci.NVME_CLASS) + pci.find_by_class(NIC_CLASS):
                print("\n".join(pci.status(bdf).lines()))
            return 0
        if not args.bdf:
            raise VfioError(f"`redleaf-lab vfio {args.action}` needs a PCI address (see "
                            "`redleaf-lab vfio list` or `lspci -D`)")
        if args.action == "status":
            print("\n".join(pci.status(args.bdf).lines()))
        elif args.action == "bind":
            _modprobe()
            group = pci.bind_vfio(args.bdf)
            print(f"{pci.parse_bdf(args.bdf)} bound to vfio-pci: /dev/vfio/{group}")
        else:
            pci.unbind(args.bdf, reprobe=not args.no_reprobe)
            now = pci.driver(args.bdf)
            print(f"{pci.parse_bdf(args.bdf)} released; driver now: {now or '(none)'}")
        return 0
    except VfioError as exc:
        print(f"redleaf-lab vfio: {exc}", file=sys.stderr)
        return 1
