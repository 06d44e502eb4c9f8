"""One panel per driver workload: traffic, workload choice, panic injection, live counters.

    panel = DriverPanel(session, session.workloads["membdev"])
    sampler.add_listener(panel.update)
    panel.widget                                  # a VBox to display

Controls: "start" / "stop" traffic, the workload mode (`Workload.modes`),
the panic mode (once | every T s | random p | asynchronous) with its T and p,
"inject panic", "clear faults" and "restart". Read-outs: throughput, crashes,
restarts, recoveries, last and p50 recovery time, the armed fault plan, errors.

Button handlers call the session (the kernel's fault and lifecycle operations),
which returns at once; the traffic runs on the workload's own thread, so the
buttons stay responsive. Read-outs are written only by `update`, on the sampler
thread, from the `Tick` (the event-bus counters and the workload's sampled
rates), never by reading kernel internals. A button never sets a read-out: what
the panel shows is what the sampler saw. The panel is compact (540 px wide, about
150 px high, "inject panic" first) so three fit beside the charts on a 1366x768
projector; its box carries the CSS class `redleaf-panel-<name>`.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as w
import numpy as np

from ..live.sampler import Tick
from ..live.session import LabSession
from ..live.workloads import Workload

PANIC_CHOICES = (("once (next call)", "once"), ("every T s", "every"),
                 ("random p per call", "random"), ("asynchronous (now)", "async"))


class DriverPanel:
    def __init__(self, session: LabSession, workload: Workload) -> None:
        self.session = session
        self.workload = workload
        name = workload.name
        small = {"description_width": "initial"}
        self.start_button = w.Button(description="start", icon="play", button_style="success",
                                     tooltip="start traffic", layout=w.Layout(width="80px"))
        self.stop_button = w.Button(description="stop", icon="stop", tooltip="stop traffic",
                                    layout=w.Layout(width="80px"))
        self.mode = w.Dropdown(options=list(workload.modes), value=workload.mode,
                               description="workload", style=small,
                               layout=w.Layout(width="160px"))
        self.panic_mode = w.Dropdown(options=list(PANIC_CHOICES), value="once",
                                     description="mode", style=small,
                                     layout=w.Layout(width="200px"))
        self.period = w.BoundedFloatText(value=1.0, min=0.05, max=60.0, step=0.1,
                                         description="T (s)", style=small,
                                         layout=w.Layout(width="105px"))
        self.probability = w.BoundedFloatText(value=0.01, min=0.0, max=1.0, step=0.01,
                                              description="p", style=small,
                                              layout=w.Layout(width="95px"))
        self.panic_button = w.Button(description="inject panic", icon="bolt",
                                     button_style="danger", layout=w.Layout(width="120px"))
        self.panic_button.add_class("redleaf-panic")
        self.clear_button = w.Button(description="clear faults", layout=w.Layout(width="100px"))
        self.restart_button = w.Button(description="restart", icon="refresh",
                                       layout=w.Layout(width="90px"))
        self.throughput = w.HTML(value="0.0 MB/s")
        self.crashes = w.HTML(value="0")
        self.restarts = w.HTML(value="0")
        self.recoveries = w.HTML(value="0")
        self.recovery_time = w.HTML(value="-")
        self.status = w.HTML(value="")
        for label, cls in ((self.crashes, "redleaf-crashes"), (self.restarts, "redleaf-restarts"),
                           (self.throughput, "redleaf-throughput")):
            label.add_class(cls)
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.workload.stop())
        self.mode.observe(self._mode_changed, names="value")
        self.panic_button.on_click(lambda _b: self.inject())
        self.clear_button.on_click(lambda _b: self.session.clear_faults(workload.domain))
        self.restart_button.on_click(lambda _b: self._restart())

        def readout(title: str, value: w.HTML) -> w.HBox:
            return w.HBox([w.HTML(f"<small>{title}&nbsp;</small>"), value],
                          layout=w.Layout(margin="0 10px 0 0"))

        row = w.Layout(margin="0", align_items="center")
        self.widget = w.VBox([
            w.HBox([w.HTML(f"<b>{name}</b> <small>(domain <code>{workload.domain}</code>, "
                           "behind a shadow)</small>"), readout("", self.throughput)],
                   layout=w.Layout(justify_content="space-between")),
            w.HBox([readout("crashes", self.crashes), readout("restarts", self.restarts),
                    readout("recoveries", self.recoveries),
                    readout("recovery last / p50", self.recovery_time)], layout=row),
            w.HBox([self.panic_button, self.panic_mode, self.period, self.probability],
                   layout=row),
            w.HBox([self.start_button, self.stop_button, self.mode, self.clear_button,
                    self.restart_button], layout=row),
            self.status,
        ], layout=w.Layout(border="1px solid #ddd", padding="2px 6px", margin="0 0 4px 0",
                           width="540px"))
        self.widget.add_class(f"redleaf-panel-{name}")

    # -- controls (UI thread) -----------------------------------------------------------
    def start(self) -> None:
        self.workload.start(str(self.mode.value))

    def _mode_changed(self, change: dict[str, Any]) -> None:
        if self.workload.running:
            self.workload.start(str(change["new"]))

    def inject(self) -> str:
        """Inject a panic with the selected mode (what the "inject panic" button does)."""
        try:
            what = self.session.panic(self.workload.domain, str(self.panic_mode.value),
                                      period=float(self.period.value),
                                      p=float(self.probability.value))
        except Exception as exc:  # a bad value must not kill the panel
            what = f"{type(exc).__name__}: {exc}"
        self.last_action = what
        return what

    def _restart(self) -> None:
        try:
            self.session.restart(self.workload.domain)
        except Exception as exc:
            self.last_action = f"{type(exc).__name__}: {exc}"

    last_action = ""

    # -- read-outs (sampler thread) ---------------------------------------------------------
    def update(self, tick: Tick) -> None:
        wl = self.workload
        mbps, mpps = tick.rates.get(wl.name, (0.0, 0.0))
        c = tick.counters.get(wl.domain)
        if getattr(wl, "unit", "MB/s") == "Mpps":  # a NIC: packets first
            _set(self.throughput, f"<b>{mpps:6.3f} Mpps</b> ({mbps:.1f} MB/s)")
        else:
            _set(self.throughput, f"<b>{mbps:8.1f} MB/s</b> ({mpps * 1e3:.1f} kIOPS)")
        if c is not None:
            _set(self.crashes, str(c.crashes))
            _set(self.restarts, str(c.restarts))
            _set(self.recoveries, str(c.recoveries))
            if c.recovery_ms:
                p50 = float(np.percentile(c.recovery_ms, 50))
                last = c.last_recovery_ms
                _set(self.recovery_time,
                     f"{last:.2f} / {p50:.2f} ms" if not math.isnan(last) else "-")
        plan = c.fault_plan if c is not None else ""
        parts = ["traffic " + ("<b>running</b> (" + wl.mode + ")" if wl.running else "stopped")]
        if plan:
            parts.append(f"fault armed: {plan}")
        if self.last_action:
            parts.append(f"last action: {html.escape(self.last_action)}")
        if wl.errors:
            parts.append(f"<span style='color:#cf222e'>errors {wl.errors}: {html.escape(wl.last_error)}</span>")
        text = "; ".join(parts)
        _set(self.status, "<div style='white-space:nowrap;overflow:hidden;text-overflow:"
             f"ellipsis;max-width:525px;font-size:11px' title='{html.escape(text)}'>"
             f"{text}</div>")


def _set(widget: w.HTML, value: str) -> None:
    if widget.value != value:
        widget.value = value
