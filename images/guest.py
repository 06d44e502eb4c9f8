"""The QEMU test guest: build it (kernel + busybox initramfs, cached) and run commands in it.

Purpose: the VFIO tests need a Linux that owns an IOMMU and a PCI NVMe controller. We
boot Debian's generic 6.1 kernel (not -cloud: that flavour lacks 9p and e1000e) under
QEMU with an emulated Intel IOMMU (VT-d), two QEMU NVMe controllers (512-byte and
4 KiB LBA formats: NVME_LBA_SIZES) and an e1000e NIC. There
is no root image: a ~1.5 MB initramfs (busybox-static plus the modules below) mounts the
HOST's `/` read-only over virtio-9p, a per-run writable 9p share at /run/share, chroots
into the host root and runs one shell command taken (base64) from the kernel command
line, so the guest runs the host's own python and this checkout at the same paths
(writable: only /run (tmpfs; TMPDIR=/run/tmp), /dev/shm and the share; /tmp stays the
host's, read-only, so a checkout under /tmp is still visible).

Interface:
* `build(cache_dir=None) -> GuestImage`: fetch the kernel package with `apt-get download`,
  unpack it with `dpkg-deb -x`, keep vmlinuz and the needed modules, write the initramfs
  (our own cpio "newc" writer); cached in ~/.cache/redleaf-lab/images/<kernel version>/
  (env REDLEAF_IMAGE_CACHE overrides the root). A file lock serializes concurrent builds.
* `run_in_guest(cmd, timeout) -> (exit_status, output)`: boot, run `cmd`, power off.
  `run(cmd, ...) -> GuestRun` also returns the console log, the share dir and timings.
* `choose_accel()`: "kvm" only when /dev/kvm is read/write and the CPU flags show vmx/svm
  (a paravirtual /dev/kvm here cannot boot a stock kernel); else "tcg". Env
  REDLEAF_QEMU_ACCEL=kvm|tcg overrides.

Errors: `GuestError` names the missing tool (and the apt-get line that installs it), a
guest that did not finish in time, or one that died without reporting a status (with the
console's tail). Nothing is written inside the checkout.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cpio

# Load order matters (insmod resolves no dependencies): `resolve_modules` orders this
# list by each module's `depends=` (its .modinfo), so the list itself needs no order.
MODULES = ["virtio_pci", "9p", "9pnet_virtio", "vfio_pci", "vfio_iommu_type1"]
APT_HINT = "apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils busybox-static"
STATUS_FILE = ".exit-status"
START_MARK = "rl-guest: running"
END_MARK = "rl-guest: exit status"
CMDLINE_LIMIT = 2048  # x86 COMMAND_LINE_SIZE (arch/x86/include/asm/setup.h)
# NVMe controllers of the guest, by namespace LBA size, in PCI order: QEMU's default
# 512-byte format (most drives ship so) first, then a 4 KiB one
NVME_LBA_SIZES = (512, 4096)

INIT_SCRIPT = r"""#!/bin/busybox sh
# Initramfs /init of the RedLeaf Lab test guest (written by images/guest.py).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec </dev/console >/dev/console 2>&1
fail() { echo "rl-guest: FAILED: $*"; poweroff -f; }
for m in $(cat /modules.list); do insmod /lib/modules/$m.ko || fail "insmod $m"; done
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $O,ro,cache=loose hostroot /newroot || fail "mount the host root over 9p"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/run/share /newroot/run/tmp
mount -t 9p -o $O share /newroot/run/share || fail "mount the writable share"
CMD=$(sed -n 's/.* rl\.cmd=\([^ ]*\).*/\1/p' /proc/cmdline | base64 -d)
echo "rl-guest: running"
chroot /newroot /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HOME=/root TERM=dumb LANG=C.UTF-8 TMPDIR=/run/tmp PYTHONDONTWRITEBYTECODE=1 REDLEAF_GUEST=1 \
    /bin/sh -c "$CMD"
