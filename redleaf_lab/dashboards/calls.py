"""The call-cost chart: this lab's measured `bench calls` rows beside RedLeaf's Table 1.

    data = call_bars(rows)           # rows: the dict `bench.calls.measure` returns, or None
    fig = calls_figure(source)       # horizontal bars on a log ns axis, grouped by call kind

The paper gives cycles on its 2.6 GHz Xeon (E5-2660 v3); they are converted to ns at
that clock (`PAPER_GHZ`) so both sources share one ns axis. Each kind of call has a
"paper" bar and a "this lab" bar where both exist (a proxied call, a call that moves an
RRef), one above the other; kinds only one side measured (seL4 and VMFUNC in the paper; a plain call, a
borrow, a shadow, thread and process round trips here) have one bar. Without measured
rows the chart says so in its title rather than showing the paper alone silently.
"""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, FactorRange, Range1d
from bokeh.plotting import figure

from ..bench.calls import PAPER_CYCLES

PAPER_GHZ = 2.6  # the paper's Xeon E5-2660 v3: Table 1's cycles -> ns
PAPER_COLOUR, LAB_COLOUR = "#f58518", "#4c78a8"
# (kind of call, key in the paper's Table 1, key in bench calls' rows)
KINDS: tuple[tuple[str, str | None, str | None], ...] = (
    ("plain call", None, "plain_ns"),
    ("proxied call", "RedLeaf", "proxy_ns"),
    ("call moving an RRef", "RedLeaf+RRef", "proxy_rref_move_ns"),
    ("call borrowing an RRef", None, "proxy_rref_borrow_ns"),
    ("call through a shadow", None, "shadow_ns"),
    ("VMFUNC switch", "VMFUNC", None),
    ("seL4 IPC", "seL4", None),
    ("thread queue round trip", None, "thread_queue_ns"),
    ("mp.Pipe round trip", None, "mp_pipe_ns"),
)


def paper_ns(name: str) -> float:
    """One of the paper's Table 1 figures in ns at its 2.6 GHz."""
    return PAPER_CYCLES[name] / PAPER_GHZ


def call_bars(rows: dict[str, Any] | None) -> dict[str, list[Any]]:
    """Bar data: `label` ("kind: source"), `source` ("paper" or "this lab"), `ns`,
    `colour`, `text`."""
    labels: list[str] = []
    sources: list[str] = []
    values: list[float] = []
    colours: list[str] = []
    texts: list[str] = []
    for kind, paper_key, lab_key in KINDS:
        if paper_key is not None and paper_key in PAPER_CYCLES:
            labels.append(f"{kind}: paper")
            sources.append("paper")
            values.append(paper_ns(paper_key))
            colours.append(PAPER_COLOUR)
            texts.append(f"{paper_ns(paper_key):.0f} ns ({PAPER_CYCLES[paper_key]} cycles)")
        if lab_key is not None and rows and isinstance(rows.get(lab_key), (int, float)):
            labels.append(f"{kind}: this lab")
            sources.append("this lab")
            values.append(float(rows[lab_key]))
            colours.append(LAB_COLOUR)
            texts.append(f"{float(rows[lab_key]):.0f} ns")
    return {"label": labels, "source": sources, "ns": values, "colour": colours,
            "text": texts}


def calls_title(rows: dict[str, Any] | None) -> str:
    if rows:
        return (f"ns per call (log): this lab (blue), RedLeaf's Table 1 at {PAPER_GHZ} GHz "
                "(orange)")
    return f"ns per call (log): RedLeaf's Table 1 at {PAPER_GHZ} GHz (lab not measured)"


def calls_figure(source: ColumnDataSource, rows: dict[str, Any] | None, width: int = 640,
                 height: int = 380) -> Any:
    factors = list(reversed(source.data["label"]))  # first kind at the top
    fig = figure(title=calls_title(rows), height=height, width=width,
                 y_range=FactorRange(factors=factors),
                 x_axis_type="log", x_axis_label="ns per call (log scale)",
                 x_range=Range1d(start=5, end=1e5), tools="save", name="calls")
    fig.hbar(y="label", right="ns", left=5, height=0.75, color="colour", source=source,
             legend_field="source")
    fig.text(x="ns", y="label", text="text", source=source, text_font_size="8pt",
             x_offset=4, text_baseline="middle")
    _title(fig).text_font_size = "10pt"
    fig.yaxis.major_label_text_font_size = "8pt"
    fig.legend.location = "top_right"
    fig.legend.label_text_font_size = "8pt"
    fig.ygrid.grid_line_color = None
    return fig


def _title(fig: Any) -> Any:
    """A figure's Title model (bokeh's stubs allow str | None there)."""
    return fig.title
