"""`LabView`: the whole live lab in one widget (what `%redleaf dashboard` shows).

    view = LabView(session); view.start_traffic(); view.start(); display(view)

It owns ONE `Sampler` thread (the dashboard's), and registers on it the domain
table, the heap view, one `DriverPanel` per registered workload and the bokeh
`LiveDashboard`, so every view is written by that one thread from the same
`Tick`. `close()` stops the sampler (traffic belongs to the session).

Threads: construct, display and close from the notebook's main thread.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..dashboards.live import LiveDashboard
from ..live.sampler import Sampler
from ..live.session import LabSession
from .driver import DriverPanel
from .views import DomainTable, HeapView


class LabView:
    def __init__(self, session: LabSession, period: float = 0.2, window_s: float = 60.0,
                 bokeh: bool = True) -> None:
        self.session = session
        self.sampler = Sampler(session.kernel, session.workloads, period=period)
        self.domains = DomainTable()
        self.heap = HeapView()
        self.panels = {name: DriverPanel(session, wl) for name, wl in session.workloads.items()}
        self.dashboard = LiveDashboard(session.workloads, window_s=window_s) if bokeh else None
        self.sampler.add_listener(self.domains.update)
        self.sampler.add_listener(self.heap.update)
        for panel in self.panels.values():
            self.sampler.add_listener(panel.update)
        if self.dashboard is not None:
            self.sampler.add_listener(self.dashboard.update)
        self.sampler.tick()  # first values before anything is shown
        parts: list[Any] = [w.HTML("<h3 style='margin:4px 0'>RedLeaf Lab: live system</h3>")]
        if self.dashboard is not None:
            parts.append(self.dashboard.widget())
        parts += [panel.widget for panel in self.panels.values()]
        parts.append(w.HBox([self.domains.widget, self.heap.widget]))
        self.widget = w.VBox(parts)

    def start(self) -> LabView:
        self.sampler.start()
        return self

    def start_traffic(self) -> None:
        for panel in self.panels.values():
            panel.start()

    def close(self) -> None:
        self.sampler.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
