"""The NVMe workload: the block workload of `workloads.BlockWorkload`, on the NVMe driver.

It creates an embedded NVMe controller model (`devices.sim_nvme.SimNvme`, inline
processing by default, or its own device thread), loads `drivers/nvme` with it as
the `device` capability, and runs the same stamped, verified batched block I/O
through a shadow. `check()` reads the namespace's media directly, so a lost
acknowledged write is caught whatever the driver says.

Ownership: the workload owns the device. `close()` stops the driver domain before
it frees the model, so no driver code can touch a freed register window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices.sim_nvme import SimNvme
from ..heap import BLOCK_SIZE
from ..idl.shadow import ShadowPolicy
from .workloads import BlockWorkload, register_workload


class NvmeWorkload(BlockWorkload):
    """Stamped batched 4 KiB block I/O through a shadow of the NVMe driver."""

    name = "nvme"
    domain = "nvme"

    def __init__(self, kernel: Any, blocks: int = 4096, batch: int = 32,
                 policy: ShadowPolicy | None = None, threaded: bool = False) -> None:
        self.threaded = threaded
        super().__init__(kernel, blocks=blocks, batch=batch, policy=policy)

    def _load_driver(self, kernel: Any, blocks: int) -> int:
        self.device = SimNvme(kernel.heap, blocks=blocks, threaded=self.threaded)
        kernel.load("nvme", device=self.device)
        return blocks

    def media(self) -> np.ndarray:
        return self.device.media().reshape(-1, BLOCK_SIZE)

    def close(self) -> None:
        super().close()
        if self.domain in self.kernel.domains and not self.kernel._closed:
            self.kernel.stop(self.domain)
        self.device.close()


register_workload("nvme", NvmeWorkload)