STATUS=$?
echo $STATUS > /newroot/run/share/.exit-status
sync
echo "rl-guest: exit status $STATUS"
poweroff -f
"""


class GuestError(RuntimeError):
    """The guest could not be built or booted, or did not report an exit status."""


@dataclass(frozen=True)
class GuestImage:
    version: str  # kernel release, e.g. 6.1.0-56-amd64
    kernel: Path
    initramfs: Path


@dataclass(frozen=True)
class GuestRun:
    status: int
    output: str  # what the command printed (console lines between the marks)
    console: str  # the whole serial console
    share: Path  # the writable share (the guest's /run/share)
    seconds: float  # wall time of the boot, command and power-off
    accel: str


def cache_root() -> Path:
    env = os.environ.get("REDLEAF_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "redleaf-lab" / "images"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise GuestError(f"{tool} not found: the QEMU test guest needs it. Install with: {APT_HINT}")
    return path


def kernel_package() -> str:
    """The generic amd64 kernel package Debian's metapackage points at (env override)."""
    env = os.environ.get("REDLEAF_GUEST_KERNEL_PKG")
    if env:
        return env
    _need("apt-cache")
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                             text=True, check=False).stdout
        found = re.findall(r"Depends: (linux-image-[0-9.]+-\d+-amd64)\b", out)
        if found or attempt or os.geteuid() != 0:
            break
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    if not found:
        raise GuestError("cannot find Debian's linux-image-amd64 in the apt lists: run "
                         "`apt-get update`, or set REDLEAF_GUEST_KERNEL_PKG=linux-image-6.1.0-N-amd64")
    return found[0]


def modinfo_depends(ko: Path) -> list[str]:
    """The `depends=` field of a module's .modinfo section (no modinfo binary needed)."""
    found = re.search(rb"\x00depends=([^\x00]*)\x00", ko.read_bytes())
    return [d.replace("-", "_") for d in found.group(1).decode().split(",") if d] if found else []


def resolve_modules(tree: Path, wanted: list[str]) -> list[Path]:
    """`wanted` and their dependencies, dependencies first."""
    index = {p.name[:-3].replace("-", "_"): p for p in tree.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            raise GuestError(f"kernel module {name} not found under {tree} (is it built in, "
                             "or is this a -cloud kernel? use the generic amd64 flavour)")
        for dep in modinfo_depends(index[name]):
            visit(dep)
        order.append(index[name])

    for name in wanted:
        visit(name)
    return order


def build(cache_dir: Path | None = None) -> GuestImage:
    """Build (or reuse) the kernel and initramfs; see the module docstring."""
    package = kernel_package()
    version = package.removeprefix("linux-image-")
    root = cache_dir or cache_root()
    done = root / version
    image = GuestImage(version, done / "vmlinuz", done / "initramfs.cpio.gz")
    if image.kernel.exists() and image.initramfs.exists():
        return image
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.kernel.exists() and image.initramfs.exists():
            return image
        busybox = Path("/bin/busybox")
        if not busybox.exists() or b"--install" not in busybox.read_bytes():
            raise GuestError(f"busybox-static not found at /bin/busybox. Install with: {APT_HINT}")
        work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            _need("apt-get")
            _need("dpkg-deb")
            got = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True,
                                 text=True, check=False)
            debs = list(work.glob("*.deb"))
            if got.returncode or not debs:
                raise GuestError(f"apt-get download {package} failed: {got.stderr.strip()[-400:]}")
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "x")], check=True)
            debs[0].unlink()
            modules = resolve_modules(work / "x" / "lib" / "modules" / version, MODULES)
            out = work / "out"
            out.mkdir()
            shutil.copy(work / "x" / "boot" / f"vmlinuz-{version}", out / "vmlinuz")
            _write_initramfs(out / "initramfs.cpio.gz", busybox, modules)
            if done.exists():
                shutil.rmtree(done)
            os.rename(out, done)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return image


def _write_initramfs(path: Path, busybox: Path, modules: list[Path]) -> None:
    archive = cpio.Archive()
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        archive.directory(d)
    archive.char_device("dev/console", 5, 1)
    archive.char_device("dev/null", 1, 3)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.file("init", INIT_SCRIPT.encode(), 0o755)
    names = []
    for ko in modules:
        name = ko.name[:-3]
        archive.file(f"lib/modules/{name}.ko", ko.read_bytes(), 0o644)
        names.append(name)
    archive.file("modules.list", ("\n".join(names) + "\n").encode(), 0o644)
    path.write_bytes(gzip.compress(archive.finish(), compresslevel=6, mtime=0))


def choose_accel() -> str:
    env = os.environ.get("REDLEAF_QEMU_ACCEL")
    if env in ("kvm", "tcg"):
        return env
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        with contextlib.suppress(OSError):
            flags = Path("/proc/cpuinfo").read_text()
            if re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M):
                return "kvm"
    return "tcg"


