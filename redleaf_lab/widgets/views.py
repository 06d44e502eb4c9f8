"""The domain table and the heap registry view: ipywidgets fed by sampler ticks.

    table = DomainTable(); heap = HeapView()
    sampler.add_listener(table.update); sampler.add_listener(heap.update)

`DomainTable.widget` is an `HTML` widget with one row per domain: name, state,
incarnation, calls, crashes, restarts, heap objects and bytes. `HeapView.widget`
shows one bar per owner (objects and KiB on the shared heap, a container's nested
objects counted for the container's owner, so the bars add up to the header, which
comes from the same registry snapshot) and the top allocation types. Both render from the `Tick` they are given (kernel.ps() and
the heap summary the sampler took), never by reading the kernel themselves, and
set the widget value only when the text changed (no flicker, no needless
messages).

Threads: `update` runs on the sampler thread; the widgets are written only there.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from ..live.sampler import HeapSummary, Tick

_STATE_COLOURS = {"running": "#1a7f37", "crashed": "#cf222e", "restarting": "#9a6700",
                  "loading": "#9a6700", "stopped": "#57606a"}
_TABLE_CSS = ("border-collapse:collapse;font-family:monospace;font-size:12px;"
              "min-width:560px")
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"


def _cells(values: list[str], tag: str = "td") -> str:
    return "".join(f"<{tag} style='{_CELL}'>{v}</{tag}>" for v in values)


class DomainTable:
    # kernel.ps() counts the objects a domain owns directly (a container is one object;
    # the heap view also counts what is inside containers)
    COLUMNS = ("domain", "state", "inc", "calls", "crashes", "restarts", "owned objects",
               "owned KiB")

    def __init__(self) -> None:
        self.widget = w.HTML(value=self.render([]), layout=w.Layout(min_height="80px"))
        self.widget.add_class("redleaf-domain-table")
        self.rows: list[Any] = []

    def render(self, rows: list[Any]) -> str:
        body = []
        for r in rows:
            colour = _STATE_COLOURS.get(r.state, "#000")
            state = f"<b style='color:{colour}'>{html.escape(r.state)}</b>"
            body.append("<tr>" + _cells([
                html.escape(r.name), state, str(r.incarnation), str(r.calls), str(r.crashes),
                str(r.restarts), str(r.heap_objects), f"{r.heap_bytes / 1024:.0f}"]) + "</tr>")
        return (f"<table style='{_TABLE_CSS}'><tr>{_cells(list(self.COLUMNS), 'th')}</tr>"
                + "".join(body) + "</table>")

    def update(self, tick: Tick) -> None:
        self.rows = list(tick.rows)
        text = self.render(self.rows)
        if text != self.widget.value:
            self.widget.value = text


class HeapView:
    def __init__(self) -> None:
        self.widget = w.HTML(value="<i>heap: waiting for the first sample</i>")
        self.widget.add_class("redleaf-heap-view")
        self.summary: HeapSummary | None = None

    def render(self, s: HeapSummary) -> str:
        top = max([b for _o, b in s.per_domain.values()] + [1])
        bars = []
        for owner, (objects, nbytes) in s.per_domain.items():
            width = max(1, int(300 * nbytes / top))
            bars.append(
                f"<div style='font-family:monospace;font-size:12px'>"
                f"<span style='display:inline-block;width:110px'>{html.escape(owner)}</span>"
                f"<span style='display:inline-block;background:#4c78a8;height:10px;"
                f"width:{width}px'></span> {objects} obj, {nbytes / 1024:.0f} KiB</div>")
        types = "".join(
            f"<tr>{_cells([html.escape(n), str(o), f'{b / 1024:.0f}'])}</tr>"
            for n, o, b in s.top_types)
        return (f"<div><b>shared heap</b>: {s.live_objects} live objects "
                f"({s.nested} of them inside containers), {s.live_bytes / 1024:.0f} KiB; "
                "by owner (a container's contents count for its owner):</div>"
                + "".join(bars)
                + f"<table style='{_TABLE_CSS};min-width:300px'><tr>"
                f"{_cells(['type', 'objects', 'KiB'], 'th')}</tr>{types}</table>")

    def update(self, tick: Tick) -> None:
        if tick.heap is None:
            return
        self.summary = tick.heap
        text = self.render(tick.heap)
        if text != self.widget.value:
            self.widget.value = text
