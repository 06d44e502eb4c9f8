"""The live dashboard's data, headless (issue 13, items 5-9): history since boot with no
invented points, crash marks on their own driver's chart, the smoothed rate and the GIL
switch interval, a layout that fits a 1366x768 projector, and the details (heap rows vs
header, the tour's domain count, the call chart at 2.6 GHz with the lab's bars, no drop
to 0 when traffic stops, an offline Voila page). The browser side is test_browser.py."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redleaf_lab.dashboards import LiveDashboard, save_html
from redleaf_lab.live import LabSession, Sampler, Workload
from redleaf_lab.live.workloads import Sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab() -> Iterator[LabSession]:
    session = LabSession.boot(heap_mb=64, workloads=("membdev", "nvme"), blocks=512)
    try:
        yield session
    finally:
        assert session.close()["objects"] == 0


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def crash(lab: LabSession, domain: str, times: int = 1) -> None:
    for _ in range(times):
        before = lab.kernel.crashes(domain)
        lab.panic(domain, "once")
        wait_for(lambda b=before: lab.kernel.crashes(domain) > b)
        wait_for(lambda: lab.kernel.domain(domain).state == "running")


def bundle_sources(model: Any) -> dict[str, dict[str, Any]]:
    """Named ColumnDataSources in the state a browser gets: name -> data."""
    bundle = json.loads(model.get_state()["render_bundle"])
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == "ColumnDataSource":
                attrs = node.get("attributes", {})
                if isinstance(attrs.get("name"), str):
                    found[attrs["name"]] = attrs.get("data", {})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(bundle)
    return found


def column_length(data: dict[str, Any], key: str) -> int:
    """Length of one column of serialised ColumnDataSource data (list or ndarray)."""
    entries = data.get("entries", data)
    column = dict(entries)[key] if isinstance(entries, list) else entries[key]
    if isinstance(column, dict):  # {"type": "ndarray", "shape": [n], ...}
        return int(column["shape"][0])
    return len(column)


class Scripted(Workload):
    """A workload whose counters follow a script (deterministic rates)."""

    name = domain = "scripted"

    def __init__(self, samples: list[Sample]) -> None:
        super().__init__()
        self.samples = samples
        self.up = True

    @property
    def running(self) -> bool:
        return self.up

    def sample(self) -> Sample:
        return self.samples.pop(0)


# -- item 5: the whole history since boot, no invented points -----------------------------
def test_sampler_counts_crashes_from_before_it_existed(lab: LabSession) -> None:
    lab.workloads["membdev"].start("write")
    crash(lab, "membdev", 2)
    wait_for(lambda: [m.recovery_ms is not None for m in lab.sampler.crash_marks("membdev")]
             == [True, True])
    late = Sampler(lab.kernel, lab.workloads)  # made after the crashes
    try:
        assert late.counters["membdev"].crashes == 2
        assert [m.n for m in late.crash_marks("membdev")] == [1, 2]
        assert abs(late.t0 - lab.kernel.events.t0_ns / 1e9) < 1e-6  # time since boot
        late.tick()
        assert late.counters["membdev"].crashes == 2  # the queued copies are not counted twice
    finally:
        late.close()
        lab.stop_traffic()


def test_first_sample_is_a_baseline_not_a_zero(lab: LabSession) -> None:
    sampler = Sampler(lab.kernel, lab.workloads)
    try:
        lab.workloads["membdev"].start("write")
        wait_for(lambda: lab.workloads["membdev"].ops_done > 0)
        sampler.tick()  # traffic started within this interval: no rate yet
        time.sleep(0.05)
        sampler.tick()
        rows = list(sampler.history["membdev"])
        assert len(rows) == 1 and rows[0][1] > 0, rows
        assert "nvme" not in sampler.history  # never ran: no points at all
    finally:
        sampler.close()
        lab.stop_traffic()


def test_a_dashboard_opened_late_has_the_earlier_crashes(lab: LabSession) -> None:
    from redleaf_lab.widgets import LabView

    lab.workloads["membdev"].start("write")
    crash(lab, "membdev", 3)
    wait_for(lambda: len(lab.sampler.crash_marks("membdev")) == 3)
    view = LabView(lab)
    try:
        dash = view.dashboard
        assert dash is not None
        assert list(dash.crash_sources["membdev"].data["n"]) == [1, 2, 3]
        assert list(dash.crash_sources["nvme"].data["n"]) == []
        for name in ("membdev", "nvme"):
            t = list(dash.sources[name].data["t"])
            raw = list(dash.sources[name].data["raw"])
            assert not any(x == 0 and y == 0 for x, y in zip(t, raw, strict=True))
        assert len(dash.sources["membdev"].data["t"]) > 0  # the rates from before the view
        # a browser that attaches later gets the document as it is then, not at creation
        model = dash.widget()
        crash(lab, "membdev")
        wait_for(lambda: len(dash.marks["membdev"]) == 4)
        sources = bundle_sources(model)
        assert column_length(sources["redleaf-crashes-membdev"], "left") == 4
        assert column_length(sources["redleaf-crashes-nvme"], "left") == 0
    finally:
        view.close()
        lab.stop_traffic()


# -- item 6: each driver's crashes on its own chart; labelled recovery series ----------------
def test_three_crashes_are_three_marks_on_that_drivers_chart_only(lab: LabSession) -> None:
    lab.workloads["membdev"].start("write")
    lab.workloads["nvme"].start("write")
    crash(lab, "membdev", 3)
    crash(lab, "nvme", 1)
    wait_for(lambda: [len(lab.sampler.crash_marks(d)) for d in ("membdev", "nvme")] == [3, 1]
             and all(m.recovery_ms is not None for d in ("membdev", "nvme")
                     for m in lab.sampler.crash_marks(d)))
    dash = LiveDashboard(lab.workloads)
    dash.load(lab.sampler)
    lab.stop_traffic()
    membdev = dash.crash_sources["membdev"].data
    assert list(membdev["n"]) == [1, 2, 3]  # numbered from 1 per driver
    assert all(r >= left for left, r in zip(membdev["left"], membdev["right"], strict=True))
    assert list(dash.crash_sources["nvme"].data["n"]) == [1]
    assert list(dash.recovery_sources["membdev"].data["n"]) == [1, 2, 3]
    assert list(dash.recovery_sources["nvme"].data["n"]) == [1]
    charts = {fig.name: fig for fig in dash.charts.children}
    for name in ("membdev", "nvme"):  # the marks are drawn from that driver's source only
        used = {r.data_source.name for r in charts[f"rate-{name}"].renderers}
        assert f"redleaf-crashes-{name}" in used
        assert not any(u and u.startswith("redleaf-crashes-") and u != f"redleaf-crashes-{name}"
                       for u in used)
    legend = [item.label["value"] for item in dash.recovery_figure.legend[0].items]
    assert legend == ["membdev", "nvme"]
    ticker = dash.recovery_figure.xaxis[0].ticker
    assert ticker.min_interval >= 1 and ticker.num_minor_ticks == 0  # integer crash numbers


# -- item 7: the cause (the GIL switch interval) and the signal (a windowed rate) ------------
def test_the_session_shortens_the_gil_switch_interval_and_restores_it() -> None:
    before = sys.getswitchinterval()
    session = LabSession.boot(heap_mb=16, domains=(), workloads=())
    try:
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        session.close()
    assert sys.getswitchinterval() == pytest.approx(before)


def test_the_smoothed_rate_is_bytes_over_the_trailing_window(lab: LabSession) -> None:
    mb = 1_000_000
    script = [Sample(10.0 + 0.2 * i, b * mb, b * 1000, 0)
              for i, b in enumerate([0, 20, 20, 40, 40, 60, 60, 80])]
    wl = Scripted(script)
    sampler = Sampler(lab.kernel, {"scripted": wl}, smooth_s=0.4)
    try:
        rows = [sampler.tick().samples["scripted"] for _ in range(7)]
        raw = [round(r[1]) for r in rows]
        smooth = [round(r[3]) for r in rows]
        assert raw == [100, 0, 100, 0, 100, 0, 100]  # what one sample sees
        assert smooth == [100, 50, 50, 50, 50, 50, 50]  # 20 MB per 0.4 s, steadily
    finally:
        sampler.close()


# -- item 8: the projector view fits 1366x768 --------------------------------------------
def test_the_projector_view_fits_one_screen(lab: LabSession) -> None:
    from redleaf_lab.widgets import LabView

    view = LabView(lab)
    try:
        dash = view.dashboard
        assert dash is not None
        charts_h = sum(int(fig.height) for fig in dash.charts.children)
        charts_w = max(int(fig.width) for fig in dash.charts.children)
        panel_w = max(int(str(p.widget.layout.width).rstrip("px")) for p in view.panels.values())
        assert charts_h <= 600, charts_h  # room for the page's title and browser chrome
        assert charts_w + panel_w + 40 <= 1366, (charts_w, panel_w)
        screen = view.widget.children[1]
        assert "redleaf-projector" in screen._dom_classes
        assert dash.widget() in screen.children  # the charts and the panels side by side
        assert all(p.widget in screen.children[1].children for p in view.panels.values())
    finally:
        view.close()


# -- item 9: the details ------------------------------------------------------------------
def test_heap_rows_add_up_to_the_header(lab: LabSession) -> None:
    from redleaf_lab.live import heap_summary
    from redleaf_lab.widgets import HeapView

    lab.workloads["membdev"].start("write")
    wait_for(lambda: lab.workloads["membdev"].ops_done > 1000)
    summary = heap_summary(lab.kernel)  # while requests sit in the deques
    for _ in range(50):
        if summary.nested:
            break
        summary = heap_summary(lab.kernel)
    lab.stop_traffic()
    assert summary.nested > 0
    assert sum(o for o, _b in summary.per_domain.values()) == summary.live_objects
    assert sum(b for _o, b in summary.per_domain.values()) == summary.live_bytes
    text = HeapView().render(summary)
    assert f"{summary.live_objects} live objects ({summary.nested} of them inside" in text


def test_the_tour_counts_the_domains_it_boots() -> None:
    tour = json.loads((ROOT / "labs" / "00-tour.ipynb").read_text())
    boot_md = next("".join(c["source"]) for c in tour["cells"]
                   if c["cell_type"] == "markdown" and "## 1. Boot" in "".join(c["source"]))
    words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
    said = [words[w] for w in re.findall(r"\b(\w+) domains\b", boot_md) if w in words]
    session = LabSession.boot(heap_mb=64)
    try:
        assert said == [len(session.kernel.ps())], (said, [r.name for r in session.kernel.ps()])
    finally:
        session.close()


def test_the_call_chart_converts_at_2_6_ghz_and_shows_the_labs_bars() -> None:
    from redleaf_lab.dashboards.calls import call_bars

    data = call_bars({"proxy_ns": 250.0, "proxy_rref_move_ns": 600.0, "plain_ns": 30.0})
    bars = dict(zip(data["label"], data["ns"], strict=True))
    assert bars["proxied call: paper"] == pytest.approx(124 / 2.6)
    assert bars["proxied call: this lab"] == 250.0
    assert bars["call moving an RRef: paper"] == pytest.approx(141 / 2.6)
    assert bars["call moving an RRef: this lab"] == 600.0


def test_the_tours_dashboard_measures_the_labs_call_costs() -> None:
    from redleaf_lab.jupyter import state

    try:
        state.reboot(heap_mb=64)
        view = state.dashboard(traffic=False)
        sources = list(view.dashboard.calls_source.data["source"])
        assert "this lab" in sources and "paper" in sources
    finally:
        state.close()


def test_stopping_traffic_does_not_draw_a_drop_to_zero(lab: LabSession,
                                                       tmp_path: Path) -> None:
    sampler = Sampler(lab.kernel, lab.workloads, period=0.05)
    try:
        lab.workloads["membdev"].start("write")
        wait_for(lambda: lab.workloads["membdev"].running)
        for _ in range(4):
            sampler.tick()
            time.sleep(0.05)
        lab.stop_traffic()
        sampler.tick()
        sampler.tick()  # what the demo does after stopping
        rows = list(sampler.history["membdev"])
        values = [r[1] for r in rows]
        assert not any(v == 0 for v in values), values
        assert math.isnan(values[-1]) and all(v > 0 for v in values[:-1])  # a break, not a 0
        path = save_html(sampler, tmp_path / "dash.html")
        assert "redleaf-rate-membdev" in path.read_text()
    finally:
        sampler.close()


def test_the_voila_page_loads_nothing_from_a_cdn(tmp_path: Path) -> None:
    pytest.importorskip("voila", reason="voila is missing (pip install -e '.[dev]')")
    from redleaf_lab.jupyter import kernelspec

    prefix = tmp_path / "prefix"
    kernelspec.install(prefix=str(prefix))  # what `make setup` does in the virtualenv
    template = prefix / "share" / "jupyter" / "voila" / "templates" / "redleaf"
    assert (template / "index.html.j2").exists() and (template / "conf.json").exists()
    config = json.loads((prefix / "etc" / "jupyter" / "voila.json").read_text())
    assert config["VoilaConfiguration"]["template"] == "redleaf"  # Voila's default there
    notebook = tmp_path / "one.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# offline"]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    env = dict(os.environ, JUPYTER_PATH=str(prefix / "share" / "jupyter"),
               JUPYTER_CONFIG_PATH=str(prefix / "etc" / "jupyter"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    from tests.jupyter.test_browser import free_port

    port = free_port()
    with (tmp_path / "voila.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", "--port", str(port),
             "--Voila.ip=127.0.0.1", "--template=redleaf"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30)
                    html = page.read().decode()
                    break
                except OSError:
                    assert server.poll() is None, (tmp_path / "voila.log").read_text()
                    assert time.monotonic() < deadline, "voila did not answer in 60 s"
                    time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(15)
    assert "offline" in html
    external = re.findall(r"<(?:link|script)[^>]+(?:href|src)=[\"'](?:https?:)?//[^\"']+", html)
    assert external == [], external
