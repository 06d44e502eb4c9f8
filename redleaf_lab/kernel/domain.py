"""Domains: one `Domain` object per incarnation, and the `DomainContext` it gets.

A domain incarnation has a fresh numeric id (heap owner id), a state, its
implementation object and the proxy bound to it. A restart creates a new
incarnation with the same name, spec and capabilities; ids are never reused,
so a stale handle from an old incarnation can never pass for a new one.

States: loading -> running -> crashed | stopped; a crashed domain that the
kernel or a shadow brings back goes through `restarting` (on the *name*, see
`Kernel.restart`), and the new incarnation starts in `loading`.

`gate` is the proxy fast-path switch: None while the domain runs normally;
the bound method `_gate` when the domain is dead, tracing is on or a fault is
armed. The proxy then asks `_gate()`, which raises `RpcError` for a dead
domain and returns True when an injected fault should trip.

`DomainContext` is the only kernel object a domain sees (the `ctx` of
`init(ctx, **caps)`): its name and id, a logger, bounded waits, and threads
that the kernel tracks per domain and unwinds on a crash.

Locking: state changes happen under the kernel lock; `calls` is a plain
counter updated under the GIL (exact enough for statistics).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DomainUnwind, RpcError, describe_exception
from ..sealed import Sealed
from .context import thread_state

if TYPE_CHECKING:
    from .._core.heap import CoreHeap
    from .kernel import Kernel
    from .loader import DomainImage

LOADING, RUNNING, CRASHED, RESTARTING, STOPPED = (
    "loading", "running", "crashed", "restarting", "stopped")


@dataclass
class CrashInfo:
    """What the kernel remembers of a crash. Text only: keeping the exception would keep
    its traceback, whose frames pin the caller's objects (RRef handles) forever."""

    ts_ns: int
    reason: str
    error: str = ""  # "ValueError: bad block 9"
    traceback: str = ""
    reclaimed_objects: int = 0
    reclaimed_bytes: int = 0
    deferred_objects: int = 0
    unwound_threads: int = 0  # threads told to unwind (an asynchronous DomainUnwind each)
    left_threads: int = 0  # threads that actually left: the unwind reached their entry

    @classmethod
    def of(cls, reason: str, error: BaseException | None) -> CrashInfo:
        """Record a crash. The text is built without running the domain's code: the
        exception (and its causes) are described from their arguments, not `str()`,
        because this runs in the caller's context (errors.describe_exception)."""
        if error is None:
            return cls(time.monotonic_ns(), reason)
        parts: list[str] = []
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen and len(parts) < 8:
            seen.add(id(current))
            tb = "".join(traceback.format_tb(current.__traceback__))
            parts.insert(0, f"Traceback (most recent call last):\n{tb}"
                            f"{describe_exception(current)}\n")
            current = current.__cause__ or current.__context__
        text = "\nThe above exception led to the following:\n\n".join(parts)
        return cls(time.monotonic_ns(), reason, describe_exception(error), text)


@dataclass
class DomainSpec:
    """What the kernel needs to (re)create a domain: image + capabilities."""

    image: DomainImage
    caps: dict[str, Any] = field(default_factory=dict)


class Domain:
    """One incarnation of a domain."""

    __slots__ = ("__weakref__", "crash", "gate", "gates", "heap", "id", "impl", "incarnation",
                 "kernel", "name", "proxy", "proxy_calls", "settled", "spec", "started_ns",
                 "state", "threads")

    def __init__(self, kernel: Kernel, name: str, domain_id: int, spec: DomainSpec,
                 incarnation: int) -> None:
        self.kernel = kernel
        self.heap: CoreHeap = kernel.heap
        self.name = name
        self.id = domain_id
        self.spec = spec
        self.incarnation = incarnation
        self.state = LOADING
        self.gate: Callable[[], bool] | None = self._gate
        self.proxy_calls = 0  # counted by the generated Python proxies (idl/proxy.py)
        self.gates: tuple[Any, ...] = ()  # compiled gates into it, each counting its calls
        self.impl: Any = None
        self.proxy: Any = None
        self.crash: CrashInfo | None = None
        self.threads: set[threading.Thread] = set()
        self.started_ns = time.monotonic_ns()
        # Set once a crash or stop has finished its work (devices quiesced, threads told to
        # unwind, heap reclaimed): a restart waits for it, or the new incarnation could
        # meet a device that the old one's crash path is still resetting.
        self.settled = threading.Event()

    @property
    def calls(self) -> int:
        """Calls into this incarnation: the Python proxies' count plus every gate's."""
        from ..idl.gates import gate_calls

        return self.proxy_calls + gate_calls(self.gates)

    # -- the proxy gate --------------------------------------------------------
    def _gate(self) -> bool:
        if self.state != RUNNING:
            raise RpcError(self.name, self.state_reason())
        return self.kernel._call_gate(self)

    def state_reason(self) -> str:
        if self.state == CRASHED:
            return "crashed" if self.crash is None else f"crashed ({self.crash.reason})"
        if self.state == STOPPED:
            return "was stopped"
        return f"is {self.state}"

    def refresh_gate(self) -> None:
        open_fast_path = self.state == RUNNING and not self.kernel._needs_gate(self.name)
        self.gate = None if open_fast_path else self._gate

    @property
    def interface(self) -> Any:
        return self.spec.image.provides

    def uptime_s(self) -> float:
        return (time.monotonic_ns() - self.started_ns) / 1e9

    def __repr__(self) -> str:
        return f"<domain {self.name}#{self.id} {self.state}>"


