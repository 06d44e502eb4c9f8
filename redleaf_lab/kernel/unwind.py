"""Asynchronous unwinding: deliver `DomainUnwind` to threads inside a crashed domain.

CPython checks for a pending asynchronous exception in its eval-breaker
handler, right after a thread re-takes the GIL. A thread that the crashing
thread sees "inside D" (its continuation stack's top is D) is frozen at an
eval-breaker point or in a C call that released the GIL, so the exception
fires where the snapshot saw it: still inside D. Two consequences:

* A thread blocked in a long C call is unwound only when the call returns.
  Domains therefore wait in short slices (`DomainContext.sleep/wait/lock`).
* A thread frozen in a C call that released the GIL may leave D (by an
  exception, or by returning) before its next check. The proxy then clears the
  pending exception with a direct C call (`clear_async_exc`) *before* it calls
  any Python helper: a Python function's entry is itself a check point.
* If it lands at the entry of a Python finalizer, CPython swallows it; the
  unraisable hook installed at boot re-delivers it (`install_unraisable_hook`).
  RRef handles free their objects from C for the same reason (heap/rref.py).

This is the only place the kernel uses ctypes; domains never can.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

from ..errors import DomainUnwind

_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
# For generated proxies: `clear_async_exc(ident, None)` is a C call, so no pending
# exception can fire before it runs (CPython checks after calls, and at Python entry).
clear_async_exc = _clear_async_exc
# For the kernel's crash path: `set_async_exc(ident, DomainUnwind)` right after testing that
# the thread is inside the domain, with no Python entry (no thread switch) in between.
set_async_exc = _set_async_exc


def deliver(thread_ident: int) -> bool:
    """Schedule `DomainUnwind` in the thread; False if the thread is gone."""
    return _set_async_exc(thread_ident, DomainUnwind) == 1


def cancel_pending() -> None:
    """Drop an asynchronous exception pending for the calling thread, if any."""
    _clear_async_exc(threading.get_ident(), None)


_previous_hook: Any = None


def _unraisable_hook(unraisable: Any) -> None:
    """A `DomainUnwind` that a finalizer swallowed: deliver it again, or drop it.

    If the calling thread executes inside a dead incarnation (its unwind landed in a
    finalizer that ran there), the exception is re-armed for it and fires right after
    the finalizer returns. Otherwise the `DomainUnwind` is about a domain this thread
    is not in (a trusted object's finalizer, run by the garbage collector in an
    unrelated thread, that called into a crashed incarnation, say; domains themselves
    cannot define finalizers), and re-arming it would kill this thread wherever it
    is, even a new thread before `Thread.start` has seen it start (which then waits
    for ever). It is dropped. Anything else goes to the previous hook.
    """
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, DomainUnwind):
        if _inside_a_dead_incarnation():
            deliver(threading.get_ident())
        return
    if _previous_hook is not None:
        _previous_hook(unraisable)


def _inside_a_dead_incarnation() -> bool:
    """Whether the calling thread's continuation stack holds an incarnation that is no
    longer running (read without creating a state for a thread that has none)."""
    from .context import registered_thread_state

    ts = registered_thread_state()
    if ts is None:
        return False
    return any(getattr(d, "state", "running") not in ("running", "loading") for d in ts.stack)


def install_unraisable_hook() -> None:
    """Install `_unraisable_hook` once per process (idempotent)."""
    global _previous_hook
    if sys.unraisablehook is not _unraisable_hook:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable_hook
