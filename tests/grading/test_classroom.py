"""A class on a real JupyterHub on loopback (classroom/jupyterhub_config.py, started by
grading.classroom.Hub as `redleaf-lab classroom up` does): three dummy students log in
through the hub's login page in Debian's chromium (Playwright), each gets a server of
their own with the student version of lab 1 open, runs every cell of it, then runs a cell
that boots a kernel, loads a domain named after the student and allocates its own number
of heap objects. The three kernels are distinct processes and none sees another's domains
or heap objects. The hub (and with it the proxy and the servers) is stopped at the end.
Skips only where chromium, npm or playwright is missing; CI has them."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from redleaf_lab.grading import course
from redleaf_lab.grading import notebook as nbmod
from redleaf_lab.grading.classroom import PASSWORD, Hub, free_port
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every code cell in order, one at a time, errors included (the student version's test
# cells fail: Run All would stop at the first); each cell gets 60 s.
RUN_CELLS_JS = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.sessionContext.ready;
    await panel.sessionContext.session.kernel.info;  // the kernel answered: it is up
    await new Promise(r => setTimeout(r, 1000));
    const cells = panel.content.widgets;
    const counts = [];
    for (let i = 0; i < cells.length; i++) {
        if (cells[i].model.type !== 'code') continue;
        panel.content.activeCellIndex = i;
        const ran = window.jupyterapp.commands.execute('notebook:run-cell');
        const timeout = new Promise(r => setTimeout(() => r('timeout'), 60000));
        if (await Promise.race([ran.then(() => 'ran'), timeout]) === 'timeout') return null;
        const text = cells[i].model.outputs.toJSON().map(o => o.output_type === 'error'
            ? `${o.ename}: ${o.evalue}` : [].concat(o.text || '').join('')).join('');
        counts.push([cells[i].model.executionCount, text]);
    }
    return counts;
}"""

EXECUTE_JS = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code, store_history: false});
    let out = '';
    future.onIOPub = (msg) => {
        if (msg.header.msg_type === 'stream') out += msg.content.text;
        if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': '
                                                    + msg.content.evalue;
    };
    await future.done;
    return out;
}"""

MARK = """
import json, os
import redleaf_lab as rl
_class_kernel = rl.boot(heap_bytes=16 << 20)
_class_kernel.load("echo", name="{user}-echo")
_class_refs = [rl.RRef.new(rl.Block) for _ in range({n})]
"""
LOOK = """print(json.dumps({"pid": os.getpid(),
    "domains": sorted(row.name for row in _class_kernel.ps()),
    "live": _class_kernel.heap.stats().live_objects}))"""


def log_in(page: Any, url: str, user: str) -> None:
    """The hub's login form (loaded again if a busy machine made the first load fail)."""
    for attempt in range(3):
        page.goto(f"{url}/hub/login")
        try:
            page.wait_for_selector("#username_input", timeout=20_000)
            break
        except Exception:
            if attempt == 2:
                raise AssertionError(f"no login form for {user}: {page.url}: "
                                     f"{page.inner_text('body')[:300]}") from None
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")


def test_three_students_on_a_real_hub(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    if shutil.which("npm") is None and shutil.which("configurable-http-proxy") is None:
        pytest.skip("npm is missing: JupyterHub's proxy cannot be installed")
    pytest.importorskip("playwright.sync_api", reason="the playwright python package is missing")
    from playwright.sync_api import sync_playwright

    state = tmp_path / "class"
    course.student_versions(state / "labs", [nbmod.lab_notebook("01")])  # lab 1 only: quick
    with Hub(users=3, port=free_port(), state_dir=state) as hub, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = {}
        try:
            for user in hub.usernames():  # all log in first: the hub spawns in parallel
                page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
                log_in(page, hub.url, user)
                pages[user] = page
            for i, (user, page) in enumerate(pages.items(), start=1):
                page.wait_for_url(f"**/user/{user}/lab/**", timeout=90_000)
                page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) "
                                       ".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=90_000)
                page.wait_for_function("window.jupyterapp && window.jupyterapp.commands"
                                       ".isEnabled('notebook:run-cell')", timeout=30_000)
                counts = page.evaluate(RUN_CELLS_JS)
                assert counts is not None, f"{user}: a cell of lab 1 ran for more than 60 s"
                assert all(count for count, _text in counts), counts  # every cell ran
                assert "kvstore" in counts[0][1] and "provides" in counts[0][1], counts[0]
                failed = [text for _count, text in counts if "ExerciseFailed" in text]
                assert len(failed) == 2, counts  # the visible tests: no solution yet
                assert all("NotImplementedError" in text for text in failed), failed
                out = page.evaluate(EXECUTE_JS, MARK.format(user=user, n=10 * i))
                assert "ERROR" not in out, out
            seen = {user: json.loads(page.evaluate(EXECUTE_JS, LOOK))
                    for user, page in pages.items()}
        finally:
            browser.close()
        assert len({v["pid"] for v in seen.values()}) == 3, seen
        for i, (user, view) in enumerate(seen.items(), start=1):
            assert view["domains"] == [f"{user}-echo"], seen
            assert view["live"] == 10 * i, seen
        with urllib.request.urlopen(f"{hub.url}/hub/api/", timeout=5) as answer:
            assert json.loads(answer.read())["version"]
    assert hub.process is None
