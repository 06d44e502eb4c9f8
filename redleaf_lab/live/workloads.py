"""Workloads: drivers moving data, registered by name, for the driver panels, dashboards and demo.

A driver joins the lab by registering a workload factory:

    register_workload("membdev", BlockWorkload)        # name -> factory(kernel, **options)
    wl = create_workload("membdev", kernel)            # loads the driver behind a shadow
    wl.start("write"); ...; wl.sample(); wl.stop(); wl.check(); wl.close()

A `Workload` has a `name`, the `domain` a panic targets, the `modes` it offers
(the panel's "workload choice"), `start(mode)`/`stop()`, and `sample()`: the
cumulative counters (`Sample`: bytes, operations, errors) that a sampler thread
turns into MB/s and Mpps. `check()` verifies what the device holds against what
was acknowledged (lost acknowledged writes must be 0).

`BlockWorkload` (the first one) runs batched 4 KiB block I/O against
`drivers/membdev` over a `MemStore`, through a shadow (`idl.shadow.make_shadow`),
so panics are recovered transparently. Every written block carries a stamp
(block number, version) in its first 16 bytes; reads check the stamp is at least
the last acknowledged version, and `check()` reads the store directly.

Threads: each running workload has one traffic thread, the only caller of its
shadow. `start`/`stop`/`sample`/`check` may be called from any thread; the
counters are plain ints written by the traffic thread only (read under the GIL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..devices.memstore import MemStore
from ..errors import RpcError
from ..heap import BLOCK_SIZE, BlkReq, RRef, RRefDeque
from ..idl.shadow import ShadowPolicy, make_shadow


@dataclass(frozen=True)
class Sample:
    """Cumulative counters of a workload at one instant."""

    t: float  # time.monotonic()
    bytes: int
    ops: int
    errors: int


class Workload:
    """Base class: a driver and the traffic that exercises it."""

    name = "workload"
    domain = ""
    modes: tuple[str, ...] = ("default",)
    unit = "MB/s"

    def __init__(self) -> None:
        self.mode = self.modes[0]
        self.bytes_done = 0
        self.ops_done = 0
        self.errors = 0
        self.last_error = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, mode: str | None = None) -> None:
        """Start the traffic thread (no-op if running); `mode` is one of `modes`."""
        if mode is not None and mode not in self.modes:
            raise ValueError(f"{self.name}: unknown mode {mode!r}; choose from {self.modes}")
        if self.running:
            if mode is None or mode == self.mode:
                return
            self.stop()
        self.mode = mode or self.mode
        self._stop.clear()
        self._thread = threading.Thread(target=self._traffic_main, name=f"traffic-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the traffic thread and wait for it (between two operations)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def sample(self) -> Sample:
        return Sample(time.monotonic(), self.bytes_done, self.ops_done, self.errors)

    def _traffic_main(self) -> None:
        try:
            self.traffic(self._stop)
        except Exception as exc:  # shown in the panel; the lab stays up
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def traffic(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def check(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.stop()


WorkloadFactory = Callable[..., Workload]
_REGISTRY: dict[str, WorkloadFactory] = {}


def register_workload(name: str, factory: WorkloadFactory) -> None:
    """Make `factory(kernel, **options)` available as workload `name` (replaces)."""
    _REGISTRY[name] = factory


def workload_names() -> list[str]:
    return sorted(_REGISTRY)


def create_workload(name: str, kernel: Any, **options: Any) -> Workload:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no workload {name!r}; registered: {', '.join(workload_names())}"
                       ) from None
    return factory(kernel, **options)


# -- membdev block I/O behind a shadow ------------------------------------------------------
_STAMP = np.dtype("<u8")


class BlockWorkload(Workload):
    """Sequential batched 4 KiB block I/O through a shadow of `membdev`.

    Other block drivers reuse it by overriding `name`/`domain`, `_load_driver` and
    `media` (see live/nvme_workload.py)."""

    name = "membdev"
    domain = "membdev"
    modes = ("mixed", "write", "read")

    def __init__(self, kernel: Any, blocks: int = 4096, batch: int = 32,
                 policy: ShadowPolicy | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.batch = batch
        if self.domain in kernel.domains:
            raise ValueError(f"{self.domain} is already loaded in this kernel")
        self.num_blocks = self._load_driver(kernel, blocks)
        self.shadow = make_shadow(kernel, self.domain, policy or ShadowPolicy(
            max_restarts=50, window_s=1.0, max_attempts=5))
        self.acked = np.zeros(self.num_blocks, dtype=np.int64)  # last acked version per block
        self.wrong_reads = 0
        self.version = 0
        self._next_block = 0

    # -- what a block driver workload overrides ---------------------------------------------
    def _load_driver(self, kernel: Any, blocks: int) -> int:
        """Load the driver domain (named `self.domain`); returns the device's block count."""
        self.store = MemStore(blocks)
        kernel.load("membdev", store=self.store)
        return blocks

    def media(self) -> np.ndarray:
        """The device's blocks as a (blocks, 4096) uint8 array, read directly (for check)."""
        return self.store.snapshot()

    def traffic(self, stop: threading.Event) -> None:
        batch, blocks = self.batch, self.num_blocks
        requests = [RRef.new(BlkReq) for _ in range(batch)]
        submit = RRefDeque.new(BlkReq, batch)
        collect = RRefDeque.new(BlkReq, batch)
        stamp = np.zeros(2, dtype=_STAMP)
        turn = first = 0
        try:
            while not stop.is_set():
                turn += 1
                write = self.mode == "write" or (self.mode == "mixed" and turn % 2 == 1)
                self.version += 1
                if write or self.mode == "read":  # mixed reads back the batch just written
                    first = self._next_block
                    self._next_block = (first + batch) % blocks
                numbers = [(first + i) % blocks for i in range(batch)]
                for req, block in zip(requests, numbers, strict=True):
                    view = req.array()
                    view["block"] = block
                    if write:
                        stamp[0], stamp[1] = block, self.version
                        view["data"][:16] = stamp.view(np.uint8)
                    del view
                expected = self.acked[numbers].copy()
                submit.push_many(requests)
                try:
                    _taken, submit, collect = self.shadow.submit_and_poll(submit, collect, write)
                except RpcError as err:  # the shadow gave up: count it, start over
                    self.errors += 1
                    self.last_error = str(err)
                    requests = [RRef.new(BlkReq) for _ in range(batch)]
                    submit = RRefDeque.new(BlkReq, batch)
                    collect = RRefDeque.new(BlkReq, batch)
                    time.sleep(0.05)
                    continue
                requests = collect.pop_many()
                if write:
                    self.acked[numbers] = self.version
                else:
                    self._verify(requests, numbers, expected)
                self.ops_done += len(requests)
                self.bytes_done += len(requests) * BLOCK_SIZE
        finally:
            del requests, submit, collect

    def _verify(self, requests: list[RRef], numbers: list[int], expected: np.ndarray) -> None:
        for req, block, version in zip(requests, numbers, expected, strict=True):
            view = req.array()
            got = view["data"][:16].view(_STAMP)
            ok = (int(got[1]) >= version and (int(got[1]) == 0 or int(got[0]) == block)
                  and int(view["block"]) == block)
            del view, got
            if not ok:
                self.wrong_reads += 1

    def check(self) -> dict[str, Any]:
        """Compare the store with what was acknowledged (call with the traffic stopped)."""
        snap = self.media()[:, :16].copy().view(_STAMP)  # (blocks, 2)
        written = self.acked > 0
        stored_version = snap[:, 1].astype(np.int64)
        lost = int(np.count_nonzero(written & (stored_version < self.acked)))
        return {"lost_writes": lost, "wrong_reads": self.wrong_reads,
                "acknowledged_blocks": int(np.count_nonzero(written))}

    def close(self) -> None:
        super().close()
        self.shadow = None


register_workload("membdev", BlockWorkload)
