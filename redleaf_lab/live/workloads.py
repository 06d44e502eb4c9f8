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
so panics are recovered transparently. Every written block holds a full 4 KiB
pattern of (block number, version); reads land in buffers filled with poison first
and are checked against the record of acknowledged writes, and `check()` reads the
store directly (`live/block_pattern.py`).

Threads: each running workload has one traffic thread, the only caller of its
shadow. `start`/`stop`/`sample`/`check` may be called from any thread; the
counters are plain ints written by the traffic thread only (read under the GIL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..devices.memstore import MemStore
from ..errors import RpcError
from ..heap import BLOCK_SIZE, BlkReq, RRef, RRefDeque
from ..idl.shadow import ShadowPolicy, make_shadow
from .block_pattern import WriteRecord, block_contents, poison


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
class BlockWorkload(Workload):
    """Sequential batched 4 KiB block I/O through a shadow of `membdev`, verified.

    `driver` is the driver domain to load under the name `membdev` (a name or a folder:
    tests load deliberately broken drivers to prove the checks catch them). Other
    block drivers reuse the class by overriding `name`/`domain`, `_load_driver` and
    `media` (see live/nvme_workload.py)."""

    name = "membdev"
    domain = "membdev"
    modes = ("mixed", "write", "read")

    def __init__(self, kernel: Any, blocks: int = 4096, batch: int = 32,
                 policy: ShadowPolicy | None = None, driver: str | Path = "membdev") -> None:
        super().__init__()
        self.kernel = kernel
        self.batch = batch
        self.driver = driver
        if self.domain in kernel.domains:
            raise ValueError(f"{self.domain} is already loaded in this kernel")
        self.num_blocks = self._load_driver(kernel, blocks)
        self.shadow = make_shadow(kernel, self.domain, policy or ShadowPolicy(
            max_restarts=50, window_s=1.0, max_attempts=5))
        self.record = WriteRecord(self.num_blocks)
        self.wrong_reads = 0
        self.version = 0
        self._next_block = 0

    @property
    def acked(self) -> np.ndarray:
        """The last acknowledged version of every block (0: never)."""
        return self.record.acked

    # -- what a block driver workload overrides ---------------------------------------------
    def _load_driver(self, kernel: Any, blocks: int) -> int:
        """Load the driver domain (named `self.domain`); returns the device's block count."""
        self.store = MemStore(blocks)
        kernel.load(self.driver, name=self.domain, store=self.store)
        return blocks

    def media(self) -> np.ndarray:
        """The device's blocks as a (blocks, 4096) uint8 array, read directly (for check)."""
        return self.store.snapshot()

    def traffic(self, stop: threading.Event) -> None:
        self.run(stop=stop)

    def run(self, batches: int | None = None, stop: threading.Event | None = None) -> None:
        """Run batches in the calling thread: `batches` of them, or until `stop` is set.

        Writes carry `block_pattern.block_contents(block, version)`; reads go into the
        request buffers overwritten with poison first, and are checked against the
        record of acknowledged writes, never against what the buffers held before."""
        batch, blocks = self.batch, self.num_blocks
        requests = [RRef.new(BlkReq) for _ in range(batch)]
        submit = RRefDeque.new(BlkReq, batch)
        collect = RRefDeque.new(BlkReq, batch)
        turn = first = 0
        try:
            while (batches is None or turn < batches) and not (stop and stop.is_set()):
                turn += 1
                write = self.mode == "write" or (self.mode == "mixed" and turn % 2 == 1)
                self.version += 1
                if write or self.mode == "read":  # mixed reads back the batch just written
                    first = self._next_block
                    self._next_block = (first + batch) % blocks
                numbers = (first + np.arange(batch)) % blocks
                submit.push_many(requests)
                submit.set("block", numbers)
                if write:
                    submit.set("data", block_contents(numbers, self.version).view(np.uint8))
                    self.record.sending(numbers, self.version)
                else:
                    submit.set("data", poison(1))  # fresh poison: no stale stamp survives
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
                if write:
                    self.record.acknowledged(numbers, self.version)
                else:
                    self._verify(collect, numbers)
                requests = collect.pop_many()
                self.ops_done += len(requests)
                self.bytes_done += len(requests) * BLOCK_SIZE
        finally:
            del requests, submit, collect

    def _verify(self, collect: RRefDeque, numbers: np.ndarray) -> None:
        """Check every request read back: data of its own block, and every block asked
        for came back (a request's block field is not trusted alone)."""
        got_blocks = collect.get("block").astype(np.int64)
        wrong = self.record.wrong_blocks(got_blocks, collect.get("data"))
        missing = len(numbers) - len(np.intersect1d(got_blocks, numbers))
        self.wrong_reads += int(np.count_nonzero(wrong)) + missing

    def check(self) -> dict[str, Any]:
        """Compare the device's media with the record (call with the traffic stopped):
        `lost_writes` acknowledged writes missing, `bad_blocks` blocks holding neither
        zeros nor a version sent for them."""
        media = self.media()
        return {"lost_writes": self.record.lost_writes(media),
                "bad_blocks": self.record.bad_blocks(media),
                "wrong_reads": self.wrong_reads,
                "acknowledged_blocks": int(np.count_nonzero(self.record.acked))}

    def close(self) -> None:
        super().close()
        self.shadow = None


register_workload("membdev", BlockWorkload)
