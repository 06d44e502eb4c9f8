"""ipywidgets of the live lab: the domain table, the heap view, driver panels, `LabView`.

All are written only by a `Sampler`'s thread (from its `Tick`s); buttons call the
`LabSession`. See each module's docstring for the threading rules.
"""

from .driver import PANIC_CHOICES, DriverPanel
from .lab import LabView
from .views import DomainTable, HeapView

__all__ = ["PANIC_CHOICES", "DomainTable", "DriverPanel", "HeapView", "LabView"]
