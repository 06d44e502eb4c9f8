"""The live bokeh dashboard: throughput over time with crash/recovery markers, recovery
time per crash, and the call-cost chart next to RedLeaf's Table 1.

    dash = LiveDashboard(workload_names, window_s=60)
    sampler.add_listener(dash.update)          # one sampler thread writes the document
    dash.widget()                              # a jupyter_bokeh BokehModel (an ipywidget)
    dash.set_calls(bench_calls_rows)           # fill the call-cost chart
    save_html(sampler, path, calls=rows)       # the same dashboard as offline HTML

Data: the dashboard keeps its own ring buffers (`self.series`, `self.marks`,
`self.recoveries`) and only ever *appends* to the bokeh sources with
`source.stream(rows, rollover)`; it never reads `source.data` back (jupyter_bokeh
4.1.0 duplicates streamed rows on the Python side once a browser shows the plot).
The throughput plot draws one MB/s line per block workload, and a packet-rate plot
(sharing its time axis) one Mpps line per workload whose `unit` is "Mpps" (the NIC);
crashes are red triangles and recoveries green ones on the time axis (y = 0) of both. The standalone HTML inlines BokehJS (`resources=INLINE`), so it
opens without a network.

Threads: `update` must be called from one thread only (the sampler's): bokeh
documents are not thread-safe. `build_layout`/`save_html` build fresh models.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, FactorRange, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.resources import INLINE

from ..bench.calls import PAPER_CYCLES
from ..live.sampler import Sampler, Tick

PAPER_GHZ = 2.2  # the paper's Xeon: Table 1's cycles -> ns
CALL_ROWS = (("plain call", "plain_ns"), ("proxy", "proxy_ns"),
             ("proxy + RRef move", "proxy_rref_move_ns"),
             ("proxy + RRef borrow", "proxy_rref_borrow_ns"),
             ("thread queue", "thread_queue_ns"), ("mp.Pipe", "mp_pipe_ns"))


def paper_rows() -> list[tuple[str, float]]:
    """RedLeaf's Table 1 as (label, ns at 2.2 GHz)."""
    return [(f"paper: {name}", cycles / PAPER_GHZ) for name, cycles in PAPER_CYCLES.items()]


def call_bars(rows: dict[str, Any] | None) -> dict[str, list[Any]]:
    labels, values, colours = [], [], []
    for label, key in CALL_ROWS:
        if rows and isinstance(rows.get(key), (int, float)):
            labels.append(f"lab: {label}")
            values.append(float(rows[key]))
            colours.append("#4c78a8")
    for label, ns in paper_rows():
        labels.append(label)
        values.append(ns)
        colours.append("#f58518")
    return {"label": labels, "ns": values, "colour": colours}


