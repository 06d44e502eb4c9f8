"""Trusted kernel-side device objects that are handed to driver domains as capabilities.

A driver domain cannot create or reach a device by itself: the code that loads
it (a test, the CLI, a notebook) creates the device object and passes it to
`kernel.load(..., store=...)`. The kernel keeps it with the domain's other
capabilities, so the same object is handed to every incarnation and the data
it holds survives a crash and restart of the driver.

`memstore.MemStore` is the backing store of the in-memory block device driver
(drivers/membdev).
"""

from .memstore import MemStore

__all__ = ["MemStore"]

# The Intel 82599 model (sim backend) and its register map; see sim_ixgbe.py.
from . import ixgbe_regs
from .sim_ixgbe import IxgbeStats, SimIxgbe, line_rate_pps

__all__ += ["IxgbeStats", "SimIxgbe", "ixgbe_regs", "line_rate_pps"]

# NVMe backend selection, "sim" or "vfio:BDF" (select.py; imported lazily: it imports the kernel).
__all__ += ["boot_nvme", "open_nvme"]


def __getattr__(name: str) -> object:
    if name in ("open_nvme", "boot_nvme"):
        from . import select

        return getattr(select, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
