"""The sampler: one thread that turns a running lab into snapshots for widgets and dashboards.

    sampler = Sampler(kernel, workloads, period=0.2)
    sampler.add_listener(callback)          # callback(tick: Tick), on the sampler thread
    sampler.start(); ...; sampler.stop()
    sampler.tick()                          # one step, synchronously (tests, the demo)

Every `period` seconds the sampler takes each workload's cumulative counters
and turns them into MB/s and Mpps, drains the kernel events that arrived since
the last tick (the bus callback only appends to a queue: it runs on whatever
thread emitted the event, often inside the crash path, so it must stay cheap),
folds them into per-domain counters (crashes, restarts, recoveries and their
times), takes `kernel.ps()` and a heap summary, and hands the resulting `Tick`
to every listener. It keeps its own ring buffers (`history`), so a view never
reads data back from a widget or a bokeh source.

Threads: `tick()` runs on the sampler thread (or the caller's, when driven by
hand); listeners run there too and must not block. The event queue is a deque
(append/popleft are atomic). A listener that raises is dropped and reported in
`errors`, so one broken view cannot stop the others.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..heap.layout import Layout
from ..kernel.events import Event
from .workloads import Sample, Workload

# Events a view cares about: lifecycle, faults and recovery.
WATCHED = frozenset({"start", "crash", "restart", "stop", "reclaim", "fault", "fault-armed",
                     "fault-cleared", "shadow-restart", "shadow-recovered", "shadow-gave-up"})


@dataclass
class DomainCounters:
    """What the event stream says about one domain name."""

    crashes: int = 0
    restarts: int = 0
    recoveries: int = 0
    gave_up: int = 0
    last_recovery_ms: float = float("nan")
    recovery_ms: list[float] = field(default_factory=list)
    fault_plan: str = ""


@dataclass(frozen=True)
class HeapSummary:
    """Per-domain (objects, bytes) and the largest allocation types (name, objects, bytes)."""

    per_domain: dict[str, tuple[int, int]]
    top_types: list[tuple[str, int, int]]
    live_objects: int
    live_bytes: int


@dataclass(frozen=True)
class Tick:
    t: float  # seconds since the sampler started
    rates: dict[str, tuple[float, float]]  # workload -> (MB/s, Mpps) over the last period
    events: list[Event]  # new watched events since the previous tick
    counters: dict[str, DomainCounters]
    rows: list[Any]  # kernel.ps()
    heap: HeapSummary | None


def heap_summary(kernel: Any, top: int = 8) -> HeapSummary:
    """Group the registry by owner and by type (one pass over the C registry's entries)."""
    names = {d.id: name for name, d in kernel.domains.items()}
    names[1] = "root"
    per_domain: dict[str, list[int]] = {}
    by_type: Counter[str] = Counter()
    type_bytes: Counter[str] = Counter()
    for entry in kernel.heap.entries():
        if entry.owner == 0:
            continue
        owner = names.get(entry.owner, f"#{entry.owner}")
        slot = per_domain.setdefault(owner, [0, 0])
        slot[0] += 1
        slot[1] += entry.size
        layout = Layout.by_id(entry.type_id)
        tname = layout.name if layout is not None else f"type {entry.type_id}"
        by_type[tname] += 1
        type_bytes[tname] += entry.size
    stats = kernel.heap.stats()
    tops = sorted(by_type, key=lambda n: (-type_bytes[n], n))[:top]
    return HeapSummary({k: (v[0], v[1]) for k, v in sorted(per_domain.items())},
                       [(n, by_type[n], type_bytes[n]) for n in tops],
                       stats.live_objects, stats.live_bytes)


Listener = Callable[[Tick], None]


class Sampler:
    def __init__(self, kernel: Any, workloads: Mapping[str, Workload] | None = None,
                 period: float = 0.2, capacity: int = 3000, heap_every: int = 5) -> None:
        self.kernel = kernel
        self.workloads: Mapping[str, Workload] = workloads if workloads is not None else {}
        self.period = period
        self.heap_every = heap_every
        self.t0 = time.monotonic()
        self.history: dict[str, deque[tuple[float, float, float]]] = {}
        self.capacity = capacity
        self.counters: dict[str, DomainCounters] = {}
        self.markers: deque[tuple[float, str, str]] = deque(maxlen=capacity)  # (t, kind, dom)
        self.errors: list[str] = []
        self.ticks = 0
        self._last: dict[str, Sample] = {}
        self._queue: deque[Event] = deque()
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._sub = kernel.events.subscribe(self._queue.append, kinds=WATCHED)

    # -- listeners and thread -------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def start(self) -> Sampler:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._main, name="redleaf-sampler",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._thread = None

    def close(self) -> None:
        self.stop()
        self._sub.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        while not self._stop.wait(self.period):
            self.tick()

    # -- one step ---------------------------------------------------------------------
    def event_time(self, event: Event) -> float:
        """An event's timestamp on the sampler's clock (seconds since it started)."""
        return (self.kernel.events.t0_ns + event.ts_ns) / 1e9 - self.t0

    def tick(self) -> Tick:
        with self._tick_lock:
            now = time.monotonic()
            t = now - self.t0
            rates: dict[str, tuple[float, float]] = {}
            for name, wl in list(self.workloads.items()):
                sample = wl.sample()
                last = self._last.get(name)
                self._last[name] = sample
                if last is None or sample.t <= last.t:
                    mbps = mpps = 0.0
                else:
                    dt = sample.t - last.t
                    mbps = max(0, sample.bytes - last.bytes) / dt / 1e6
                    mpps = max(0, sample.ops - last.ops) / dt / 1e6
                rates[name] = (mbps, mpps)
                ring = self.history.setdefault(name, deque(maxlen=self.capacity))
                ring.append((t, mbps, mpps))
            events = []
            while self._queue:
                event = self._queue.popleft()
                events.append(event)
                self._fold(event)
            self.ticks += 1
            heap = None
            if self.heap_every and (self.ticks % self.heap_every == 1 or self.heap_every == 1):
                heap = heap_summary(self.kernel)
            tick = Tick(t, rates, events, {k: _copy(v) for k, v in self.counters.items()},
                        self.kernel.ps(), heap)
            for listener in list(self._listeners):
                try:
                    listener(tick)
                except Exception as exc:
                    self._listeners.remove(listener)
                    self.errors.append(f"{listener!r}: {type(exc).__name__}: {exc}")
            return tick

    def _fold(self, event: Event) -> None:
        if event.domain is None:
            return
        c = self.counters.setdefault(event.domain, DomainCounters())
        kind = event.kind
        if kind == "crash":
            c.crashes += 1
            self.markers.append((self.event_time(event), "crash", event.domain))
        elif kind == "restart":
            c.restarts += 1
        elif kind == "shadow-recovered":
            c.recoveries += 1
            ms = int(event.data.get("recovery_ns", 0)) / 1e6
            c.last_recovery_ms = ms
            c.recovery_ms.append(ms)
            self.markers.append((self.event_time(event), "recovery", event.domain))
        elif kind == "shadow-gave-up":
            c.gave_up += 1
        elif kind == "fault-armed":
            c.fault_plan = str(event.data.get("plan", ""))
        elif kind == "fault-cleared":
            c.fault_plan = ""


def _copy(c: DomainCounters) -> DomainCounters:
    return DomainCounters(c.crashes, c.restarts, c.recoveries, c.gave_up, c.last_recovery_ms,
                          list(c.recovery_ms), c.fault_plan)