class LiveDashboard:
    def __init__(self, workloads: Iterable[str] | Mapping[str, Any], window_s: float = 60.0,
                 capacity: int = 3000, calls: dict[str, Any] | None = None) -> None:
        """`workloads`: names, or a name -> Workload mapping (then a workload whose
        `unit` is "Mpps" is drawn in the packet-rate plot)."""
        self.names = list(workloads)
        units = ({n: getattr(workloads[n], "unit", "MB/s") for n in self.names}
                 if isinstance(workloads, Mapping) else {})
        self.packet_names = [n for n in self.names if units.get(n) == "Mpps"]
        self.domains = set(self.names)  # crash/recovery markers of these domains only
        self.capacity = capacity
        self.window_s = window_s
        self.series = {n: deque[tuple[float, float, float]](maxlen=capacity) for n in self.names}
        self.marks: deque[tuple[float, str]] = deque(maxlen=capacity)
        self.recoveries: list[float] = []
        self.updates = 0
        self.sources = {n: ColumnDataSource({"t": [], "mbps": [], "mpps": []})
                        for n in self.names}
        self.crash_source = ColumnDataSource({"t": [], "y": []}, name="redleaf-crash-markers")
        self.recovery_source = ColumnDataSource({"t": [], "y": []})
        self.recovery_times = ColumnDataSource({"crash": [], "ms": []})
        self.calls_source = ColumnDataSource(call_bars(calls))
        self.layout = self._build()
        self._model: Any = None

    # -- figures ------------------------------------------------------------------------
    def _build(self) -> Any:
        tput = figure(title="throughput (MB/s) with crashes ▼ and recoveries ▲", height=300,
                      width=600, x_axis_label="time (s)", y_axis_label="MB/s",
                      tools="pan,wheel_zoom,box_zoom,reset,save")
        x_range: Any = tput.x_range  # a DataRange1d; bokeh's stubs type it as Range
        x_range.follow = "end"
        x_range.follow_interval = self.window_s
        y_range: Any = tput.y_range
        y_range.start = 0
        plots = [tput]
        packets = None
        if self.packet_names:
            packets = figure(title="packet rate (Mpps) with crashes ▼ and recoveries ▲",
                             height=220, width=600, x_axis_label="time (s)",
                             y_axis_label="Mpps", x_range=tput.x_range,
                             tools="pan,wheel_zoom,box_zoom,reset,save")
            packets_y: Any = packets.y_range
            packets_y.start = 0
            packets.name = "packets"
            plots.append(packets)
        for i, name in enumerate(self.names):
            colour = Category10_10[i % 10]
            if packets is not None and name in self.packet_names:
                packets.line("t", "mpps", source=self.sources[name], line_width=2,
                             color=colour, legend_label=f"{name} Mpps")
            else:
                tput.line("t", "mbps", source=self.sources[name], line_width=2,
                          color=colour, legend_label=f"{name} MB/s")
        for plot in plots:
            plot.scatter("t", "y", source=self.crash_source, marker="inverted_triangle",
                         size=11, color="#cf222e", legend_label="crash")
            plot.scatter("t", "y", source=self.recovery_source, marker="triangle", size=9,
                         color="#1a7f37", alpha=0.7, legend_label="recovered")
            plot.legend.location = "top_left"
        tput.name = "throughput"

        rec = figure(title="recovery time per crash (ms)", height=220, width=600,
                     x_axis_label="crash #", y_axis_label="ms", tools="pan,wheel_zoom,reset")
        rec.scatter("crash", "ms", source=self.recovery_times, size=6, color="#1a7f37")
        rec.line("crash", "ms", source=self.recovery_times, color="#1a7f37", alpha=0.4)
        rec.name = "recovery"

        labels = list(self.calls_source.data["label"])
        calls = figure(title="cost of a call (ns, log scale) vs RedLeaf Table 1", height=520,
                       width=470, y_range=FactorRange(factors=labels), x_axis_type="log",
                       x_axis_label="ns", tools="save", x_range=Range1d(start=1, end=1e6))
        calls.hbar(y="label", right="ns", left=1, height=0.7, color="colour",
                   source=self.calls_source)
        calls.name = "calls"
        self._calls_fig = calls
        return row(column(*plots, rec), calls)

    def set_calls(self, rows: dict[str, Any]) -> None:
        """Show measured `bench calls` rows (replaces the chart's data wholesale)."""
        data = call_bars(rows)
        y_range: Any = self._calls_fig.y_range  # a FactorRange; stubs say Range
        y_range.factors = data["label"]
        self.calls_source.data = data

    # -- live updates (sampler thread) --------------------------------------------------------
    def update(self, tick: Tick, markers: Iterable[tuple[float, str, str]] = ()) -> None:
        """Append this tick's rates and marks (call from one thread only)."""
        for name in self.names:
            mbps, mpps = tick.rates.get(name, (0.0, 0.0))
            self.series[name].append((tick.t, mbps, mpps))
            self.sources[name].stream({"t": [tick.t], "mbps": [mbps], "mpps": [mpps]},
                                      rollover=self.capacity)
        crashes: list[float] = []
        recovered: list[float] = []
        for event in tick.events:
            if event.domain not in self.domains:
                continue
            if event.kind == "crash":
                crashes.append(tick.t)
            elif event.kind == "shadow-recovered":
                recovered.append(tick.t)
                ms = int(event.data.get("recovery_ns", 0)) / 1e6
                self.recoveries.append(ms)
                self.recovery_times.stream({"crash": [len(self.recoveries)], "ms": [ms]},
                                           rollover=self.capacity)
        self._mark(crashes, "crash", self.crash_source)
        self._mark(recovered, "recovery", self.recovery_source)
        self.updates += 1

    def _mark(self, times: list[float], kind: str, source: ColumnDataSource) -> None:
        if not times:
            return
        self.marks.extend((t, kind) for t in times)
        source.stream({"t": times, "y": [0.0] * len(times)}, rollover=self.capacity)

    def load(self, sampler: Sampler) -> None:
        """Fill from a sampler's history (for the standalone HTML), replacing data wholesale."""
        for name in self.names:
            rows = list(sampler.history.get(name, ()))
            self.series[name].extend(rows)
            self.sources[name].data = {"t": [r[0] for r in rows], "mbps": [r[1] for r in rows],
                                       "mpps": [r[2] for r in rows]}
        marks = [(t, kind) for t, kind, d in sampler.markers if d in self.domains]
        crashes = [t for t, kind in marks if kind == "crash"]
        recovered = [t for t, kind in marks if kind == "recovery"]
        self.marks.extend([(t, "crash") for t in crashes] + [(t, "recovery") for t in recovered])
        self.crash_source.data = {"t": crashes, "y": [0.0] * len(crashes)}
        self.recovery_source.data = {"t": recovered, "y": [0.0] * len(recovered)}
        self.recoveries = [ms for d, c in sampler.counters.items() if d in self.domains
                           for ms in c.recovery_ms]
        self.recovery_times.data = {"crash": list(range(1, len(self.recoveries) + 1)),
                                    "ms": self.recoveries}

    # -- output -------------------------------------------------------------------------
    def widget(self) -> Any:
        """The dashboard as an ipywidget (jupyter_bokeh.BokehModel), created once; call it
        in a cell (it displays the inlined BokehJS loader first)."""
        if self._model is None:
            from bokeh.io import output_notebook
            from jupyter_bokeh import BokehModel

            # BokehJS inlined into the notebook: there is no CDN offline.
            output_notebook(resources=INLINE, hide_banner=True)
            self._model = BokehModel(self.layout)
        return self._model


def save_html(sampler: Sampler, path: str | Path, calls: dict[str, Any] | None = None,
              title: str = "RedLeaf Lab dashboard") -> Path:
    """Write the dashboard of everything `sampler` recorded as standalone offline HTML."""
    from bokeh.io import save

    dash = LiveDashboard({n: sampler.workloads[n] for n in sorted(sampler.workloads)},
                         window_s=1e9, calls=calls)
    dash.load(sampler)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(dash.layout, filename=str(path), resources=INLINE, title=title)
    return path
