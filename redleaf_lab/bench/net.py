"""`redleaf-lab bench net`: forwarding Mpps of the Python ixgbe driver against a C baseline.

Purpose: one run measures 64-byte forwarding (ixy-fwd's loop: receive a batch, touch
one byte per packet, send it back out on the same port; `interfaces.net.Forwarder`)
on the sim 82599 model with its traffic-generator wire (inline mode by default: the
model runs on every tail write, deterministically; `threaded=True` gives it its own
C thread, running only during its own case's slices: idle device threads poll, and
would take the CPU from the case being measured), at batch 1, 32 and 256, over three paths:

* direct: the loop runs inside the driver's domain and calls its implementation (no
  boundary: RedLeaf's statically linked configuration);
* domain: the loop runs in the root context and calls the driver through its proxy;
* shadow: the same, through a shadow (`make_shadow`), which adds a retry frame;
* python-domain, python-shadow: the domain and shadow paths again through the reference
  Python proxy (bench/reference.py), when the kernel's default is the compiled call gate;

and the C baseline (`SimIxgbe.run_c_forward`: an l2fwd-like loop in C on a fresh model
with the same parameters), plus the same three paths over `drivers/nullnet` (no device:
the cost of isolation alone). Every (driver, path) has its own driver domain, NIC model
and packet pool, and the cases run interleaved, in `slices` turns each, so that a
machine shared with other work loads every case alike (the ratios stay meaningful).

Interface: `measure(seconds=0.3, batches=(1, 32, 256), threaded=False) -> list[dict]`,
one dict per (path, batch): path, driver, batch, packets, seconds, mpps, vs_c (the
ratio to the C baseline at the same batch; None for nullnet and C), and for the Python
rows cpu_mpps (packets per CPU second of this process: what the throughput would be
on an otherwise idle core); method (a one-line summary of `METHOD`) and goals (the
goals reported on that row, each "met" or "MISSED"; `goals(rows)`). `format_table`
ends with the method and the goals.

Locking/ownership: boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from ..idl.shadow import ShadowPolicy, make_shadow
from ..interfaces.net import Forwarder
from ..kernel.context import thread_state
from .goals import Goal, goal_lines, goals_json, method_lines
from .reference import reference_targets

FRAME_BYTES = 64
LINE_RATE_MPPS = 14.88  # 10 GbE at 64 B: 10e9 / ((64 + 20) * 8)
PATHS = ("direct", "domain", "shadow")
REFERENCE_PATHS = ("python-domain", "python-shadow")  # issue 14: both proxy implementations
IXY_PY_MPPS = {1: 0.08, 32: 0.14, 256: 0.16}  # ../shared/notes/devices.md §1 (bidirectional)
GOAL_B32_MPPS = 10.0  # issue 5: the Python driver at >= 10 Mpps at batch 32
GOAL_SHADOW_OVER_DIRECT = 0.95  # issue 14: the shadow row within 5% of direct at batch 32
METHOD = """Same work on every path: ixy-fwd's loop (receive a batch of 64-byte frames, touch
one byte each, send them back) on the same kind of 82599 model with the same generator wire
and parameters; each (driver, path) has its own driver domain, NIC model and packet pool,
and the C l2fwd-like loop runs on a fresh model of its own. nullnet: the same loop over a
driver with no device (the cost of isolation alone). Interleaved: per batch size, every
case (C, then each Python path) runs in turn for `slices` slices; Mpps = total packets /
total time of a case's slices; vs C = that / the C row of the same batch."""
METHOD_SUMMARY = "same loop and model parameters per path; cases interleaved in slices; totals"


@contextmanager
def inside(domain: Any) -> Iterator[None]:
    """Run the block as code of `domain` (what a statically linked app would be)."""
    stack = thread_state().stack
    stack.append(domain)
    try:
        yield
    finally:
        stack.pop()


