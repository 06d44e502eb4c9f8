"""The sampler: one thread that turns a running lab into snapshots for widgets and dashboards.

    sampler = Sampler(kernel, workloads, period=0.2)
    sampler.add_listener(callback)          # callback(tick: Tick), on the sampler thread
    sampler.start(); ...; sampler.stop()
    sampler.tick()                          # one step, synchronously (tests, the demo)

Time is seconds since the kernel booted (`kernel.events.t0_ns`), whenever the sampler
was made. On construction it subscribes to the event bus and then folds the bus's
history, so crashes and recoveries from before it existed are counted and marked too
(an event seen both ways is folded once). Every crash becomes a `CrashMark` numbered
from 1 per domain, closed by the domain's next recovery (a shadow's
`shadow-recovered`, or a `restart`).

Rates: every `period` seconds the sampler takes each workload's cumulative counters.
A rate is recorded only for an interval the workload was running at both ends, so no
point is invented: the first sample of a workload is only a baseline, and an interval
in which traffic started or stopped gives no point but a break (a NaN row) in
`history`, so a line never bridges a stop and never drops to a fake 0. Each row is
`(t, MB/s, Mpps, MB/s over the last `smooth_s`, Mpps over the last `smooth_s`)`: the
raw per-period rate and the rate over a trailing window of the same counters (bytes
over time, not an average of rates).

Why the raw rate swings: with three traffic threads on one GIL, CPython's default
5 ms switch interval lets the OS pick which waiting thread gets the GIL next, and one
thread can win many slices in a row. A 200 ms sample holds only ~40 slices, so a
driver's share swung 10..100 MB/s from sample to sample (and even 13..76 MB/s over
1 s windows). `LabSession` therefore shortens the switch interval (see session.py);
the smoothed rate is drawn over the raw one.

Cost: the bus callback only appends to a deque (it runs on the emitting thread, often
inside the crash path). `kernel.ps()` and the heap summary are taken only when a
listener is registered, so a session's recorder costs three counter reads a period.

Threads: `tick()` runs on the sampler thread (or the caller's, when driven by hand,
serialised by a lock); listeners run there too and must not block. A listener that
raises is dropped and reported in `errors`, so one broken view cannot stop the others.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..heap.layout import Layout
from ..kernel.events import Event
from .workloads import Sample, Workload

# Events a view cares about: lifecycle, faults and recovery.
WATCHED = frozenset({"start", "crash", "restart", "stop", "reclaim", "fault", "fault-armed",
                     "fault-cleared", "shadow-restart", "shadow-recovered", "shadow-gave-up"})
NAN = float("nan")
Row = tuple[float, float, float, float, float]  # t, MB/s, Mpps, smoothed MB/s, smoothed Mpps


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
class CrashMark:
    """One crash of one domain: numbered from 1 per domain, from panic to recovery."""

    domain: str
    n: int
    t: float  # the crash event, seconds since boot
    t_recovered: float | None = None  # shadow-recovered (or restart); None while down
    recovery_ms: float | None = None  # the shadow's own figure (failed call -> success)


@dataclass(frozen=True)
class HeapSummary:
    """One snapshot of the registry. `per_domain`: owner -> (objects, bytes), where an
    object nested in a container (a request in a deque) counts for the container's
    owner, so the rows add up to `live_objects`/`live_bytes` of the same snapshot;
    `nested` of those objects sit inside containers. `top_types`: (name, objects,
    bytes), the largest types."""

    per_domain: dict[str, tuple[int, int]]
    top_types: list[tuple[str, int, int]]
    live_objects: int
    live_bytes: int
    nested: int = 0


@dataclass(frozen=True)
class Tick:
    t: float  # seconds since the kernel booted
    rates: dict[str, tuple[float, float]]  # workload -> (MB/s, Mpps) now (0 when stopped)
    events: list[Event]  # new watched events since the previous tick
    counters: dict[str, DomainCounters]
    rows: list[Any]  # kernel.ps() (empty when nobody listens)
    heap: HeapSummary | None
    samples: dict[str, Row] = field(default_factory=dict)  # rows added to history
    marks: list[CrashMark] = field(default_factory=list)  # crash marks new or closed


def heap_summary(kernel: Any, top: int = 8) -> HeapSummary:
    """Group one registry snapshot by owner (nested objects count for their container's
    owner) and by type."""
    names = {d.id: name for name, d in kernel.domains.items()}
    names[1] = "root"
    entries = kernel.heap.entries()
    by_id = {e.id: e for e in entries}
    per_domain: dict[str, list[int]] = {}
    by_type: Counter[str] = Counter()
    type_bytes: Counter[str] = Counter()
    nested = 0
    for entry in entries:
        root = entry
        for _ in range(64):  # walk up to the top-level container
            parent = by_id.get(root.parent) if root.parent else None
            if parent is None:
                break
            root = parent
        nested += entry.parent != 0
        owner = names.get(root.owner, f"#{root.owner}") if root.owner else "(no owner)"
        slot = per_domain.setdefault(owner, [0, 0])
        slot[0] += 1
        slot[1] += entry.size
        layout = Layout.by_id(entry.type_id)
        tname = layout.name if layout is not None else f"type {entry.type_id}"
        by_type[tname] += 1
        type_bytes[tname] += entry.size
    tops = sorted(by_type, key=lambda n: (-type_bytes[n], n))[:top]
    return HeapSummary({k: (v[0], v[1]) for k, v in sorted(per_domain.items())},
                       [(n, by_type[n], type_bytes[n]) for n in tops],
                       len(entries), sum(e.size for e in entries), nested)


Listener = Callable[[Tick], None]


class Sampler:
    def __init__(self, kernel: Any, workloads: Mapping[str, Workload] | None = None,
                 period: float = 0.2, capacity: int = 9000, heap_every: int = 5,
                 smooth_s: float = 1.0) -> None:
        self.kernel = kernel
        self.workloads: Mapping[str, Workload] = workloads if workloads is not None else {}
        self.period = period
        self.heap_every = heap_every
        self.smooth_s = smooth_s
        self.t0 = kernel.events.t0_ns / 1e9  # the kernel's boot, on time.monotonic()
        self.history: dict[str, deque[Row]] = {}
        self.capacity = capacity
        self.counters: dict[str, DomainCounters] = {}
        self.marks: dict[str, list[CrashMark]] = {}  # domain -> its crashes, in order
        self.errors: list[str] = []
        self.ticks = 0
        self._last: dict[str, tuple[Sample, bool]] = {}  # workload -> (sample, running)
        self._recent: dict[str, deque[Sample]] = {}  # the current running stretch
        self._queue: deque[Event] = deque()
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._sub = kernel.events.subscribe(self._queue.append, kinds=WATCHED)
        self._changed: list[CrashMark] = []
        # what happened before this sampler existed (the bus keeps a history); an event
        # that also reached the queue is the same object: skipped there
        past = kernel.events.history(WATCHED)
        self._past = past  # keeps the ids below unique
        self._replayed = {id(e) for e in past}
        for event in past:
            self._fold(event)
        for name, wl in list(self.workloads.items()):
            self._last[name] = (wl.sample(), wl.running)

    # -- listeners and thread -------------------------------------------------------
    def add_listener(self, listener: Listener,
                     replay: Callable[[Sampler], None] | None = None) -> None:
        """Call `listener(tick)` every tick. `replay(self)` runs first, between two
        ticks, so a view can load the history with nothing missed or seen twice."""
        with self._tick_lock:
            if replay is not None:
                replay(self)
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

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
        """An event's timestamp in seconds since the kernel booted."""
        return event.ts_ns / 1e9

    def now(self) -> float:
        return time.monotonic() - self.t0

    def tick(self) -> Tick:
        with self._tick_lock:
            t = self.now()
            rates: dict[str, tuple[float, float]] = {}
            samples: dict[str, Row] = {}
            for name, wl in list(self.workloads.items()):
                row = self._rate(name, wl, t)
                if row is not None:
                    samples[name] = row
                    ring = self.history.setdefault(name, deque(maxlen=self.capacity))
                    ring.append(row)
                rates[name] = (0.0, 0.0) if row is None or math.isnan(row[1]) else (
                    row[1], row[2])
            events = []
            while self._queue:
                event = self._queue.popleft()
                if id(event) in self._replayed:
                    continue  # already folded from the history
                events.append(event)
                self._fold(event)
            self.ticks += 1
            listening = bool(self._listeners)
            heap = None
            if listening and self.heap_every and (self.ticks % self.heap_every == 1
                                                  or self.heap_every == 1):
                heap = heap_summary(self.kernel)
            marks, self._changed = self._changed, []
            tick = Tick(t, rates, events, {k: _copy(v) for k, v in self.counters.items()},
                        self.kernel.ps() if listening else [], heap, samples, marks)
            for listener in list(self._listeners):
                try:
                    listener(tick)
                except Exception as exc:
                    self.remove_listener(listener)
                    self.errors.append(f"{listener!r}: {type(exc).__name__}: {exc}")
            return tick

    def _rate(self, name: str, wl: Workload, t: float) -> Row | None:
        """This period's row for one workload: a rate, a break (NaN), or None."""
        sample, running = wl.sample(), wl.running
        last = self._last.get(name)
        self._last[name] = (sample, running)
        recent = self._recent.setdefault(name, deque())
        if last is None or not (running and last[1]) or sample.t <= last[0].t:
            # a baseline, or traffic started/stopped in this interval: no rate
            had_stretch = bool(recent)
            recent.clear()
            if running:
                recent.append(sample)
            return (t, NAN, NAN, NAN, NAN) if had_stretch else None
        prev = last[0]
        dt = sample.t - prev.t
        mbps = max(0, sample.bytes - prev.bytes) / dt / 1e6
        mpps = max(0, sample.ops - prev.ops) / dt / 1e6
        if not recent:
            recent.append(prev)
        recent.append(sample)
        while len(recent) > 2 and sample.t - recent[1].t >= self.smooth_s - 1e-9:
            recent.popleft()
        first = recent[0]
        span = sample.t - first.t
        return (t, mbps, mpps, max(0, sample.bytes - first.bytes) / span / 1e6,
                max(0, sample.ops - first.ops) / span / 1e6)

    def _fold(self, event: Event) -> None:
        if event.domain is None:
            return
        c = self.counters.setdefault(event.domain, DomainCounters())
        kind = event.kind
        if kind == "crash":
            c.crashes += 1
            marks = self.marks.setdefault(event.domain, [])
            mark = CrashMark(event.domain, len(marks) + 1, self.event_time(event))
            marks.append(mark)
            self._changed.append(mark)
        elif kind == "restart":
            c.restarts += 1
            self._close_mark(event, None)
        elif kind == "shadow-recovered":
            c.recoveries += 1
            ms = int(event.data.get("recovery_ns", 0)) / 1e6
            c.last_recovery_ms = ms
            c.recovery_ms.append(ms)
            self._close_mark(event, ms)
        elif kind == "shadow-gave-up":
            c.gave_up += 1
        elif kind == "fault-armed":
            c.fault_plan = str(event.data.get("plan", ""))
        elif kind == "fault-cleared":
            c.fault_plan = ""

    def _close_mark(self, event: Event, ms: float | None) -> None:
        """The domain is back: end its last crash mark. A restart ends an open mark; the
        shadow's `shadow-recovered` (the retried call succeeded) ends it for good."""
        marks = self.marks.get(str(event.domain))
        if not marks or marks[-1].recovery_ms is not None:
            return
        mark = marks[-1]
        if ms is not None:
            mark = replace(mark, t_recovered=self.event_time(event), recovery_ms=ms)
        elif mark.t_recovered is None:
            mark = replace(mark, t_recovered=self.event_time(event))
        else:
            return
        marks[-1] = mark
        self._changed.append(mark)

    def crash_marks(self, domain: str) -> list[CrashMark]:
        return list(self.marks.get(domain, ()))


def _copy(c: DomainCounters) -> DomainCounters:
    return DomainCounters(c.crashes, c.restarts, c.recoveries, c.gave_up, c.last_recovery_ms,
                          list(c.recovery_ms), c.fault_plan)
