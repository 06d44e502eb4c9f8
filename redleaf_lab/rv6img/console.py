"""The console device's far end: a trusted object the fs domain reads and writes.

The fs domain gets it as its `console` capability (major device CONSOLE). `read(max,
timeout)` returns up to `max` bytes of typed input, or b"" when none came within
`timeout` seconds (bounded: the domain waits in slices and can be unwound); `closed()`
says the input has ended (Ctrl-D); `write(data)` sends output to the sink (the terminal,
a notebook cell's buffer, a test's list).

Fronts feed it: `feed(text)` queues input, `close()` ends it, `wants_input` is set exactly
while some reader waits inside `read` on an empty queue (the terminal front then
prompts; a reader that leaves, e.g. a killed program, clears it again, so the flag never
outlives its reader), `take_output()` returns and clears what was written when no sink
is given.

Locking: one condition variable guards the input queue; output goes to the sink under
a lock of its own. Nothing here calls domain code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..sealed import Sealed


class Console(Sealed):
    def __init__(self, sink: Callable[[bytes], object] | None = None) -> None:
        self._cond = threading.Condition()
        self._input = bytearray()
        self._closed = False
        self._sink = sink
        self._out_lock = threading.Lock()
        self._output = bytearray()
        self._waiting = 0  # readers inside read() waiting on an empty queue
        self.wants_input = threading.Event()

    # -- the fs domain's side --------------------------------------------------------
    def read(self, maximum: int, timeout: float) -> bytes:
        if type(maximum) is not int or maximum < 0:
            return b""
        timeout = min(max(float(timeout), 0.0), 0.05)
        with self._cond:
            if not self._input and not self._closed:
                self._waiting += 1
                self.wants_input.set()
                try:
                    self._cond.wait(timeout)
                finally:
                    self._waiting -= 1
                    if self._waiting == 0 or self._input:
                        self.wants_input.clear()
            if not self._input:
                return b""
            # a line at a time, like a terminal in canonical mode
            end = self._input.find(b"\n")
            n = min(maximum, end + 1 if end >= 0 else len(self._input))
            data = bytes(self._input[:n])
            del self._input[:n]
            return data

    def closed(self) -> bool:
        with self._cond:
            return self._closed and not self._input

    def write(self, data: bytes) -> None:
        if type(data) is not bytes:
            return
        with self._out_lock:
            if self._sink is not None:
                self._sink(data)
            else:
                self._output.extend(data)

    # -- the front's side ------------------------------------------------------------
    def feed(self, text: str | bytes) -> None:
        raw = text.encode() if isinstance(text, str) else bytes(text)
        with self._cond:
            self._input.extend(raw)
            self.wants_input.clear()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take_output(self) -> str:
        with self._out_lock:
            text = self._output.decode("utf-8", "replace")
            self._output.clear()
            return text
