"""The unraisable hook re-arms a swallowed `DomainUnwind` only where it belongs.

When a `DomainUnwind` fires inside a finalizer, CPython swallows it and reports it to
`sys.unraisablehook`; the kernel's hook (kernel/unwind.py) re-arms it so the unwinding
goes on. That is right only for a thread that executes inside a dead incarnation. In any
other thread, re-arming kills the thread at its next bytecode wherever it is, even a new
thread before `Thread.start` has seen it start, which leaves the spawning thread waiting
for ever (issue 15's `Kernel._spawn` hang had this shape: a new thread died after a
`DomainUnwind` went through the hook). Domains cannot define finalizers (the safe subset
refuses `__del__`, `finally` around `yield` and weakref), so the tests call the hook as
CPython would.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from redleaf_lab.errors import DomainUnwind
from redleaf_lab.kernel import unwind
from redleaf_lab.kernel.context import thread_state


class Swallowed:
    """What CPython passes to the hook for an exception a finalizer swallowed."""

    exc_type = DomainUnwind
    exc_value = DomainUnwind("swallowed in a finalizer")
    exc_traceback = None
    err_msg = None
    object = None


def run_after_the_hook(prepare: Any = None) -> list[str]:
    """In a fresh thread: optionally enter something, call the hook, run bytecode."""
    outcome: list[str] = []

    def body() -> None:
        ts = thread_state()
        if prepare is not None:
            ts.stack.append(prepare)
        try:
            sys.unraisablehook(Swallowed)  # type: ignore[arg-type]
            for _ in range(1000):  # plenty of check points for a re-armed unwind to fire
                pass
            outcome.append("went on")
        except DomainUnwind:
            outcome.append("unwound")
        finally:
            del ts.stack[1:]
            unwind.cancel_pending()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(10.0)
    assert not thread.is_alive()
    return outcome


def test_a_thread_outside_any_dead_domain_is_left_alone(kernel):
    unwind.install_unraisable_hook()
    assert run_after_the_hook() == ["went on"]
    kernel.load("echo")  # inside a running domain: not a dead one either
    assert run_after_the_hook(kernel.domain("echo")) == ["went on"]


def test_a_thread_inside_a_dead_incarnation_gets_its_unwind_again(kernel):
    unwind.install_unraisable_hook()
    kernel.load("echo")
    dead = kernel.domain("echo")
    kernel.panic("echo")
    assert dead.state == "crashed"
    assert run_after_the_hook(dead) == ["unwound"]


def test_other_unraisable_exceptions_go_to_the_previous_hook(kernel, monkeypatch):
    seen: list[Any] = []
    monkeypatch.setattr(unwind, "_previous_hook", seen.append)
    unwind.install_unraisable_hook()

    class Other(Swallowed):
        exc_type = ValueError
        exc_value = ValueError("something else")

    sys.unraisablehook(Other)  # type: ignore[arg-type]
    assert seen == [Other]
