"""`redleaf-lab demo`: exits 0, its JSON reports no lost writes and no leaks, and its HTML
dashboard renders in chromium with every network request blocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from redleaf_lab.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["demo", "--seconds", "2", "--period", "0.4", "--out", str(out), "--json"])
    assert code == 0
    return json.loads(buf.getvalue()), out


def test_demo_json_reports_recovery_without_losses(demo: tuple[dict[str, Any], Path]) -> None:
    result, _out = demo
    print(json.dumps({k: v for k, v in result.items() if k not in ("domains", "calls")},
                     indent=1, default=str))  # shown if an assertion below fails
    block = result["drivers"]["membdev"]
    assert block["crashes"] >= 2 and block["restarts"] == block["crashes"]
    assert block["recoveries"] >= 1 and block["recovery_ms_p50"] > 0
    assert block["recovery_ms_p99"] >= block["recovery_ms_p50"]
    assert block["throughput_mbps"] > 0
    assert result["lost_writes"] == 0 and block["wrong_reads"] == 0
    assert result["leaked_objects"] == 0 and result["heap_live_after"] == 0
    assert result["heap_held_after"] == 0  # no view outlived the run
    nic = result["drivers"]["ixgbe"]  # forwarding through a shadow, panicked too
    assert nic["unit"] == "Mpps" and nic["iops"] > 0 and nic["crashes"] >= 1
    assert nic["restarts"] == nic["crashes"] and nic["wrong_reads"] == 0
    assert result["wrong"] == 0


@pytest.mark.browser
def test_demo_html_renders_offline_in_chromium(demo: tuple[dict[str, Any], Path]) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    result, out = demo
    html = Path(result["files"]["html"])
    assert html.parent == out and Path(result["files"]["png"]).stat().st_size > 10_000
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium),
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()

        def only_files(route: object) -> None:
            request = route.request  # type: ignore[attr-defined]
            if request.url.startswith("file:"):
                route.continue_()  # type: ignore[attr-defined]
            else:
                blocked.append(request.url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_files)
        page.goto(html.as_uri())
        page.locator(".bk-Canvas").first.wait_for(timeout=20_000)
        assert page.locator(".bk-Canvas").count() >= 3  # throughput, recovery, call cost
        browser.close()
    assert blocked == []
