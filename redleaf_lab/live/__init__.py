"""The live lab, without Jupyter: sessions, driver workloads and the sampler thread.

`LabSession` boots a kernel with domains and registered workloads (membdev and
NVMe block I/O, ixgbe forwarding, each behind a shadow);
`workloads.register_workload` is how a driver joins the panels, dashboards and
the demo; `Sampler` is the one thread that turns the running lab into `Tick`s.
"""

from . import (
    net_workload,  # noqa: F401 - importing it registers the "ixgbe" workload
    nvme_workload,  # noqa: F401 - importing it registers the "nvme" workload
)
from .sampler import DomainCounters, HeapSummary, Sampler, Tick, heap_summary
from .session import PANIC_MODES, LabSession
from .workloads import (
    BlockWorkload,
    Sample,
    Workload,
    create_workload,
    register_workload,
    workload_names,
)

__all__ = ["PANIC_MODES", "BlockWorkload", "DomainCounters", "HeapSummary", "LabSession",
           "Sample", "Sampler", "Tick", "Workload", "create_workload", "heap_summary",
           "register_workload", "workload_names"]
