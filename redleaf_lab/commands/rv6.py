"""Rv6 from the command line: the shell, mkfs, fsck and the file-system benchmark.

    redleaf-lab rv6 [--device membdev|nvme|vfio:BDF] [--image FILE] [--blocks N]
        boot Rv6 (the image FILE, or a fresh one with the programs) and give an `rv6$`
        shell on this terminal: line editing and history (readline), Ctrl-C kills the
        running program(s), Ctrl-D exits. With --image, the file is written back on exit
        only if the file system checks clean.
    redleaf-lab mkfs IMAGE [FILE...] [--blocks N]   an image with the programs, a README
        and FILEs (each at /its-name)
    redleaf-lab fsck IMAGE                          every violation, exit status 1 if any
    redleaf-lab bench fs [--seconds S] [--slice S] [--region-kb K] [--no-nvme] [--json]

Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    rv6 = sub.add_parser("rv6", help="boot Rv6 and open its shell (rv6$)")
    rv6.add_argument("--device", default="membdev", metavar="membdev|nvme|vfio:BDF",
                     help="the block device: in memory, the NVMe model, or a real NVMe "
                          "controller bound to vfio-pci (its namespace is overwritten)")
    rv6.add_argument("--image", default=None, help="an image made by `redleaf-lab mkfs`")
    rv6.add_argument("--blocks", type=int, default=4096, help="size of a fresh image")
    rv6.set_defaults(func=_rv6)
    mkfs = sub.add_parser("mkfs", help="build an Rv6 file-system image")
    mkfs.add_argument("image")
    mkfs.add_argument("files", nargs="*", help="host files to put at /NAME")
    mkfs.add_argument("--blocks", type=int, default=4096, help="4 KiB blocks (default 16 MiB)")
    mkfs.set_defaults(func=_mkfs)
    fsck = sub.add_parser("fsck", help="check an Rv6 image and name every violation")
    fsck.add_argument("image")
    fsck.set_defaults(func=_fsck)


def add_bench_parser(bench: argparse._SubParsersAction) -> None:
    fs = bench.add_parser("fs", help="Rv6 benchfs with the block driver panicking every second")
    fs.add_argument("--seconds", type=float, default=4.0, help="seconds of each path")
    fs.add_argument("--slice", type=float, default=1.0, help="seconds per slice")
    fs.add_argument("--region-kb", type=int, default=8192)
    fs.add_argument("--no-nvme", action="store_true", help="skip the NVMe-backed rows")
    fs.add_argument("--json", action="store_true")
    fs.set_defaults(func=_bench_fs)


def _mkfs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..rv6img import default_files, mkfs, write_image

    files = default_files()
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"{name}: no such file")
        files["/" + path.name] = path.read_bytes()
    image = mkfs(args.blocks, files)
    write_image(image, args.image)
    print(f"{args.image}: {len(image)} blocks of 4 KiB, {len(files)} files")
    return 0


def _fsck(args: argparse.Namespace) -> int:
    from ..rv6img import fsck, read_image

    problems = fsck(read_image(args.image))
    for p in problems:
        print(p)
    print(f"{args.image}: {'clean' if not problems else f'{len(problems)} violation(s)'}")
    return 1 if problems else 0


def _bench_fs(args: argparse.Namespace) -> int:
    from ..bench import fs

    result = fs.measure(args.seconds, args.slice, args.region_kb, nvme=not args.no_nvme)
    if args.json:
        print(json.dumps(fs.public(result), indent=2, default=float))
    else:
        print(fs.format_table(result))
    return 0


def _rv6(args: argparse.Namespace) -> int:
    if args.device not in ("membdev", "nvme") and not args.device.startswith("vfio:"):
        raise ValueError(f"--device {args.device!r}: use membdev, nvme or vfio:BDF")
    from ..rv6img.terminal import run_shell

    return run_shell(args.device, args.image, args.blocks, sys.stdin, sys.stdout)
