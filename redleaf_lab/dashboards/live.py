"""The live bokeh dashboard: one rate chart per driver with its own crashes marked, the
recovery time of every crash per driver, and the call-cost chart.

    dash = LiveDashboard(session.workloads, calls=bench_calls_rows)
    dash.load(sampler); sampler.add_listener(dash.update)   # history first, then live
    dash.widget()            # the rate charts, a jupyter_bokeh BokehModel (an ipywidget)
    dash.details_widget()    # recovery times and call cost, a second BokehModel
    save_html(sampler, path, calls=rows)    # the same dashboard as offline HTML

Rate charts: one per workload (MB/s for block drivers, Mpps for the NIC), sharing one
time axis in seconds since the kernel booted and showing the whole history. Each draws
the raw per-period rate as a thin line and the rate over the sampler's trailing window
(1 s) as a bold one: the raw line shows the noise honestly, the bold one the signal.
A driver's crashes are drawn on ITS chart only: a red band from the panic to the
recovery (usually under a millisecond, so it looks like a line), a red line at the panic
and the crash's number (per driver, from 1) at the top. The recovery-time chart has one
labelled series per driver: x is that driver's crash number, with integer ticks.

Data: the dashboard keeps its own copies (`series`, `marks`); it never reads
`source.data` back (jupyter_bokeh 4.1.0 duplicates streamed rows on the Python side
once a browser shows the plot). Rates are appended with `source.stream`; a driver's
marks are replaced wholesale whenever one changes (they are few), so a browser that
missed a message still ends up right. NaN rows break a line where traffic stopped.

A browser that attaches later (Voila renders after the notebook ran; a page reload)
gets the document as it is NOW: `LiveBokehModel` serialises the current document when
a frontend asks for the widget's state, instead of the snapshot jupyter_bokeh took when
the widget was made. So crashes from before the page loaded are on the charts.

Threads: `update` is called from one thread only (the sampler's); every change to the
documents and every serialisation of them holds `lock`. `save_html` builds fresh models.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import AdaptiveTicker, ColumnDataSource
from bokeh.models.annotations import LabelSet
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.resources import INLINE

from ..live.sampler import CrashMark, Row, Sampler, Tick
from .calls import call_bars, calls_figure

CRASH_COLOUR = "#cf222e"
LABEL_TOP = 112  # px above the bottom of a chart's frame: where crash numbers are written


def crash_source_name(name: str) -> str:
    return f"redleaf-crashes-{name}"


class LiveDashboard:
    def __init__(self, workloads: Mapping[str, Any], calls: dict[str, Any] | None = None,
                 capacity: int = 9000, width: int = 780, chart_height: int = 170,
                 period: float = 0.2, smooth_s: float = 1.0) -> None:
        """`workloads`: name -> Workload (its `unit`, "MB/s" or "Mpps", picks the line)."""
        self.names = list(workloads)
        self.units = {n: getattr(workloads[n], "unit", "MB/s") for n in self.names}
        self.domains = {n: getattr(workloads[n], "domain", n) for n in self.names}
        self.capacity = capacity
        self.lock = threading.RLock()
        self.series = {n: deque[Row](maxlen=capacity) for n in self.names}
        self.marks: dict[str, list[CrashMark]] = {n: [] for n in self.names}
        self.updates = 0
        self.sources = {n: ColumnDataSource({"t": [], "raw": [], "smooth": []},
                                            name=f"redleaf-rate-{n}") for n in self.names}
        self.crash_sources = {n: ColumnDataSource(_mark_data([]), name=crash_source_name(n))
                              for n in self.names}
        self.recovery_sources = {n: ColumnDataSource({"n": [], "ms": []},
                                                     name=f"redleaf-recovery-{n}")
                                 for n in self.names}
        self.calls_source = ColumnDataSource(call_bars(calls))
        self.charts = self._rate_charts(width, chart_height, period, smooth_s)
        self.recovery_figure = self._recovery_chart()
        self.calls_figure = calls_figure(self.calls_source, calls)
        self.details = row(self.recovery_figure, self.calls_figure)
        self._model: Any = None
        self._details_model: Any = None

    # -- figures ------------------------------------------------------------------------
    def _rate_charts(self, width: int, height: int, period: float, smooth_s: float) -> Any:
        figures: list[Any] = []
        for i, name in enumerate(self.names):
            unit, colour = self.units[name], Category10_10[i % 10]
            last = i == len(self.names) - 1
            shared: dict[str, Any] = {"x_range": figures[0].x_range} if figures else {}
            title = f"{name}: {unit}"
            if i == 0:
                title += (f"  (thin: per {period:g} s, bold: last {smooth_s:g} s; red: this "
                          "driver's crashes, panic → recovery)")
            fig = figure(title=title,
                         height=height + (25 if last else 0), width=width,
                         y_axis_label=unit, x_axis_label="seconds since boot",
                         tools="pan,xwheel_zoom,box_zoom,reset,save", name=f"rate-{name}",
                         **shared)
            y_range: Any = fig.y_range  # a DataRange1d; bokeh's stubs type it as Range
            y_range.start = 0
            fig.xaxis.visible = last
            marks = self.crash_sources[name]
            fig.vstrip(x0="left", x1="right", source=marks, fill_color=CRASH_COLOUR,
                       fill_alpha=0.3, line_alpha=0)
            fig.vspan(x="left", source=marks, line_color=CRASH_COLOUR, line_width=2,
                      line_alpha=0.75)
            fig.add_layout(LabelSet(x="left", y="label_y", y_units="screen", text="label",
                                    source=marks, text_color=CRASH_COLOUR,
                                    text_font_size="9pt", x_offset=3))
            source = self.sources[name]
            fig.line("t", "raw", source=source, color=colour, line_width=1, alpha=0.4)
            fig.line("t", "smooth", source=source, color=colour, line_width=2.5)
            _title(fig).text_font_size = "10pt"
            fig.min_border_top = 2
            fig.min_border_bottom = 2
            figures.append(fig)
        return column(*figures, name="rate-charts")

    def _recovery_chart(self) -> Any:
        fig = figure(title="recovery time of each crash, per driver (ms)", height=380,
                     width=520, x_axis_label="crash number (per driver)",
                     y_axis_label="ms", tools="pan,wheel_zoom,reset,save", name="recovery")
        for i, name in enumerate(self.names):
            colour = Category10_10[i % 10]
            source = self.recovery_sources[name]
            fig.line("n", "ms", source=source, color=colour, alpha=0.5, legend_label=name)
            fig.scatter("n", "ms", source=source, color=colour, size=7, legend_label=name)
        fig.xaxis.ticker = AdaptiveTicker(min_interval=1, num_minor_ticks=0)
        y_range: Any = fig.y_range
        y_range.start = 0
        fig.legend.location = "top_left"
        _title(fig).text_font_size = "10pt"
        return fig

    def set_calls(self, rows: dict[str, Any]) -> None:
        """Show measured `bench calls` rows (replaces the chart's data wholesale)."""
        data = call_bars(rows)
        with self.lock:
            y_range: Any = self.calls_figure.y_range  # a FactorRange; stubs say Range
            y_range.factors = list(reversed(data["label"]))
            self.calls_source.data = data

    # -- data -----------------------------------------------------------------------------
    def load(self, sampler: Sampler) -> None:
        """Take everything `sampler` recorded so far (replaces the data wholesale)."""
        with self.lock:
            for name in self.names:
                rows = list(sampler.history.get(name, ()))[-self.capacity:]
                self.series[name].clear()
                self.series[name].extend(rows)
                self.sources[name].data = _rate_data(rows, self.units[name])
                self._set_marks(name, sampler.crash_marks(self.domains[name]))

    def update(self, tick: Tick) -> None:
        """Append this tick's rates and redraw changed marks (one thread only)."""
        with self.lock:
            for name in self.names:
                sample = tick.samples.get(name)
                if sample is not None:
                    self.series[name].append(sample)
                    self.sources[name].stream(_rate_data([sample], self.units[name]),
                                              rollover=self.capacity)
            changed = {m.domain for m in tick.marks}
            for name in self.names:
                domain = self.domains[name]
                if domain in changed:
                    marks = self.marks[name]
                    for mark in (m for m in tick.marks if m.domain == domain):
                        if marks and marks[-1].n == mark.n:
                            marks[-1] = mark
                        elif not marks or mark.n > marks[-1].n:
                            marks.append(mark)
                    self._set_marks(name, marks)
            self.updates += 1

    def _set_marks(self, name: str, marks: list[CrashMark]) -> None:
        self.marks[name] = list(marks)
        self.crash_sources[name].data = _mark_data(self.marks[name])
        done = [m for m in self.marks[name] if m.recovery_ms is not None]
        self.recovery_sources[name].data = {"n": [m.n for m in done],
                                            "ms": [m.recovery_ms for m in done]}

    # -- output -------------------------------------------------------------------------
    def widget(self) -> Any:
        """The rate charts as an ipywidget (a `LiveBokehModel`), created once; the first
        call displays the inlined BokehJS loader (there is no CDN offline)."""
        if self._model is None:
            from bokeh.io import output_notebook

            output_notebook(resources=INLINE, hide_banner=True)
            self._model = _live_model(self.charts, self.lock)
        return self._model

    def details_widget(self) -> Any:
        """The recovery-time and call-cost charts as a second ipywidget."""
        if self._details_model is None:
            self.widget()
            self._details_model = _live_model(self.details, self.lock)
        return self._details_model

    def standalone(self) -> Any:
        """Everything in one layout (for a file; not for a dashboard shown as widgets)."""
        return column(self.charts, self.details)


def _rate_data(rows: list[Row], unit: str) -> dict[str, Any]:
    raw, smooth = (2, 4) if unit == "Mpps" else (1, 3)
    return {"t": [r[0] for r in rows], "raw": [r[raw] for r in rows],
            "smooth": [r[smooth] for r in rows]}


def _mark_data(marks: list[CrashMark]) -> dict[str, list[Any]]:
    def label(m: CrashMark) -> str:
        if m.recovery_ms is not None:
            return f"#{m.n}"
        return f"#{m.n} down" if m.t_recovered is None else f"#{m.n} restarted"

    return {"left": [m.t for m in marks],
            "right": [m.t_recovered if m.t_recovered is not None else m.t for m in marks],
            "n": [m.n for m in marks],
            "ms": [m.recovery_ms if m.recovery_ms is not None else math.nan for m in marks],
            "label": [label(m) for m in marks],
            # crashes close together: their numbers step down so they do not overlap
            "label_y": [LABEL_TOP - 12 * ((m.n - 1) % 3) for m in marks]}


def _live_model(root: Any, lock: Any) -> Any:
    from .bokeh_widget import LiveBokehModel

    return LiveBokehModel(root, lock=lock)


def save_html(sampler: Sampler, path: str | Path, calls: dict[str, Any] | None = None,
              title: str = "RedLeaf Lab dashboard") -> Path:
    """Write the dashboard of everything `sampler` recorded as standalone offline HTML."""
    from bokeh.io import save

    dash = LiveDashboard({n: sampler.workloads[n] for n in sorted(sampler.workloads)},
                         calls=calls, period=sampler.period, smooth_s=sampler.smooth_s)
    dash.load(sampler)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(dash.standalone(), filename=str(path), resources=INLINE, title=title)
    return path


def _title(fig: Any) -> Any:
    """A figure's Title model (bokeh's stubs allow str | None there)."""
    return fig.title
