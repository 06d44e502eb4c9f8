"""Backend selection for the NVMe device: "sim" (the C model) or "vfio:BDF" (hardware).

Purpose: one place that turns a device spec into a `Device` for drivers/nvme, so the
CLI, notebooks and tests pick a backend with a string and the driver never knows:

    kernel = redleaf_lab.boot(heap_bytes=VFIO_HEAP_BYTES)
    device = open_nvme(kernel, "vfio:0000:00:04.0")   # or "sim", "sim:threaded"
    bdev = kernel.load("nvme", device=device)

`boot_nvme(spec)` does all three and sizes the heap for the backend: VFIO pins the whole
shared-heap arena for DMA (vfio/backend.py), so it boots with a 64 MiB heap, whose IOVAs
(4 GiB + 64 MiB) lie well inside a 39-bit IOMMU. Specs: "sim", "sim:threaded",
"vfio:DDDD:BB:DD.F", or "vfio" alone for the only NVMe function bound to vfio-pci.
Errors: ValueError for an unknown spec; VfioError (redleaf_lab.vfio.errors) for VFIO
problems, naming the cause and the fix. The caller owns the device: `close()` it after
the kernel has stopped the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..kernel.kernel import Kernel, boot
from .device import Device

VFIO_HEAP_BYTES = 64 << 20


def open_nvme(kernel: Kernel, spec: str = "sim", **options: Any) -> Device:
    """A Device for drivers/nvme, by spec (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "sim":
        from .sim_nvme import SimNvme

        if rest not in ("", "threaded", "inline"):
            raise ValueError(f"unknown sim option {rest!r} in {spec!r}: use sim or sim:threaded")
        return SimNvme(kernel.heap, threaded=rest == "threaded", **options)
    if kind == "vfio":
        from redleaf_lab.vfio import pci
        from redleaf_lab.vfio.backend import VfioNvme
        from redleaf_lab.vfio.errors import VfioError

        bdf = rest
        if not bdf:
            bound = [b for b in pci.find_by_class(pci.NVME_CLASS) if pci.driver(b) == "vfio-pci"]
            if len(bound) != 1:
                raise VfioError(f"'vfio' needs a PCI address when not exactly one NVMe function "
                                f"is bound to vfio-pci (bound: {bound or 'none'}); use vfio:BDF")
            bdf = bound[0]
        return VfioNvme(bdf, kernel.heap, **options)
    raise ValueError(f"unknown NVMe device spec {spec!r}: use 'sim', 'sim:threaded' or "
                     "'vfio:DDDD:BB:DD.F'")


@dataclass
class NvmeSetup:
    kernel: Kernel
    device: Device
    bdev: Any  # the nvme driver's BDev proxy

    def close(self) -> None:
        """Shut the kernel down (stopping the driver), then close the device."""
        if not self.kernel._closed:
            self.kernel.shutdown()
        close = getattr(self.device, "close", None)
        if callable(close):
            close()


def boot_nvme(spec: str = "sim", heap_bytes: int | None = None, **options: Any) -> NvmeSetup:
    """Boot a kernel sized for the backend, open the device, load drivers/nvme on it."""
    if heap_bytes is None:
        heap_bytes = VFIO_HEAP_BYTES if spec.startswith("vfio") else 1 << 30
    kernel = boot(heap_bytes=heap_bytes, max_objects=1 << 16)
    try:
        device = open_nvme(kernel, spec, **options)
    except BaseException:
        kernel.shutdown()
        raise
    try:
        bdev = kernel.load("nvme", device=device)
    except BaseException:
        kernel.shutdown()
        getattr(device, "close", lambda: None)()
        raise
    return NvmeSetup(kernel, device, bdev)
