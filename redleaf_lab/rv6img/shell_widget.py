"""A terminal-like Rv6 panel for notebooks: a command line, "run", "panic rv6disk", output.

    panel = Rv6Panel(kernel)
    panel.widget            # a VBox to display beside the driver panels
    panel.run("ls | wc")    # what the button does (also returns the text)

Each command line runs in Rv6's shell (`sh -c`) on a worker thread, so the "panic
rv6disk" button stays usable while a long `cat` runs: the output then shows that the
program saw nothing of the crash, and the status line counts the driver's crashes.
The output area keeps the last 200 lines, in a monospace box of class `redleaf-rv6-shell`.

Threads: button handlers start the worker and return; the worker writes the output
widget (ipywidgets syncs it to the front end).
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
                              layout=w.Layout(width="360px"))
        self.run_button = w.Button(description="run", button_style="primary",
                                   layout=w.Layout(width="70px"))
        self.panic_button = w.Button(description="panic rv6disk", button_style="danger",
                                     layout=w.Layout(width="120px"))
        self.output = w.HTML(layout=w.Layout(height="220px", width="560px", overflow="auto"))
        self.status = w.HTML()
        self.run_button.on_click(lambda _b: self._start(self.command.value))
        self.panic_button.on_click(lambda _b: self.panic())
        self.widget = w.VBox([w.HBox([self.command, self.run_button, self.panic_button]),
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
        driver = self.system.driver
        self.status.value = (f"driver <b>{driver}</b>: {self.kernel.crashes(driver)} crashes, "
                             f"{self.kernel.restarts(driver)} restarts")
