"""Widgets and dashboards, headless: buttons call the right kernel operation, events and
samples update the widget models, and the standalone HTML is offline-complete."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redleaf_lab.dashboards import LiveDashboard, save_html
from redleaf_lab.live import LabSession, Sampler
from redleaf_lab.widgets import DomainTable, DriverPanel, HeapView, LabView


@pytest.fixture
def lab() -> Iterator[LabSession]:
    session = LabSession.boot(heap_mb=64, workloads=("membdev",), blocks=512)
    try:
        yield session
    finally:
        assert session.close()["objects"] == 0


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_panic_button_modes_call_the_fault_api(lab: LabSession) -> None:
    panel = DriverPanel(lab, lab.workloads["membdev"])
    faults = lab.kernel.faults
    panel.panic_button.click()  # default: once
    assert faults.plan("membdev").describe() == "next call"
    panel.panic_mode.value = "every"
    panel.period.value = 0.5
    panel.panic_button.click()
    assert faults.plan("membdev").describe() == "every 0.5 s, at the next call"
    panel.panic_mode.value = "random"
    panel.probability.value = 0.25
    panel.panic_button.click()
    assert faults.plan("membdev").p == 0.25
    panel.clear_button.click()
    assert faults.plan("membdev") is None
    panel.panic_mode.value = "async"
    panel.panic_button.click()
    assert lab.kernel.domain("membdev").state == "crashed"
    panel.restart_button.click()
    assert lab.kernel.domain("membdev").incarnation == 2


def test_counters_come_from_events_via_the_sampler(lab: LabSession) -> None:
    sampler = Sampler(lab.kernel, lab.workloads)
    panel, table = DriverPanel(lab, lab.workloads["membdev"]), DomainTable()
    sampler.add_listener(panel.update)
    sampler.add_listener(table.update)
    sampler.tick()
    assert panel.crashes.value == "0" and "running" in table.widget.value
    panel.panic_mode.value = "async"
    panel.panic_button.click()
    assert panel.crashes.value == "0"  # a button never writes a read-out
    sampler.tick()
    assert panel.crashes.value == "1" and panel.restarts.value == "0"
    assert "crashed" in table.widget.value
    lab.restart("membdev")
    sampler.tick()
    assert panel.restarts.value == "1" and "crashed" not in table.widget.value
    sampler.close()


def test_traffic_recovers_and_the_panel_shows_it(lab: LabSession) -> None:
    sampler = Sampler(lab.kernel, lab.workloads, period=0.05)
    panel = DriverPanel(lab, lab.workloads["membdev"])
    sampler.add_listener(panel.update)
    panel.start_button.click()
    wait_for(lambda: lab.workloads["membdev"].ops_done > 1000)
    sampler.tick()
    panel.panic_button.click()  # once: the next call panics, the shadow recovers it
    wait_for(lambda: lab.kernel.crashes("membdev") == 1)
    wait_for(lambda: (sampler.tick(), panel.recoveries.value == "1")[1])
    assert panel.crashes.value == "1" and panel.restarts.value == "1"
    done = lab.workloads["membdev"].ops_done
    wait_for(lambda: lab.workloads["membdev"].ops_done > done + 64)  # traffic goes on
    time.sleep(0.05)
    assert sampler.tick().rates["membdev"][0] > 0
    assert "MB/s" in panel.throughput.value and " 0.0 MB/s" not in panel.throughput.value
    assert re.search(r"\d+\.\d+ / \d+\.\d+ ms", panel.recovery_time.value)
    panel.stop_button.click()
    check = lab.workloads["membdev"].check()
    assert check["lost_writes"] == 0 and check["wrong_reads"] == 0
    assert check["acknowledged_blocks"] > 0
    sampler.close()


def test_lost_writes_and_wrong_reads_are_detected(lab: LabSession) -> None:
    wl = lab.workloads["membdev"]
    wl.start("write")
    wait_for(lambda: wl.ops_done >= 512)
    wl.stop()
    assert wl.check()["lost_writes"] == 0
    wl.store._blocks[3, :16] = 0  # a device that forgot an acknowledged write
    assert wl.check()["lost_writes"] == 1
    wl.start("read")
    wait_for(lambda: wl.wrong_reads > 0)
    wl.stop()


def test_heap_view_shows_owners_and_types(lab: LabSession) -> None:
    import redleaf_lab as rl

    kv = lab.kernel.proxy("kvstore")
    kv.put(1, rl.RRef.new(rl.Block, 1))
    sampler = Sampler(lab.kernel, heap_every=1)
    view = HeapView()
    sampler.add_listener(view.update)
    sampler.tick()
    assert view.summary is not None and view.summary.per_domain["kvstore"] == (1, 4096)
    assert "kvstore" in view.widget.value and "Block" in view.widget.value
    sampler.close()


def test_a_broken_listener_is_dropped_not_fatal(lab: LabSession) -> None:
    sampler = Sampler(lab.kernel)
    sampler.add_listener(lambda tick: 1 / 0)
    sampler.tick()
    sampler.tick()
    assert len(sampler.errors) == 1 and "ZeroDivisionError" in sampler.errors[0]
    sampler.close()


def test_dashboard_streams_from_its_own_ring_buffers(lab: LabSession) -> None:
    sampler = Sampler(lab.kernel, lab.workloads, period=0.02)
    dash = LiveDashboard(lab.workloads, capacity=5)
    sampler.add_listener(dash.update)
    lab.workloads["membdev"].start("write")
    wait_for(lambda: lab.workloads["membdev"].running)
    sampler.tick()  # the baseline: traffic runs from here
    for _ in range(7):
        time.sleep(0.02)
        sampler.tick()
    lab.panic("membdev", "async")
    sampler.tick()
    lab.stop_traffic()
    assert len(dash.series["membdev"]) == 5  # the ring buffer rolled over
    assert [m.n for m in dash.marks["membdev"]] == [1]
    assert len(dash.sources["membdev"].data["t"]) == 5
    assert dash.updates == 9
    dash.set_calls({"proxy_ns": 250.0, "plain_ns": 40.0})
    labels = dash.calls_source.data["label"]
    assert "proxied call: this lab" in labels and "proxied call: paper" in labels
    assert dash.widget() is dash.widget()  # one BokehModel per dashboard
    sampler.close()


def test_standalone_html_is_offline_complete(lab: LabSession, tmp_path: Path) -> None:
    sampler = Sampler(lab.kernel, lab.workloads)
    sampler.tick()
    lab.panic("membdev", "async")
    sampler.tick()
    path = save_html(sampler, tmp_path / "dash.html", calls={"proxy_ns": 300.0})
    text = path.read_text()
    assert "Bokeh" in text and len(text) > 500_000  # BokehJS itself is inlined
    assert not re.search(r"<script[^>]+src=", text), "no external scripts"
    assert not re.search(r"<link[^>]+href=[\"']https?:", text), "no external styles"
    assert "cdn.bokeh.org" not in text
    sampler.close()


def test_lab_view_wires_one_sampler_to_every_view(lab: LabSession) -> None:
    view = LabView(lab)
    try:
        assert view.sampler is lab.sampler  # the session's one sampler, recording since boot
        assert len(view.sampler._listeners) == 4  # table, heap, one panel, dashboard
        view.start_traffic()
        wait_for(lambda: view.dashboard is not None and view.dashboard.updates > 3)
        assert "membdev" in view.domains.widget.value
    finally:
        view.close()
        lab.stop_traffic()
    assert not view.sampler._listeners and view.sampler.running  # detached; session records


def test_lab_view_shows_rv6s_shell_beside_the_driver_panels(lab: LabSession) -> None:
    view = LabView(lab, bokeh=False, rv6=True)
    try:
        panel = view.rv6_panel
        assert panel is not None and panel.widget in view.widget.children[1].children[0].children
        assert panel.panic_button._dom_classes == ("redleaf-rv6-panic",)  # not a driver's
        panel.command.value = "cat /README | wc"
        panel.run_button.click()  # runs on the panel's worker thread
        wait_for(lambda: "rv6$ cat /README | wc" in panel.output.value
                 and panel._worker is not None and not panel._worker.is_alive())
        first = panel.lines[-1]
        assert first.split()[0] == "3"
        panel.panic_button.click()  # the block driver under Rv6 crashes
        assert lab.kernel.crashes("rv6disk") == 1 and "1 crashes" in panel.status.value
        panel.run_button.click()  # the program sees nothing of it
        wait_for(lambda: panel.lines.count(first) == 2 and not panel._worker.is_alive())
        panel.run("echo written > /after")  # a commit: the shadow restarts the driver
        assert "1 restarts" in panel.status.value
        lab.kernel.panic("rv6disk", "from elsewhere")  # e.g. `%redleaf panic rv6disk`:
        lab.sampler.tick()  # the sampler's next tick shows it in the panel
        assert "2 crashes" in panel.status.value
        # ^C: a cat that waits for console input is killed, the shell goes on
        panel.command.value = "cat"
        panel.run_button.click()
        core = panel.system.core
        wait_for(lambda: any(row[2] == "cat" and row[3] == "running" for row in core.procs()))
        panel.interrupt_button.click()
        wait_for(lambda: not panel._worker.is_alive())
        assert "killed" in panel.output.value
    finally:
        view.close()
