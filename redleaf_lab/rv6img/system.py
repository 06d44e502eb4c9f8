"""Boot Rv6: a block device behind its shadow, the fs domain, the core domain.

`boot_rv6(kernel, image=..., device="membdev"|"nvme", console=...)` puts an image (mkfs's
default if none) on the device, loads the driver (`membdev` over a MemStore, or the NVMe
driver over the embedded controller model), wraps it in a shadow, loads `rv6fs` on the
shadow (mount + log recovery) and `rv6` (the core) with the program loader, and returns an
`Rv6System`. `system.run(cmdline)` runs a shell command line and returns (status, output);
`system.image()` reads the device back as an image for fsck.

Ownership: the system holds the proxies; `kernel.shutdown()` (or `close()`) stops them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import MemStore
from ..heap import BLOCK_SIZE
from ..idl.shadow import ShadowPolicy, make_shadow
from .console import Console
from .layout import Image
from .mkfs import default_files, mkfs
from .programs import ProgramServices

FS_NAME = "rv6fs"


@dataclass
class Rv6System:
    kernel: Any
    core: Any
    console: Console
    bdev: Any  # the shadow of the block driver
    driver: str  # the block driver's domain name
    store: Any  # MemStore or the NVMe device
    services: ProgramServices

    @property
    def fs(self) -> Any:
        return self.kernel.proxy(FS_NAME)

    def run(self, cmdline: str) -> tuple[int, str]:
        """Run `sh -c cmdline`; (exit status, console output)."""
        self.console.take_output()
        status = self.core.system(cmdline)
        return status, self.console.take_output()

    def image(self) -> Image:
        """The device's blocks, read through the driver (the state a power cut would leave)."""
        return read_device(self.bdev)


def read_device(bdev: Any) -> Image:
    from ..heap import Block, RRef

    n = bdev.num_blocks()
    out = np.empty((n, BLOCK_SIZE), np.uint8)
    buf = RRef.new(Block)
    for b in range(n):
        buf = bdev.read(b, buf)
        out[b] = buf.readonly()
    buf.drop()
    return out


def load_image_into(bdev: Any, image: Image) -> None:
    from ..heap import Block, RRef

    buf = RRef.new(Block)
    view = buf.array()
    for b in range(len(image)):
        view[:] = image[b]
        bdev.write(b, buf)
    del view
    buf.drop()


def boot_rv6(kernel: Any, image: Image | None = None, device: str = "membdev",
             console: Console | None = None, blocks: int | None = None,
             policy: ShadowPolicy | None = None, driver_name: str | None = None,
             membdev_code: str | Path = "membdev") -> Rv6System:
    """`driver_name`: the block driver's domain name (default: the driver's own), so Rv6
    can share a kernel that already runs a `membdev` (the notebook's lab session).
    `membdev_code`: the driver loaded for device "membdev" (a name or a folder: tests
    put deliberately broken drivers under Rv6 to prove its checks catch them)."""
    if image is None:
        image = mkfs(blocks or 4096, default_files())
    console = console or Console()
    if device == "membdev":
        store: Any = MemStore(len(image))
        store.write_many(np.arange(len(image)), image)
        driver = driver_name or "membdev"
        kernel.load(membdev_code, name=driver, store=store)
        bdev = make_shadow(kernel, driver, policy or ShadowPolicy(max_restarts=10_000))
    elif device == "nvme" or device.startswith("vfio:"):
        from ..devices.select import open_nvme

        # "nvme": the embedded controller model; "vfio:BDF": a real controller bound to
        # vfio-pci (the image is written over the start of its namespace)
        store = open_nvme(kernel, "sim", blocks=max(len(image), 1024)) if device == "nvme" \
            else open_nvme(kernel, device)
        driver = driver_name or "nvme"
        kernel.load("nvme", name=driver, device=store)
        bdev = make_shadow(kernel, driver, policy or ShadowPolicy(max_restarts=10_000))
        if bdev.num_blocks() < len(image):
            raise ValueError(f"the NVMe namespace has {bdev.num_blocks()} blocks, the image "
                             f"{len(image)}")
        load_image_into(bdev, image)
    else:
        raise ValueError(f"unknown device {device!r} (membdev, nvme or vfio:BDF)")
    kernel.load(FS_NAME, bdev=bdev, console=console)
    services = ProgramServices(kernel, FS_NAME)
    core = kernel.load("rv6", fs=kernel.proxy(FS_NAME), services=services)
    services.attach_core(core)
    return Rv6System(kernel, core, console, bdev, driver, store, services)
