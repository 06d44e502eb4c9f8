"""Per-thread execution context: which domain is this thread executing in?

Every thread has a `ThreadState` with a continuation stack: a list of the
domain incarnations the thread has entered, innermost last. The bottom entry
is always `ROOT`, the trusted context of the program that booted the kernel
(the notebook, the CLI, a test). A proxy pushes the callee on entry and pops
it on return, so `stack[-1]` *is* the current domain; there is no separate
"current domain" variable to keep in sync.

The kernel finds threads to unwind by scanning `all_thread_states()`.

Ownership rules: a thread only mutates its own `ThreadState` (push/pop), with
one exception: the kernel sets `unwind_target` on another thread, under the
GIL, just before delivering it an asynchronous `DomainUnwind`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol


class Incarnation(Protocol):
    """What the context needs of a domain incarnation (see kernel.domain)."""

    id: int
    name: str


class RootContext:
    """The trusted context below every thread's stack: owner id 1 on every heap.
    Its fields are slots, like a Domain's: the proxies read `caller.gate` on every call."""

    __slots__ = ("gate", "id", "name", "state")

    def __init__(self) -> None:
        self.id = 1
        self.name = "root"
        self.state = "running"
        self.gate = None

    def __repr__(self) -> str:
        return "<root>"


ROOT = RootContext()


class ThreadState:
    """One thread's continuation stack and unwinding mailbox."""

    __slots__ = ("__weakref__", "ident", "name", "stack", "thread", "unwind_target",
                 "user_interrupt")

    def __init__(self) -> None:
        current = threading.current_thread()
        self.ident: int = threading.get_ident()
        self.name: str = current.name
        self.thread: threading.Thread = current
        self.stack: list[Incarnation] = [ROOT]
        self.unwind_target: Incarnation | None = None
        # the user's KeyboardInterrupt on its way out through proxy boundaries
        # (kernel.interrupts): not a panic of any domain it passes
        self.user_interrupt: BaseException | None = None

    @property
    def current(self) -> Incarnation:
        return self.stack[-1]

    def __repr__(self) -> str:
        path = " -> ".join(d.name for d in self.stack)
        return f"<thread {self.name}: {path}>"


class _Local(threading.local):
    """`ts` is the thread's state; `stack` is `ts.stack` again, one lookup closer for
    the proxies' fast path."""

    def __init__(self) -> None:
        self.ts = ThreadState()
        self.stack = self.ts.stack
        _REGISTRY[self.ts.ident] = self.ts


_REGISTRY: weakref.WeakValueDictionary[int, ThreadState] = weakref.WeakValueDictionary()
_local = _Local()


def thread_state() -> ThreadState:
    """The calling thread's state (created on first use)."""
    return _local.ts


def registered_thread_state() -> ThreadState | None:
    """The calling thread's state if it has one already (None otherwise): for code that
    must not create one, such as a hook that may run in a thread still starting."""
    ts = _REGISTRY.get(threading.get_ident())
    if ts is None or not ts.thread.is_alive():
        return None  # none yet, or a dead thread's whose ident this thread reuses
    return ts


def local_holder() -> _Local:
    """The thread-local holder; generated proxies read `.ts` from it directly."""
    return _local


def current_domain() -> Incarnation:
    return _local.stack[-1]


def current_owner_id() -> int:
    return _local.stack[-1].id


def all_thread_states() -> list[ThreadState]:
    """Live threads' states (a thread's entry disappears when the thread ends)."""
    live = []
    for ts in list(_REGISTRY.values()):
        if ts.thread.is_alive():
            live.append(ts)
    return live
