"""Ctrl-C belongs to the user: telling a real interrupt from a domain's panic.

A `KeyboardInterrupt` that reaches a proxy boundary is either the user's (SIGINT: Ctrl-C
in a terminal, "interrupt kernel" in Jupyter, delivered to the main thread wherever it
is, often inside a domain) or a domain raising it on purpose. The first must stop the
call and reach the user, with no crash counted and no shadow retry; the second is a
panic like any other exception.

`install()` (called by `boot()` from the main thread) wraps the current SIGINT handler:
the wrapper notes that a real interrupt arrived, then does what the old handler did.
At the proxy boundary `claim(ts, exc)` says whether `exc` is that interrupt: it takes
the note and remembers the exception on the thread, so every outer boundary of the same
unwinding lets it through too, until it reaches the root context.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_pending = threading.Event()
_installed = False


def _handler(previous: Any) -> Any:
    def on_sigint(signum: int, frame: Any) -> Any:
        _pending.set()
        if callable(previous):
            return previous(signum, frame)
        raise KeyboardInterrupt

    return on_sigint


def install() -> None:
    """Wrap the SIGINT handler once per process (only possible from the main thread)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        return
    signal.signal(signal.SIGINT, _handler(previous))
    _installed = True


def claim(ts: Any, exc: BaseException) -> bool:
    """Is `exc`, arriving at a proxy boundary on thread `ts`, the user's interrupt?"""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if ts.user_interrupt is exc:
        return True
    if _pending.is_set() and threading.current_thread() is threading.main_thread():
        _pending.clear()
        ts.user_interrupt = exc
        return True
    return False
