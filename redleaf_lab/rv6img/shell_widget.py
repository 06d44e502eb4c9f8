"""A terminal-like Rv6 panel for notebooks: a command line, "run", "^C", "panic rv6disk",
output. `%redleaf dashboard` shows it beside the driver panels (`LabView(rv6=True)`).

    panel = Rv6Panel(kernel)
    panel.widget            # a VBox to display beside the driver panels
    panel.run("ls | wc")    # what the button does (also returns the text)
    panel.update(tick)      # a sampler listener: the driver's crash counters, live

Each command line runs in Rv6's shell (`sh -c`) on a worker thread, so the "panic
rv6disk" button stays usable while a long `cat` runs: the output then shows that the
program saw nothing of the crash, and the status line counts the driver's crashes.
"^C" kills the running program(s) (`interrupt`). The output area keeps the last 200
lines, in a monospace box; the panel has class `redleaf-rv6-shell`, its buttons
`redleaf-rv6-run`, `redleaf-rv6-interrupt` and `redleaf-rv6-panic` (not
`redleaf-panic`: that names the driver panels' buttons).

Threads: button handlers start the worker and return; the worker and the sampler
thread (`update`) write the widgets (ipywidgets syncs them to the front end).
"""

from __future__ import annotations

import html
import threading
from typing import Any

from .lab import rv6_for

MAX_LINES = 200


class Rv6Panel:
    def __init__(self, kernel: Any) -> None:
        import ipywidgets as w

        self.kernel = kernel
        self.system = rv6_for(kernel)
        self.lines: list[str] = []
        self.command = w.Text(value="ls /", placeholder="rv6$ command line",
                              layout=w.Layout(width="240px"))
        self.run_button = w.Button(description="run", button_style="primary",
                                   layout=w.Layout(width="60px"))
        self.interrupt_button = w.Button(description="^C", tooltip="kill the running program",
                                         layout=w.Layout(width="45px"))
        self.panic_button = w.Button(description="panic rv6disk", button_style="danger",
                                     layout=w.Layout(width="120px"))
        self.output = w.HTML(layout=w.Layout(height="180px", width="520px", overflow="auto"))
        self.status = w.HTML()
        for button, name in ((self.run_button, "run"), (self.interrupt_button, "interrupt"),
                             (self.panic_button, "panic")):
            button.add_class(f"redleaf-rv6-{name}")
        self.run_button.on_click(lambda _b: self._start(self.command.value))
        self.interrupt_button.on_click(lambda _b: self.interrupt())
        self.panic_button.on_click(lambda _b: self.panic())
        self.widget = w.VBox([w.HBox([self.command, self.run_button, self.interrupt_button,
                                      self.panic_button]),
                              self.output, self.status])
        self.widget.add_class("redleaf-rv6-shell")
        self._worker: threading.Thread | None = None
        self._show()

    def run(self, cmdline: str) -> str:
        """Run one command line now (on this thread); its output is shown and returned."""
        status, out = self.system.run(cmdline)
        self.lines.append(f"rv6$ {cmdline}")
        self.lines.extend(out.rstrip("\n").split("\n") if out else [])
        if status:
            self.lines.append(f"[exit status {status}]")
        del self.lines[:-MAX_LINES]
        self._show()
        return out

    def panic(self) -> bool:
        crashed = bool(self.kernel.panic(self.system.driver, "panel"))
        self._show()
        return crashed

    def interrupt(self) -> int:
        """Kill the running program(s) (not the shells); how many were killed."""
        return int(self.system.core.interrupt())

    def update(self, _tick: Any = None) -> None:
        """Refresh the driver's counters (a sampler listener; cheap)."""
        self._show_status()

    def _start(self, cmdline: str) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(target=self.run, args=(cmdline,), daemon=True,
                                        name="rv6-panel")
        self._worker.start()

    def _show(self) -> None:
        text = html.escape("\n".join(self.lines))
        self.output.value = (f"<pre style='margin:0;font-size:12px;background:#111;"
                             f"color:#ddd;padding:4px'>{text}</pre>")
        self._show_status()

    def _show_status(self) -> None:
        driver = self.system.driver
        self.status.value = (f"driver <b>{driver}</b>: {self.kernel.crashes(driver)} crashes, "
                             f"{self.kernel.restarts(driver)} restarts")
