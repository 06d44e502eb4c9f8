"""Fault injection: panic a domain on purpose, deterministically.

A `FaultPlan` is attached to a domain *name*, so it survives restarts (the
paper's crash-every-second experiment panics every incarnation). The proxy
asks the plan at each call (`should_trip`) only while a plan is armed; an
unarmed domain pays nothing but the gate check.

Modes:
    next_call           panic at the next call, once
    after(n)            panic at the n-th call from now, once
    every_n(n)          panic at every n-th call
    probability(p)      panic each call with probability p (seeded)
    every(t)            panic at the first call after each t-second deadline
    every(t, async)     panic asynchronously every t seconds (a timer thread),
                        at whatever bytecode the domain is executing
    now                 panic asynchronously, once, right now

Synchronous trips happen *inside* the callee, after the arguments moved: the
shadow must cope with what the crash took. `Faults` is the kernel-facing
registry of plans: `kernel.faults.every_n("membdev", 10)`.

Locking: one lock per plan guards its counters; `Faults` has its own lock for
the table of plans.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    mode: str
    n: int = 0
    p: float = 0.0
    period_s: float = 0.0
    seed: int | None = None
    asynchronous: bool = False
    repeat: bool = True
    calls: int = 0
    trips: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _deadline: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._deadline = time.monotonic() + self.period_s

    @property
    def exhausted(self) -> bool:
        return not self.repeat and self.trips > 0

    def should_trip(self) -> bool:
        """Called once per call while armed; True means panic this call."""
        with self._lock:
            if self.exhausted or self.asynchronous:
                return False
            self.calls += 1
            if self.mode == "after":
                hit = self.calls == self.n
            elif self.mode == "every_n":
                hit = self.calls % self.n == 0
            elif self.mode == "probability":
                hit = self._rng.random() < self.p
            elif self.mode == "every":
                now = time.monotonic()
                hit = now >= self._deadline
                if hit:
                    self._deadline = now + self.period_s
            else:
                hit = False
            if hit:
                self.trips += 1
            return hit

    def describe(self) -> str:
        if self.mode == "after":
            return "next call" if self.n == 1 else f"after {self.n} calls"
        if self.mode == "every_n":
            return f"every {self.n} calls"
        if self.mode == "probability":
            return f"p={self.p} per call (seed {self.seed})"
        if self.mode == "every":
            how = "asynchronously" if self.asynchronous else "at the next call"
            return f"every {self.period_s:g} s, {how}"
        return self.mode


PanicNow = Callable[[str, str], bool]


class Faults:
    """The kernel's table of armed fault plans, by domain name."""

    def __init__(self, panic_now: PanicNow, on_change: Callable[[str, FaultPlan | None], None]):
        self._panic_now = panic_now
        self._on_change = on_change
        self._plans: dict[str, FaultPlan] = {}
        self._timers: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # -- arming ------------------------------------------------------------
    def arm(self, domain: str, plan: FaultPlan) -> FaultPlan:
        self.clear(domain)
        with self._lock:
            self._plans[domain] = plan
        if plan.asynchronous:
            self._start_timer(domain, plan)
        self._on_change(domain, plan)
        return plan

    def next_call(self, domain: str) -> FaultPlan:
        return self.arm(domain, FaultPlan("after", n=1, repeat=False))

    def after(self, domain: str, n: int) -> FaultPlan:
        if n < 1:
            raise ValueError("after(n) needs n >= 1")
        return self.arm(domain, FaultPlan("after", n=n, repeat=False))

    def every_n(self, domain: str, n: int) -> FaultPlan:
        if n < 1:
            raise ValueError("every_n(n) needs n >= 1")
        return self.arm(domain, FaultPlan("every_n", n=n))

    def probability(self, domain: str, p: float, seed: int | None = 0) -> FaultPlan:
        if not 0.0 <= p <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        return self.arm(domain, FaultPlan("probability", p=p, seed=seed))

    def every(self, domain: str, seconds: float, asynchronous: bool = False) -> FaultPlan:
        if seconds <= 0:
            raise ValueError("every(t) needs t > 0")
        return self.arm(domain, FaultPlan("every", period_s=seconds, asynchronous=asynchronous))

    def now(self, domain: str) -> bool:
        """Panic `domain` asynchronously now. Returns False if it was not running."""
        return self._panic_now(domain, "injected asynchronously")

    def clear(self, domain: str) -> None:
        with self._lock:
            plan = self._plans.pop(domain, None)
            stop = self._timers.pop(domain, None)
        if stop is not None:
            stop.set()
        if plan is not None:
            self._on_change(domain, None)

    def clear_all(self) -> None:
        for domain in list(self._plans):
            self.clear(domain)

    # -- queries -----------------------------------------------------------
    def plan(self, domain: str) -> FaultPlan | None:
        plan = self._plans.get(domain)
        return None if plan is None or plan.exhausted else plan

    def armed(self, domain: str) -> bool:
        plan = self._plans.get(domain)
        return plan is not None and not plan.asynchronous and not plan.exhausted

    def should_trip(self, domain: str) -> bool:
        plan = self._plans.get(domain)
        if plan is None:
            return False
        hit = plan.should_trip()
        if plan.exhausted:
            self.clear(domain)
        return hit

    # -- asynchronous timers ---------------------------------------------------
    def _start_timer(self, domain: str, plan: FaultPlan) -> None:
        stop = threading.Event()
        with self._lock:
            self._timers[domain] = stop

        def run() -> None:
            while not stop.wait(plan.period_s):
                plan.trips += 1
                self._panic_now(domain, f"injected every {plan.period_s:g} s")

        threading.Thread(target=run, name=f"faults-{domain}", daemon=True).start()
