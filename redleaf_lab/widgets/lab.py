"""`LabView`: the whole live lab in one widget (what `%redleaf dashboard` shows).

    view = LabView(session, calls=bench_calls_rows); display(view)

Laid out for a 1366x768 projector: the first screen holds the per-driver rate charts
(left, about 780 px wide) and, beside them, one compact panel per driver with its
"inject panic" button and counters (right, 540 px), and with `rv6=True` Rv6's shell
panel under them (`rv6img.shell_widget`: run a command line, panic its block driver
`rv6disk` while it runs); below come the recovery-time and call-cost charts, then the
domain table and the heap view.

It does not sample on its own: it listens to the session's one `Sampler`
(`session.sampler`, recording since boot). The dashboard first loads the sampler's
history (under the sampler's lock, so no tick falls between the history and the
first live update), so the charts show everything since the kernel booted. Every view
is written by that one thread from the same `Tick`. `close()` detaches the views (the
sampler and the traffic belong to the session).

Threads: construct, display and close from the notebook's main thread.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..dashboards.live import LiveDashboard
from ..live.sampler import Listener
from ..live.session import LabSession
from .driver import DriverPanel
from .views import DomainTable, HeapView


class LabView:
    def __init__(self, session: LabSession, calls: dict[str, Any] | None = None,
                 bokeh: bool = True, rv6: bool = False) -> None:
        self.session = session
        self.sampler = session.sampler
        self.domains = DomainTable()
        self.heap = HeapView()
        self.panels = {name: DriverPanel(session, wl) for name, wl in session.workloads.items()}
        self.dashboard = (LiveDashboard(session.workloads, calls=calls,
                                        period=self.sampler.period,
                                        smooth_s=self.sampler.smooth_s) if bokeh else None)
        self._listeners: list[Listener] = [self.domains.update, self.heap.update]
        self._listeners += [panel.update for panel in self.panels.values()]
        self.rv6_panel: Any = None
        if rv6:  # boots Rv6 on the session's kernel once (rv6img.lab.rv6_for)
            from ..rv6img.shell_widget import Rv6Panel

            self.rv6_panel = Rv6Panel(session.kernel)
            self._listeners.append(self.rv6_panel.update)
        for listener in self._listeners:
            self.sampler.add_listener(listener)
        if self.dashboard is not None:
            self._listeners.append(self.dashboard.update)
            self.sampler.add_listener(self.dashboard.update, replay=self.dashboard.load)
        title = w.HTML("<b style='font-size:15px'>RedLeaf Lab: live system</b> <small>"
                       "each driver's chart shows its own crashes (red, numbered); press "
                       "<b>inject panic</b> to add one</small>")
        controls = w.VBox([panel.widget for panel in self.panels.values()]
                          + ([self.rv6_panel.widget] if self.rv6_panel is not None else []),
                          layout=w.Layout(margin="0 0 0 6px"))
        top: list[Any] = [controls]
        details: list[Any] = []
        if self.dashboard is not None:
            top.insert(0, self.dashboard.widget())
            details.append(self.dashboard.details_widget())
        screen = w.HBox(top, layout=w.Layout(align_items="flex-start"))
        screen.add_class("redleaf-projector")
        self.widget = w.VBox([title, screen, *details,
                              w.HBox([self.domains.widget, self.heap.widget])])

    def start(self) -> LabView:
        """The session's sampler records from boot; kept for old callers."""
        self.sampler.start()
        return self

    def start_traffic(self) -> None:
        for panel in self.panels.values():
            panel.start()

    def close(self) -> None:
        for listener in self._listeners:
            self.sampler.remove_listener(listener)
        self._listeners = []

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
