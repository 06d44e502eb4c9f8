"""Ctrl-C for the terminal front: SIGINT as a count the front's loop handles itself.

    interrupts = Interrupts(); interrupts.install()     # on the main thread
    ... interrupts.in_input = True; input(prompt) ...   # a ^C breaks this input()
    if interrupts.take(): ...                           # a ^C came since the last take
    interrupts.uninstall()

The Python handler only counts, so a ^C can never land inside the front's bookkeeping
(or inside a call into Rv6); it raises KeyboardInterrupt only to break a waiting
`input()`, and once per `input()`.

Why a watcher thread: CPython runs Python signal handlers on the main thread only, when
it next executes bytecode. The tty sends SIGINT to the process, and the kernel may
deliver it to any thread (Rv6's domain threads do not block it); the main thread then
stays asleep in readline's select() and the ^C waits for the next key press (and a
signal that lands just before that select() is missed the same way). So the C-level
handler also writes the signal number to a wakeup pipe (`signal.set_wakeup_fd`); the
watcher reads it and, while the Python handler has not yet counted every SIGINT,
nudges the main thread with SIGUSR2 (`pthread_kill`, a no-op handler): its select()
returns EINTR and the pending handlers run.

Threads: `handler` runs on the main thread and is the only writer of `received`; the
loop (main thread) is the only writer of `handled`; the watcher only reads them.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from typing import Any

NUDGE = signal.SIGUSR2


class Interrupts:
    def __init__(self) -> None:
        self.received = 0  # SIGINTs the Python handler has seen
        self.handled = 0  # ... and the loop has taken
        self.in_input = False
        self._signalled = 0  # SIGINTs the C handler reported through the wakeup pipe
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._saved: tuple[Any, Any, int] | None = None
        self._pipe: tuple[int, int] | None = None

    # -- the main thread's side ---------------------------------------------------------
    def handler(self, _signum: int, _frame: Any) -> None:
        self.received += 1
        if self.in_input:
            self.in_input = False
            raise KeyboardInterrupt

    def take(self) -> bool:
        """True if a ^C came since the last take (several count as one)."""
        if self.received == self.handled:
            return False
        self.handled = self.received
        return True

    def install(self) -> None:
        """Install the handlers and start the watcher (main thread only)."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._pipe = (read_end, write_end)
        previous_int = signal.signal(signal.SIGINT, self.handler)
        previous_nudge = signal.signal(NUDGE, _nothing)
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._saved = (previous_int, previous_nudge, previous_fd)
        self._watcher = threading.Thread(target=self._watch, args=(read_end,), daemon=True,
                                         name="rv6-sigint-watch")
        self._watcher.start()

    def uninstall(self) -> None:
        if self._saved is None or self._pipe is None:
            return
        previous_int, previous_nudge, previous_fd = self._saved
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(NUDGE, previous_nudge)
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(1.0)
        for fd in self._pipe:
            os.close(fd)
        self._saved = self._pipe = None

    # -- the watcher thread -----------------------------------------------------------
    def _watch(self, read_end: int) -> None:
        main = threading.main_thread().ident
        assert main is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([read_end], [], [], 0.02)
            if ready:
                try:
                    self._signalled += os.read(read_end, 512).count(signal.SIGINT)
                except (BlockingIOError, OSError):
                    pass
            if self.received < self._signalled:
                signal.pthread_kill(main, NUDGE)


def _nothing(_signum: int, _frame: Any) -> None:
    """The nudge's handler: its only work is waking the main thread."""