class _Case:
    """One (driver, path) of a batch size: its own driver domain (and NIC), its own loop."""

    def __init__(self, kernel: Any, driver: str, path: str, batch: int, threaded: bool,
                 devices: list[Any]) -> None:
        from ..devices.sim_ixgbe import SimIxgbe

        self.kernel = kernel
        self.driver = driver
        self.path = path
        self.name = f"{driver}-{path}"
        self.device: Any = None
        self.threaded = threaded
        if driver == "ixgbe":
            # inline while idle; with `threaded`, the model's thread runs only during this
            # case's slices (idle device threads of the other cases would poll and steal
            # the CPU from the case being measured)
            dev = self.device = SimIxgbe(kernel.heap, wire="generator", threaded=False,
                                         packet_size=FRAME_BYTES, name=self.name)
            devices.append(dev)
            kernel.load("ixgbe", name=self.name, device=dev)
        else:
            kernel.load("nullnet", name=self.name)
        self.domain = kernel.domain(self.name)
        policy = ShadowPolicy(max_restarts=1000)
        if path == "direct":
            target: Any = self.domain.impl
        elif path == "domain":
            target = kernel.proxy(self.name)
        elif path == "shadow":
            target = make_shadow(kernel, self.name, policy)
        else:
            target = reference_targets(kernel, self.name, policy)[path == "python-shadow"]
        with self._context():
            self.loop = Forwarder(target, batch)
            self.loop.run(max(8, 1024 // batch))  # warm up: fill the RX ring
        self.packets = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def _context(self) -> Any:
        return inside(self.domain) if self.path == "direct" else nullcontext()

    def run(self, seconds: float) -> None:
        loop = self.loop
        device = self.device if self.threaded else None
        if device is not None:
            device.start_thread()
        try:
            self._timed(loop, seconds)
        finally:
            if device is not None:
                device.stop_thread()

    def _timed(self, loop: Forwarder, seconds: float) -> None:
        with self._context():
            sent = loop.sent
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            deadline = t0 + seconds
            while True:
                loop.run(8)
                now = time.perf_counter()
                if now >= deadline:
                    break
        self.packets += loop.sent - sent
        self.seconds += now - t0
        self.cpu_seconds += time.process_time() - cpu0

    def close(self) -> None:
        with self._context():
            self.loop.release()
        self.kernel.stop(self.name)


def _c_slice(kernel: Any, batch: int, seconds: float, threaded: bool) -> tuple[int, float]:
    from ..devices.sim_ixgbe import SimIxgbe

    dev = SimIxgbe(kernel.heap, wire="generator", packet_size=FRAME_BYTES, name="ixgbe-c")
    try:
        result = dev.run_c_forward(batch, seconds, threaded=threaded)
    finally:
        dev.close()
    return int(result["packets"]), float(result["seconds"])


def _row(path: str, driver: str, batch: int, packets: int, secs: float) -> dict[str, Any]:
    return {"path": path, "driver": driver, "batch": batch, "packets": packets,
            "seconds": round(secs, 4), "mpps": round(packets / secs / 1e6, 4), "vs_c": None}


def measure(seconds: float = 0.3, batches: tuple[int, ...] = (1, 32, 256),
            threaded: bool = False, paths: tuple[str, ...] = (*PATHS, "c"),
            nullnet: bool = True, slices: int = 5) -> list[dict[str, Any]]:
    """Run every (path, batch); see the module docstring."""
    from .. import boot

    kernel = boot(heap_bytes=512 << 20, max_objects=1 << 18)
    rows: list[dict[str, Any]] = []
    devices: list[Any] = []
    reference = REFERENCE_PATHS if kernel.proxies == "gate" else ()
    try:
        for batch in batches:
            cases = [_Case(kernel, "ixgbe", p, batch, threaded, devices)
                     for p in (*paths, *reference) if p != "c"]
            if nullnet:
                cases += [_Case(kernel, "nullnet", p, batch, threaded, devices)
                          for p in (*PATHS, *reference)]
            c_packets, c_seconds = 0, 0.0
            for _ in range(slices):  # interleaved: every path sees the same machine load
                if "c" in paths:
                    packets, secs = _c_slice(kernel, batch, seconds / slices, threaded)
                    c_packets += packets
                    c_seconds += secs
                for case in cases:
                    case.run(seconds / slices)
            c_mpps = c_packets / c_seconds / 1e6 if c_seconds else 0.0
            if "c" in paths:
                rows.append(_row("c", "c", batch, c_packets, c_seconds))
            for case in cases:
                case.close()
                path = case.path if case.driver == "ixgbe" else case.name
                row = _row(path, case.driver, batch, case.packets, case.seconds)
                if case.cpu_seconds > 0:
                    row["cpu_mpps"] = round(case.packets / case.cpu_seconds / 1e6, 4)
                if case.driver == "ixgbe" and c_mpps:
                    row["vs_c"] = round(row["mpps"] / c_mpps, 4)
                rows.append(row)
    finally:
        kernel.shutdown()
        for device in devices:
            device.close()
    return annotate(rows)


def _find(rows: list[dict[str, Any]], path: str, batch: int, driver: str = "ixgbe"
          ) -> dict[str, Any] | None:
    return next((r for r in rows if r["path"] == path and r["driver"] == driver
                 and r["batch"] == batch), None)


def goals(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Goal]]:
    """Issue 5's goals, each with the row it is reported on (those the run can check)."""
    out: list[tuple[dict[str, Any], Goal]] = []
    direct32, shadow32 = _find(rows, "direct", 32), _find(rows, "shadow", 32)
    direct256 = _find(rows, "direct", 256)
    if direct32 is not None:
        out.append((direct32, Goal("b32_mpps>=10", "batch 32, direct: Mpps", direct32["mpps"],
                                   GOAL_B32_MPPS, ">=")))
    if direct256 is not None:
        out.append((direct256, Goal("b256_line_rate", "batch 256, direct: Mpps (line rate)",
                                    direct256["mpps"], LINE_RATE_MPPS, ">=")))
    if direct32 is not None and shadow32 is not None:
        ratio = shadow32["mpps"] / direct32["mpps"] if direct32["mpps"] else None
        out.append((shadow32, Goal("b32_shadow_over_direct>=0.95", "batch 32: shadow / direct",
                                   ratio, GOAL_SHADOW_OVER_DIRECT, ">=")))
    null_direct = _find(rows, "nullnet-direct", 32, "nullnet")
    null_shadow = _find(rows, "nullnet-shadow", 32, "nullnet")
    if null_direct is not None and null_shadow is not None:
        ratio = null_shadow["mpps"] / null_direct["mpps"] if null_direct["mpps"] else None
        out.append((null_shadow, Goal("b32_nullnet_shadow_over_direct>=0.95",
                                      "batch 32, nullnet: shadow / direct", ratio,
                                      GOAL_SHADOW_OVER_DIRECT, ">=")))
    return out


def annotate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row gets the method summary and "goals": the goals reported on it."""
    for row in rows:
        row["method"] = METHOD_SUMMARY
        row["goals"] = {}
    for row, goal in goals(rows):
        row["goals"].update(goals_json([goal]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"64-byte forwarding, one port, generator wire (10 GbE line rate: "
             f"{LINE_RATE_MPPS} Mpps)",
             f"{'batch':>5} {'path':<22} {'Mpps':>9} {'vs C':>7} {'packets':>11}  goal"]
    for r in rows:
        ratio = f"{r['vs_c']:7.3f}" if r.get("vs_c") else "      -"
        flags = ", ".join(f"{name} {g['status']}" for name, g in r.get("goals", {}).items())
        lines.append(f"{r['batch']:>5} {r['path']:<22} {r['mpps']:>9.3f} {ratio} "
                     f"{r['packets']:>11,}  {flags}".rstrip())
    lines.append("for scale: ixy.py (CPython, one 3.3 GHz core) forwards "
                 + ", ".join(f"{m} Mpps at batch {b}" for b, m in IXY_PY_MPPS.items()))
    lines += ["", *method_lines(METHOD), "", *goal_lines(g for _row, g in goals(rows))]
    return "\n".join(lines)