class DomainContext(Sealed):
    """What a domain gets from the kernel: identity, logging, waits, threads."""

    def __init__(self, domain: Domain) -> None:
        self._domain = domain

    @property
    def name(self) -> str:
        return self._domain.name

    @property
    def id(self) -> int:
        return self._domain.id

    @property
    def incarnation(self) -> int:
        return self._domain.incarnation

    def _alive(self) -> None:
        """A dead incarnation's thread (one that swallowed its unwind) gets it again at
        every kernel service it asks for."""
        if self._domain.state not in ("running", "loading"):
            raise DomainUnwind(f"unwinding {self._domain.name}")

    def log(self, message: str, **data: Any) -> None:
        """Emit a `log` event from this domain."""
        self._alive()
        self._domain.kernel.events.emit("log", self._domain.name, message=message, **data)

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices so an unwinding can interrupt the wait."""
        self._alive()
        deadline = time.monotonic() + seconds
        while True:
            self._alive()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.005))

    def wait(self, event: threading.Event, timeout: float | None = None) -> bool:
        """Wait for a kernel-provided Event in bounded slices (unwindable)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not event.wait(0.005):
            self._alive()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def event(self) -> threading.Event:
        """A fresh Event for use with `wait` (domains may not import threading)."""
        return threading.Event()

    def lock(self) -> Any:
        """A lock whose `acquire` waits in bounded slices (unwindable), with an optional
        timeout; a thread of a dead incarnation waiting on it is unwound, not left waiting."""
        return _BoundedLock(self._alive)

    def spawn(self, target: Callable[..., Any], *args: Any, name: str | None = None) -> Any:
        """Start a thread that executes inside this domain; tracked by the kernel."""
        self._alive()
        return self._domain.kernel._spawn(self._domain, target, args, name)

    def stopping(self) -> bool:
        """True once this incarnation is no longer running (threads should return)."""
        return self._domain.state != RUNNING


class _BoundedLock(Sealed):
    """A mutex for domain code: waits in 5 ms slices so unwinding can interrupt it, and
    between slices raises DomainUnwind once the owning incarnation is dead (a thread that
    entered it after the crash chose whom to unwind would otherwise wait for ever)."""

    def __init__(self, alive: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._alive = alive

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; False if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._lock.acquire(timeout=0.005):
            self._alive()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> _BoundedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def run_domain_thread(domain: Domain, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Body of a kernel-tracked domain thread."""
    ts = thread_state()
    kernel = domain.kernel
    outcome = "returned"
    try:  # the push inside the try: an unwind landing right after it is handled below
        ts.stack.append(domain)
        kernel.events.emit("thread-start", domain.name, thread=threading.current_thread().name)
        target(*args)
    except DomainUnwind:
        outcome = "unwound"
        if domain.crash is not None:
            domain.crash.left_threads += 1
    except BaseException as exc:  # an uncaught exception in a domain thread is a panic
        outcome = "panicked"
        if domain.state == RUNNING:
            kernel.crash(domain, exc)
    finally:
        del ts.stack[1:]
        ts.unwind_target = None
        domain.threads.discard(threading.current_thread())
        kernel.events.emit("thread-exit", domain.name, thread=threading.current_thread().name,
                           outcome=outcome)
