"""The Kernel: domain table, shared heap, crash handling, threads, faults, events.

`redleaf_lab.boot()` returns a `Kernel`, the in-process analog of RedLeaf's
microkernel. It owns:

* the shared heap (`CoreHeap`, C) where domains exchange RRefs;
* the domain table: name -> current `Domain` incarnation, plus a bounded history
  (the last HISTORY_LIMIT replaced incarnations; per-name call counters for older ones);
* `events` (the bus everything observable goes through) and `faults`.

Life of a domain: `load()` checks and compiles its folder (once), creates an
incarnation with a fresh id, runs its code and `init(ctx, **caps)` *inside*
the domain (allocations belong to it), and returns a proxy. `crash()` is the
panic path: mark crashed, forbid new heap ownership (C `kill_domain`), unwind
every thread executing inside it, reclaim everything it owns. `restart()`
re-creates it from the cached image with the same capabilities. `stop()` is a
clean termination with the same reclamation.

Locking: `_lock` (re-entrant) guards the domain table and state changes.
Events are emitted outside it. Heap operations are atomic C calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core.heap import CoreHeap
from ..errors import (
    DomainLoadError,
    DomainUnwind,
    InjectedPanic,
    RpcError,
    SafetyError,
    describe_exception,
)
from ..heap import rref as rref_module
from ..idl import gates
from ..idl.interface import Interface
from ..idl.proxy import ProxyBase, make_proxy
from . import interrupts, loader, unwind
from .context import all_thread_states, thread_state
from .domain import (
    CRASHED,
    LOADING,
    RESTARTING,
    RUNNING,
    STOPPED,
    CrashInfo,
    Domain,
    DomainContext,
    DomainSpec,
    run_domain_thread,
)
from .events import EventBus
from .faults import Faults
from .leaks import find_leaks
from .safety import audit

HISTORY_LIMIT = 64  # replaced incarnations kept for inspection (Kernel._history)


@dataclass(frozen=True)
class DomainRow:
    """One row of `Kernel.ps()`: what the domain table widget shows."""

    name: str
    id: int
    state: str
    incarnation: int
    calls: int
    crashes: int
    restarts: int
    heap_objects: int
    heap_bytes: int
    threads: int
    interface: str


class Kernel:
    def __init__(self, heap_bytes: int = 1 << 30, max_objects: int = 1 << 20,
                 proxies: str | None = None) -> None:
        # "gate" (compiled call gates) or "python" (the generated proxies): idl.gates
        self.proxies = gates.choose(proxies)
        self.heap = CoreHeap(arena_bytes=heap_bytes, max_objects=max_objects)
        self.events = EventBus()
        self.faults = Faults(self._panic_now, self._fault_changed)
        self._lock = threading.RLock()
        self._next_id = 2
        self._domains: dict[str, Domain] = {}
        # the last HISTORY_LIMIT incarnations replaced by a newer one (newest last); the
        # calls of older ones are folded into _retired_calls, so a long run with thousands
        # of restarts keeps a bounded history and ps() still counts every call
        self._history: deque[Domain] = deque()
        self._retired_calls: dict[str, int] = {}
        self._crashes: dict[str, int] = {}
        self._restarts: dict[str, int] = {}
        self._reclaim_hooks: dict[str, list[Callable[[Domain], Any]]] = {}
        self._tracing = False
        self._closed = False
        self.started_ns = time.monotonic_ns()
        rref_module.push_default_heap(self.heap)
        unwind.install_unraisable_hook()
        audit.install()  # the host backstop: refuses host operations inside domains
        interrupts.install()  # Ctrl-C inside a domain call is the user's, not a panic
        self.events.emit("boot", None, pid=os.getpid(), heap_bytes=heap_bytes)

    # -- loading --------------------------------------------------------------
    def load(self, what: str | os.PathLike[str] | loader.DomainImage, name: str | None = None,
             **caps: Any) -> Any:
        """Load a domain (by name, folder, or a checked image from
        `loader.image_from_sources`) with capabilities; returns its proxy."""
        image = what if isinstance(what, loader.DomainImage) else loader.load_image(what)
        name = name or image.name
        with self._lock:
            current = self._domains.get(name)
            if current is not None and current.state in (RUNNING, LOADING):
                raise DomainLoadError(f"a domain named {name!r} is already {current.state}")
        self._check_caps(image, caps)
        domain = self._start(name, DomainSpec(image, dict(caps)), incarnation=1)
        return domain.proxy

    def _check_caps(self, image: loader.DomainImage, caps: dict[str, Any]) -> None:
        missing = [c for c in image.needs if c not in caps]
        extra = [c for c in caps if c not in image.needs]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            raise DomainLoadError(f"{image.name}: capabilities: {'; '.join(parts)} "
                                  f"(the manifest needs: {', '.join(image.needs) or 'nothing'})")
        for cap, iface in image.needs.items():
            value = caps[cap]
            if iface is not None and not (
                isinstance(value, ProxyBase) and issubclass(value.interface, iface)
            ):
                raise DomainLoadError(
                    f"{image.name}: capability {cap!r} must be a {iface.__name__} proxy, "
                    f"got {value!r}"
                )

    def _start(self, name: str, spec: DomainSpec, incarnation: int) -> Domain:
        with self._lock:
            if self._closed:
                raise DomainLoadError("the kernel is shut down")
            domain = Domain(self, name, self._next_id, spec, incarnation)
            self._next_id += 1
            previous = self._domains.get(name)
            self._domains[name] = domain
            if previous is not None:
                self._retire(previous)
        self._bind_devices(domain)
        ts = thread_state()
        ts.stack.append(domain)
        try:
            module = loader.instantiate(spec.image, domain.id)
            init = module.__dict__.get("init")
            if not callable(init):
                raise DomainLoadError(f"{spec.image.path}: the entry module defines no init()")
            impl = init(DomainContext(domain), **spec.caps)
            domain.impl = impl
            domain.proxy = make_proxy(spec.image.provides, domain, impl)
        except BaseException as exc:
            self._abort_load(domain, exc)
            if isinstance(exc, (DomainLoadError, SafetyError)):
                raise
            raise DomainLoadError(f"{name}: init failed: {describe_exception(exc)}") from exc
        finally:
            # A crash of this incarnation during its init may have left an unwind pending
            # for this thread; it must not fire later in the caller (a shadow restarting
            # the driver): cleared by a direct C call, with no Python entry before it.
            if ts.unwind_target is domain:
                unwind.clear_async_exc(ts.ident, None)
                ts.unwind_target = None
            while len(ts.stack) > 1 and ts.stack.pop() is not domain:
                pass
        with self._lock:
            domain.state = RUNNING
            domain.refresh_gate()
        self.events.emit("start", name, id=domain.id, incarnation=incarnation,
                         interface=spec.image.provides.__name__, folder=str(spec.image.path))
        return domain

    def _abort_load(self, domain: Domain, exc: BaseException) -> None:
        with self._lock:
            domain.state = CRASHED
            domain.crash = CrashInfo.of("init failed", exc)
            domain.refresh_gate()
        self.heap.kill_domain(domain.id)
        self._quiesce_devices(domain)  # init may have started DMA before it failed
        objects, nbytes, _deferred = self.heap.reclaim(domain.id)
        loader.forget(domain.spec.image, domain.id)
        domain.settled.set()
        self.events.emit("load-failed", domain.name, id=domain.id,
                         error=describe_exception(exc), folder=str(domain.spec.image.path),
                         reclaimed_objects=objects, reclaimed_bytes=nbytes)

    def restart(self, name: str) -> Any:
        """Re-create a crashed or stopped domain from its cached image; returns the new proxy.

        Waits (bounded) until the old incarnation's crash or stop has finished: its devices
        quiesced and its heap reclaimed."""
        previous = self.domain(name)
        if previous.state in (CRASHED, STOPPED) and not previous.settled.wait(timeout=10.0):
            raise DomainLoadError(f"{name}: the previous incarnation's crash handling did not "
                                  "finish within 10 s")
        with self._lock:
            old = self.domain(name)
            if old.state in (RUNNING, LOADING):
                raise DomainLoadError(f"{name} is {old.state}; stop or crash it first")
            previous_state = old.state
            old.state = RESTARTING
        t0 = time.monotonic_ns()
        try:
            domain = self._start(name, old.spec, old.incarnation + 1)
        except BaseException:
            with self._lock:
                if self._domains.get(name) is old:
                    old.state = previous_state
            raise
        with self._lock:
            self._restarts[name] = self._restarts.get(name, 0) + 1
        self.events.emit("restart", name, id=domain.id, incarnation=domain.incarnation,
                         restart_ns=time.monotonic_ns() - t0)
        return domain.proxy

    # -- panics -----------------------------------------------------------------
    def crash(self, domain: Domain, error: BaseException | None, reason: str = "panic") -> bool:
        """The panic path. Returns False if the domain was not running."""
        with self._lock:
            if domain.state != RUNNING:
                return False
            domain.state = CRASHED
            domain.crash = CrashInfo.of(reason, error)
            domain.refresh_gate()
            self._crashes[domain.name] = self._crashes.get(domain.name, 0) + 1
        self.heap.kill_domain(domain.id)
        info = domain.crash
        try:
            self.events.emit("crash", domain.name, id=domain.id, reason=reason,
                             error=describe_exception(error) if error else None)
            self._quiesce_devices(domain)
            info.unwound_threads = self._unwind_threads(domain)
        finally:
            # Even if this thread is itself being unwound (it may be inside another
            # domain that is crashing too), the heap is reclaimed and restarts can go on.
            interrupted: BaseException | None = None
            try:
                self._run_reclaim_hooks(domain)
            except BaseException as exc:  # this thread's own unwind landed in a hook
                interrupted = exc
            objects, nbytes, deferred = self.heap.reclaim(domain.id)
            loader.forget(domain.spec.image, domain.id)
            info.reclaimed_objects, info.reclaimed_bytes = objects, nbytes
            info.deferred_objects = deferred
            release_state(domain)  # the dead incarnation's state goes; stale proxies fail fast
            domain.settled.set()
            if interrupted is not None:
                raise interrupted
        if info.unwound_threads:
            self.events.emit("unwind", domain.name, id=domain.id, threads=info.unwound_threads)
        self.events.emit("reclaim", domain.name, id=domain.id, objects=objects, bytes=nbytes,
                         deferred=deferred)
        return True

    def add_reclaim_hook(self, name: str, hook: Callable[[Domain], Any]) -> None:
        """Run `hook(dead_incarnation)` on every crash of `name`, after its devices are
        quiesced and before its heap is reclaimed (shadows rescue in-flight requests)."""
        with self._lock:
            self._reclaim_hooks.setdefault(name, []).append(hook)

    def _run_reclaim_hooks(self, domain: Domain) -> None:
        hooks = self._reclaim_hooks.get(domain.name)
        if not hooks:
            return
        kept = []
        for hook in list(hooks):
            try:
                alive = hook(domain) is not False  # False: its owner is gone, drop it
            except Exception as exc:  # the crash path must finish; report and go on
                self.events.emit("reclaim-hook-failed", domain.name, error=repr(exc))
                alive = True
            if alive:
                kept.append(hook)
        with self._lock:
            self._reclaim_hooks[domain.name] = kept + [
                h for h in self._reclaim_hooks.get(domain.name, []) if h not in hooks]

    def _bind_devices(self, domain: Domain) -> None:
        """Give the domain's device capabilities to it (Device.bind_driver)."""
        for cap in domain.spec.caps.values():
            bind = getattr(cap, "bind_driver", None)
            if callable(bind) and not isinstance(cap, ProxyBase):
                bind(domain.id)

    def _quiesce_devices(self, domain: Domain) -> None:
        """Stop DMA before reclaiming: a device still writing completions or packets into
        the dead driver's buffers would corrupt whatever the heap reuses them for.
        Any capability with a callable `quiesce()` (a Device) is asked to stop, and is
        taken from the dead domain (`revoke_driver`) so its late writes are refused."""
        for cap in domain.spec.caps.values():
            revoke = getattr(cap, "revoke_driver", None)
            if callable(revoke) and not isinstance(cap, ProxyBase):
                revoke()
            quiesce = getattr(cap, "quiesce", None)
            if callable(quiesce) and not isinstance(cap, ProxyBase):
                try:
                    quiesce()
                except Exception as exc:  # the crash path must finish; report and go on
                    self.events.emit("quiesce-failed", domain.name, error=repr(exc))
                else:
                    self.events.emit("quiesce", domain.name, device=type(cap).__name__)

    def _unwind_threads(self, domain: Domain) -> int:
        me = threading.get_ident()
        count = 0
        deliver = unwind.set_async_exc
        for ts in all_thread_states():
            # The test and the delivery with no Python call between them: no thread switch
            # can let the thread leave the domain after the test and get a stray unwind.
            if ts.ident == me or not ts.stack or ts.stack[-1] is not domain:
                continue
            ts.unwind_target = domain
            if deliver(ts.ident, DomainUnwind) == 1:
                count += 1
        return count

    def panic(self, name: str, reason: str = "injected") -> bool:
        """Crash the named domain now (asynchronously for threads inside it)."""
        return self._panic_now(name, reason)

    def _panic_now(self, name: str, reason: str) -> bool:
        domain = self._domains.get(name)
        if domain is None or domain.state != RUNNING:
            return False
        self.events.emit("fault", name, mode="asynchronous", reason=reason)
        return self.crash(domain, InjectedPanic(reason), reason)

    def stop(self, name: str) -> None:
        """Clean termination: unwind its threads, reclaim its heap; calls then fail."""
        with self._lock:
            domain = self.domain(name)
            if domain.state != RUNNING:
                return
            domain.state = STOPPED
            domain.refresh_gate()
        self.faults.clear(name)
        self.heap.kill_domain(domain.id)
        self._quiesce_devices(domain)
        unwound = self._unwind_threads(domain)
        self.wait_unwound(domain, timeout=2.0)
        objects, nbytes, deferred = self.heap.reclaim(domain.id)
        loader.forget(domain.spec.image, domain.id)
        release_state(domain)
        domain.settled.set()
        self.events.emit("stop", name, id=domain.id, threads=unwound)
        self.events.emit("reclaim", name, id=domain.id, objects=objects, bytes=nbytes,
                         deferred=deferred)

    def forget(self, name: str) -> bool:
        """Drop an ended (stopped or crashed, settled) domain from the table: it moves to
        the bounded history, so short-lived domains (Rv6's user programs) do not grow the
        table for ever. False if it is still running or loading."""
        with self._lock:
            domain = self._domains.get(name)
            if domain is None or domain.state not in (CRASHED, STOPPED) or not \
                    domain.settled.is_set():
                return False
            del self._domains[name]
            self._retire(domain)
            self._reclaim_hooks.pop(name, None)
        return True

    def wait_unwound(self, domain: Domain, timeout: float = 2.0) -> bool:
        """Wait until no thread executes inside `domain`; True if none does."""
        deadline = time.monotonic() + timeout
        me = threading.get_ident()
        while True:
            inside = [ts for ts in all_thread_states()
                      if ts.ident != me and any(d is domain for d in ts.stack)]
            busy = [t for t in domain.threads if t.is_alive()]
            if not inside and not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    # -- faults and tracing --------------------------------------------------------
    def _needs_gate(self, name: str) -> bool:
        return self._tracing or self.faults.armed(name)

    def _fault_changed(self, name: str, plan: Any) -> None:
        domain = self._domains.get(name)
        if plan is not None:
            self.events.emit("fault-armed", name, plan=plan.describe())
        else:
            self.events.emit("fault-cleared", name)
        if domain is not None:
            with self._lock:
                domain.refresh_gate()

    def _call_gate(self, domain: Domain) -> bool:
        """Slow path of a call into a running domain: tracing and fault trips."""
        if self._tracing:
            self.events.emit("call", domain.name, id=domain.id)
        if self.faults.should_trip(domain.name):
            self.events.emit("fault", domain.name, mode="at call")
            if not self.faults.armed(domain.name):
                with self._lock:
                    domain.refresh_gate()
            return True
        return False

    def trace(self, on: bool = True) -> None:
        """Emit a `call` event for every cross-domain call (slow; for teaching)."""
        self._tracing = on
        with self._lock:
            for domain in self._domains.values():
                domain.refresh_gate()

    # -- threads --------------------------------------------------------------------
    def _spawn(self, domain: Domain, target: Callable[..., Any], args: tuple[Any, ...],
               name: str | None) -> threading.Thread:
        if domain.state != RUNNING and domain.state != LOADING:
            raise RpcError(domain.name, domain.state_reason())
        thread = threading.Thread(target=run_domain_thread, args=(domain, target, args),
                                  name=name or f"{domain.name}-{len(domain.threads)}", daemon=True)
        domain.threads.add(thread)
        thread.start()
        return thread

    # -- queries --------------------------------------------------------------------
    def domain(self, name: str) -> Domain:
        try:
            return self._domains[name]
        except KeyError:
            raise KeyError(f"no domain named {name!r}") from None

    def proxy(self, name: str) -> Any:
        """The proxy of the current incarnation (RpcError while it is still loading)."""
        domain = self.domain(name)
        if domain.proxy is None:
            raise RpcError(name, domain.state_reason())
        return domain.proxy

    @property
    def domains(self) -> dict[str, Domain]:
        return dict(self._domains)

    def crashes(self, name: str) -> int:
        return self._crashes.get(name, 0)

    def restarts(self, name: str) -> int:
        return self._restarts.get(name, 0)

    def _retire(self, domain: Domain) -> None:
        """`domain` was replaced by a new incarnation (kernel lock held): keep it in the
        bounded history; the oldest one leaving it leaves its calls in _retired_calls."""
        self._history.append(domain)
        while len(self._history) > HISTORY_LIMIT:
            old = self._history.popleft()
            self._retired_calls[old.name] = self._retired_calls.get(old.name, 0) + old.calls

    def calls(self, name: str) -> int:
        """Calls into every incarnation of `name` so far."""
        with self._lock:
            current = self._domains.get(name)
            total = self._retired_calls.get(name, 0) + (current.calls if current else 0)
            return total + sum(x.calls for x in self._history if x.name == name)

    def ps(self) -> list[DomainRow]:
        rows = []
        for name, d in sorted(self._domains.items()):
            objects, nbytes = self.heap.domain_stats(d.id)
            rows.append(DomainRow(
                name=name, id=d.id, state=d.state, incarnation=d.incarnation,
                calls=self.calls(name),
                crashes=self.crashes(name), restarts=self.restarts(name),
                heap_objects=objects, heap_bytes=nbytes,
                threads=sum(1 for t in d.threads if t.is_alive()),
                interface=d.interface.__name__,
            ))
        return rows

    def interface_of(self, name: str) -> type[Interface]:
        iface: type[Interface] = self.domain(name).interface
        return iface

    # -- shutdown -------------------------------------------------------------------
    def shutdown(self) -> dict[str, int]:
        """Stop every domain and reclaim; returns the leaks: every live object that no
        handle reaches, whoever owns it (root included), and whatever a domain still
        owns (kernel/leaks.py). Objects the caller still holds handles on are not leaks."""
        self.faults.clear_all()
        for name, domain in list(self._domains.items()):
            if domain.state == RUNNING:
                self.stop(name)
        with self._lock:
            self._closed = True
        stats = self.heap.stats()
        report = find_leaks(self.heap)  # whoever owns them, root included
        leaked = {"objects": report.objects, "bytes": report.bytes}
        self.events.emit("shutdown", None, live_objects=stats.live_objects,
                         leaked_objects=report.objects, leaked_ids=report.top_level)
        rref_module.remove_default_heap(self.heap)
        return leaked

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.shutdown()

    def __repr__(self) -> str:
        running = sum(1 for d in self._domains.values() if d.state == RUNNING)
        return f"<Kernel: {running}/{len(self._domains)} domains running>"


def release_state(domain: Domain) -> None:
    """Drop the references to a dead incarnation's state: its implementation object and
    the proxy's bindings to it. Handles it kept become garbage, so the heap memory their
    views pin returns to the arena (the objects themselves were reclaimed already)."""
    domain.impl = None
    release = getattr(domain.proxy, "_release_impl", None)
    if release is not None:
        release()


def boot(heap_bytes: int = 1 << 30, max_objects: int = 1 << 20,
         proxies: str | None = None) -> Kernel:
    """Boot the microkernel library in-process. `proxies`: "gate" (the compiled call gate,
    the default where it is built) or "python" (the generated proxies; also selected by
    the environment variable REDLEAF_LAB_PROXIES=python)."""
    return Kernel(heap_bytes=heap_bytes, max_objects=max_objects, proxies=proxies)
