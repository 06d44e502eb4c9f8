"""The event bus: the single place where observation hooks into the kernel.

Every lifecycle change, crash, unwinding, reclamation, restart, injected
fault and (when tracing is on) every cross-domain call is an `Event` with a
monotonic timestamp in nanoseconds. Widgets, dashboards, the CLI and tests
subscribe; nothing polls kernel internals.

    bus.subscribe(callback, kinds={"crash", "reclaim"})   # returns a Subscription
    bus.history(kinds={"crash"})                          # the last `history_size` events

Kinds used by the kernel: boot, shutdown, load, start, stop, crash, unwind,
reclaim, restart, fault, fault-armed, fault-cleared, thread-start, thread-exit,
call (tracing only), heap (bulk heap operations).

Callbacks run synchronously on the emitting thread, outside the bus lock; a
callback that raises is unsubscribed and reported as a `subscriber-error`
event, so a broken widget cannot break the kernel.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    ts_ns: int
    kind: str
    domain: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.data.items())
        who = f" {self.domain}" if self.domain else ""
        return f"[{self.ts_ns / 1e9:12.6f}] {self.kind}{who} {extra}".rstrip()


Callback = Callable[[Event], None]


class Subscription:
    def __init__(self, bus: EventBus, callback: Callback, kinds: frozenset[str] | None) -> None:
        self.bus = bus
        self.callback = callback
        self.kinds = kinds

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, history_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._history: deque[Event] = deque(maxlen=history_size)
        self.t0_ns = time.monotonic_ns()

    def subscribe(self, callback: Callback, kinds: Iterable[str] | None = None) -> Subscription:
        sub = Subscription(self, callback, frozenset(kinds) if kinds is not None else None)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def emit(self, kind: str, domain: str | None = None, **data: Any) -> Event:
        event = Event(time.monotonic_ns() - self.t0_ns, kind, domain, data)
        with self._lock:
            self._history.append(event)
            subs = [s for s in self._subs if s.kinds is None or kind in s.kinds]
        for sub in subs:
            try:
                sub.callback(event)
            except Exception as exc:
                self.unsubscribe(sub)
                if kind != "subscriber-error":
                    self.emit("subscriber-error", None, error=repr(exc))
        return event

    def history(self, kinds: Iterable[str] | None = None, domain: str | None = None) -> list[Event]:
        wanted = frozenset(kinds) if kinds is not None else None
        with self._lock:
            events = list(self._history)
        return [
            e for e in events
            if (wanted is None or e.kind in wanted) and (domain is None or e.domain == domain)
        ]

    def count(self, kind: str, domain: str | None = None) -> int:
        return len(self.history({kind}, domain))
