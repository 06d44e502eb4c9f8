"""The microkernel library: boot, domains, loader, threads, faults, events.

`Kernel`, `boot` and `DomainRow` are imported lazily: the heap package needs
`kernel.context` while the kernel itself needs the heap.
"""

from typing import Any

from .context import ROOT, current_domain, thread_state
from .domain import CRASHED, LOADING, RESTARTING, RUNNING, STOPPED, Domain, DomainContext
from .events import Event, EventBus
from .faults import FaultPlan, Faults

__all__ = ["CRASHED", "LOADING", "RESTARTING", "ROOT", "RUNNING", "STOPPED", "Domain",
           "DomainContext", "DomainRow", "Event", "EventBus", "FaultPlan", "Faults", "Kernel",
           "boot", "current_domain", "thread_state"]


def __getattr__(name: str) -> Any:
    if name in ("Kernel", "boot", "DomainRow"):
        from . import kernel

        return getattr(kernel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
