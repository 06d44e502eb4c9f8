"""A lab session: a booted kernel, a few domains, and the registered driver workloads.

    lab = LabSession.boot()                 # kernel + checksum/kvstore + membdev behind a shadow
    lab.workloads["membdev"].start("write")
    lab.panic("membdev", "every", period=1.0)   # once | every | random | async
    lab.clear_faults("membdev"); lab.close()    # -> leaked objects (must be 0)

The session is what the magics, the widgets, the dashboards and the headless
demo share; none of it depends on Jupyter. It records from boot: `lab.sampler` is
the session's one `Sampler` thread, started at boot, so every dashboard, whenever
it is opened, draws the whole history since the kernel booted (dashboards are its
listeners; they do not sample on their own).

The GIL: three traffic threads share one GIL, and CPython's default 5 ms switch
interval lets one thread win many slices in a row, so each driver's rate swung by
up to 10x from one 200 ms sample to the next. The session sets a 0.5 ms switch
interval (`switch_interval`; None keeps the process's) while it lives and restores
the previous one on `close()`: measured here with three workloads, the coefficient
of variation of 200 ms rates fell from 0.57-0.74 to 0.08-0.12 per driver. Panic modes map onto
`kernel.faults`: `once` is the next call, `every` the first call after each
`period` seconds, `random` each call with probability `p` (seeded), `async`
panics right now at whatever the driver executes.

Threads: the methods may be called from any thread (the kernel's operations are
thread-safe); each workload has its own traffic thread.
"""

from __future__ import annotations

import sys
from typing import Any

from ..kernel.kernel import Kernel, boot
from .sampler import Sampler
from .workloads import Workload, create_workload

PANIC_MODES = ("once", "every", "random", "async")
DEFAULT_DOMAINS = ("checksum", "kvstore")
DEFAULT_WORKLOADS = ("membdev", "nvme", "ixgbe")
FAIR_SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005


class LabSession:
    def __init__(self, kernel: Kernel, period: float = 0.2,
                 switch_interval: float | None = FAIR_SWITCH_INTERVAL) -> None:
        self.kernel = kernel
        self.workloads: dict[str, Workload] = {}
        self._switch_before: float | None = None
        if switch_interval is not None:
            self._switch_before = sys.getswitchinterval()
            sys.setswitchinterval(switch_interval)
        self.sampler = Sampler(kernel, self.workloads, period=period).start()

    @classmethod
    def boot(cls, heap_mb: int = 256, domains: tuple[str, ...] = DEFAULT_DOMAINS,
             workloads: tuple[str, ...] = DEFAULT_WORKLOADS, period: float = 0.2,
             switch_interval: float | None = FAIR_SWITCH_INTERVAL,
             **options: Any) -> LabSession:
        """Boot a kernel, load `domains` (kvstore gets checksum as its capability) and
        create `workloads` by registered name; the session's sampler records from now,
        every `period` seconds."""
        session = cls(boot(heap_bytes=heap_mb << 20), period=period,
                      switch_interval=switch_interval)
        try:
            for name in domains:
                if name == "kvstore":
                    session.kernel.load("kvstore", checksum=session.kernel.proxy("checksum"))
                else:
                    session.kernel.load(name)
            for name in workloads:
                session.add_workload(name, **options)
        except BaseException:
            session.close()
            raise
        return session

    def add_workload(self, name: str, **options: Any) -> Workload:
        if name in self.workloads:
            raise ValueError(f"workload {name!r} already exists")
        workload = create_workload(name, self.kernel, **options)
        self.workloads[name] = workload
        return workload

    # -- faults and lifecycle ---------------------------------------------------------
    def panic(self, domain: str, mode: str = "once", period: float = 1.0, p: float = 0.01,
              seed: int = 0) -> str:
        """Inject a panic into `domain`; returns a description of what was armed/done."""
        faults = self.kernel.faults
        if mode == "once":
            return faults.next_call(domain).describe()
        if mode == "every":
            return faults.every(domain, period).describe()
        if mode == "random":
            return faults.probability(domain, p, seed=seed).describe()
        if mode == "async":
            done = faults.now(domain)
            return "panicked now" if done else f"{domain} was not running"
        raise ValueError(f"unknown panic mode {mode!r}; choose from {', '.join(PANIC_MODES)}")

    def clear_faults(self, domain: str) -> None:
        self.kernel.faults.clear(domain)

    def restart(self, domain: str) -> Any:
        return self.kernel.restart(domain)

    def stop(self, domain: str) -> None:
        for wl in self.workloads.values():
            if wl.domain == domain:
                wl.stop()
        self.kernel.stop(domain)

    def stop_traffic(self) -> None:
        for wl in self.workloads.values():
            wl.stop()

    def check(self) -> dict[str, dict[str, Any]]:
        return {name: wl.check() for name, wl in self.workloads.items()}

    def close(self) -> dict[str, int]:
        """Stop traffic and every domain; returns the leak check of `Kernel.shutdown`."""
        self.sampler.close()
        if self._switch_before is not None:
            sys.setswitchinterval(self._switch_before)
            self._switch_before = None
        self.stop_traffic()
        for wl in self.workloads.values():
            wl.close()
        if self.kernel._closed:
            return {"objects": 0, "bytes": 0}
        return self.kernel.shutdown()

    def __repr__(self) -> str:
        return f"<LabSession {self.kernel!r}, workloads {sorted(self.workloads)}>"