def qemu_command(image: GuestImage, share: Path, disks: Sequence[tuple[Path, int]], cmd: str,
                 accel: str, memory_mb: int = 1024, cpus: int = 2) -> list[str]:
    """The QEMU command line; `disks` gives each NVMe controller's backing file and
    logical block size, in PCI order (512: QEMU's default, as most drives ship)."""
    encoded = base64.b64encode(cmd.encode()).decode()
    append = f"console=ttyS0 intel_iommu=on iommu=pt panic=-1 quiet rl.cmd={encoded}"
    if len(append) >= CMDLINE_LIMIT:
        raise GuestError(f"command too long for the kernel command line ({len(append)} >= "
                         f"{CMDLINE_LIMIT} bytes): put it in a script in the share and run that")
    machine = "q35,accel=kvm" if accel == "kvm" else "q35,accel=tcg"
    return [
        _need("qemu-system-x86_64"),
        "-machine", f"{machine},kernel-irqchip=split", "-cpu", "host" if accel == "kvm" else "max",
        "-m", str(memory_mb), "-smp", str(cpus), "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(image.kernel), "-initrd", str(image.initramfs), "-append", append,
        # VT-d with interrupt remapping; caching-mode lets VFIO in the guest map DMA
        "-device", "intel-iommu,intremap=on,caching-mode=on",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=share,path={share},security_model=none",
        "-device", "virtio-9p-pci,fsdev=share,mount_tag=share",
        *nvme_args(disks),
        "-device", "e1000e",
    ]


def nvme_args(disks: Sequence[tuple[Path, int]]) -> list[str]:
    """One NVMe controller per disk; the LBA size is the namespace's format (LBADS)."""
    args = []
    for i, (disk, lba_size) in enumerate(disks):
        if lba_size not in (512, 1024, 2048, 4096):
            raise GuestError(f"NVMe logical block size {lba_size}: use 512, 1024, 2048 or 4096")
        size = "" if lba_size == 512 else \
            f",logical_block_size={lba_size},physical_block_size={lba_size}"
        args += ["-drive", f"file={disk},if=none,id=nvm{i},format=raw",
                 "-device", f"nvme,serial=rllab-lba{lba_size},drive=nvm{i}{size}"]
    return args


def run(cmd: str, timeout: float = 180.0, share: Path | None = None, disk_mb: int = 64,
        memory_mb: int = 1024, cpus: int = 2, image: GuestImage | None = None,
        lba_sizes: Sequence[int] = NVME_LBA_SIZES) -> GuestRun:
    """Boot the guest, run `cmd` (a /bin/sh command line in the chrooted host root), and
    return its exit status and output. One NVMe controller per entry of `lba_sizes`
    (its namespace's logical block size), each backed by a fresh raw disk image of
    `disk_mb` MiB; `share` (default: a new temporary dir) is the guest's /run/share."""
    image = image or build()
    share = Path(share) if share else Path(tempfile.mkdtemp(prefix="redleaf-guest-"))
    share.mkdir(parents=True, exist_ok=True)
    (share / STATUS_FILE).unlink(missing_ok=True)
    accel = choose_accel()
    with tempfile.TemporaryDirectory(prefix="redleaf-disk-") as tmp:
        disks = []
        for i, lba_size in enumerate(lba_sizes):
            disk = Path(tmp) / f"nvme{i}.img"
            with open(disk, "wb") as f:
                f.truncate(disk_mb << 20)
            disks.append((disk, lba_size))
        argv = qemu_command(image, share, disks, cmd, accel, memory_mb, cpus)
        start = time.monotonic()
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stdout or b"").decode("utf-8", "replace")[-3000:]
            raise GuestError(f"the guest did not finish within {timeout} s; console tail:\n{tail}") from None
        seconds = time.monotonic() - start
    console = (done.stdout + done.stderr).decode("utf-8", "replace").replace("\r\n", "\n")
    status_file = share / STATUS_FILE
    if not status_file.exists():
        raise GuestError(f"the guest reported no exit status (qemu exit {done.returncode}); "
                         f"console tail:\n{console[-3000:]}")
    status = int(status_file.read_text().strip() or "-1")
    output = console
    if START_MARK in console:
        output = console.split(START_MARK, 1)[1].split("\n", 1)[-1]
        output = output.rsplit(END_MARK, 1)[0]
    return GuestRun(status, output, console, share, seconds, accel)


def run_in_guest(cmd: str, timeout: float = 180.0) -> tuple[int, str]:
    """Run `cmd` in a fresh guest: (exit status, output)."""
    result = run(cmd, timeout)
    shutil.rmtree(result.share, ignore_errors=True)
    return result.status, result.output


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m images.guest",
                                     description="Build the QEMU test guest or run a command in it.")
    parser.add_argument("action", choices=["build", "run"])
    parser.add_argument("command", nargs="?", default="uname -a")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    if args.action == "build":
        image = build()
        print(f"{image.version}: {image.kernel} {image.initramfs}")
        return 0
    result = run(args.command, args.timeout)
    print(result.output, end="")
    print(f"[guest: exit status {result.status}, {result.seconds:.1f} s, {result.accel}]")
    return result.status


if __name__ == "__main__":
    raise SystemExit(main())
