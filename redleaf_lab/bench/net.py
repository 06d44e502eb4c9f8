"""`redleaf-lab bench net`: forwarding Mpps of the Python ixgbe driver against a C baseline.

Purpose: one run measures 64-byte forwarding (ixy-fwd's loop: receive a batch, touch
one byte per packet, send it back out on the same port; `interfaces.net.Forwarder`)
on the sim 82599 model with its traffic-generator wire (inline mode by default: the
model runs on every tail write, deterministically; `threaded=True` gives it its own
C thread), at batch 1, 32 and 256, over three paths:

* direct: the loop runs inside the driver's domain and calls its implementation (no
  boundary: RedLeaf's statically linked configuration);
* domain: the loop runs in the root context and calls the driver through its proxy;
* shadow: the same, through a shadow (`make_shadow`), which adds a retry frame;

and the C baseline (`SimIxgbe.run_c_forward`: an l2fwd-like loop in C on a second model
with the same parameters), plus the same three paths over `drivers/nullnet` (no device:
the cost of isolation alone). Each case starts with a fresh incarnation of the driver,
so no buffer of one case is still on the rings in the next.

Interface: `measure(seconds=0.3, batches=(1, 32, 256), threaded=False) -> list[dict]`,
one dict per (path, batch): path, driver, batch, packets, seconds, mpps, vs_c (the
ratio to the C baseline at the same batch; None for nullnet and C). `format_table`.

Locking/ownership: boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..idl.shadow import ShadowPolicy, make_shadow
from ..interfaces.net import Forwarder
from ..kernel.context import thread_state

FRAME_BYTES = 64
LINE_RATE_MPPS = 14.88  # 10 GbE at 64 B: 10e9 / ((64 + 20) * 8)
PATHS = ("direct", "domain", "shadow")


@contextmanager
def inside(domain: Any) -> Iterator[None]:
    """Run the block as code of `domain` (what a statically linked app would be)."""
    stack = thread_state().stack
    stack.append(domain)
    try:
        yield
    finally:
        stack.pop()


def _forward(net: Any, batch: int, seconds: float) -> tuple[int, float]:
    """Forward for `seconds` (after a warm-up that fills the RX ring); (packets, seconds)."""
    fwd = Forwarder(net, batch)
    try:
        fwd.run(max(8, 1024 // batch))
        sent = fwd.sent
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while True:
            fwd.run(16)
            now = time.perf_counter()
            if now >= deadline:
                return fwd.sent - sent, now - t0
    finally:
        fwd.release()


def _run_path(kernel: Any, name: str, path: str, batch: int, seconds: float) -> tuple[int, float]:
    domain = kernel.domain(name)
    if path == "direct":
        with inside(domain):
            return _forward(domain.impl, batch, seconds)
    if path == "domain":
        return _forward(kernel.proxy(name), batch, seconds)
    shadow = make_shadow(kernel, name, ShadowPolicy(max_restarts=1000))
    return _forward(shadow, batch, seconds)


def _fresh(kernel: Any, name: str) -> None:
    """A new incarnation of the driver: empty rings, a re-initialized NIC."""
    kernel.stop(name)
    kernel.restart(name)


def _row(path: str, driver: str, batch: int, packets: int, secs: float) -> dict[str, Any]:
    return {"path": path, "driver": driver, "batch": batch, "packets": packets,
            "seconds": round(secs, 4), "mpps": round(packets / secs / 1e6, 4), "vs_c": None}


def measure(seconds: float = 0.3, batches: tuple[int, ...] = (1, 32, 256),
            threaded: bool = False, paths: tuple[str, ...] = (*PATHS, "c"),
            nullnet: bool = True) -> list[dict[str, Any]]:
    """Run every (path, batch); see the module docstring."""
    from .. import boot
    from ..devices.sim_ixgbe import SimIxgbe

    kernel = boot(heap_bytes=256 << 20, max_objects=1 << 17)
    rows: list[dict[str, Any]] = []
    devices = []
    try:
        dev = SimIxgbe(kernel.heap, wire="generator", threaded=threaded,
                       packet_size=FRAME_BYTES)
        devices.append(dev)
        kernel.load("ixgbe", device=dev)
        if nullnet:
            kernel.load("nullnet")
        for batch in batches:
            c_mpps = None
            if "c" in paths:
                c_dev = SimIxgbe(kernel.heap, wire="generator", threaded=threaded,
                                 packet_size=FRAME_BYTES)
                devices.append(c_dev)
                result = c_dev.run_c_forward(batch, seconds)
                c_dev.close()
                c_mpps = float(result["mpps"])
                rows.append({**_row("c", "ixgbe", batch, int(result["packets"]),
                                    float(result["seconds"])), "mpps": round(c_mpps, 4)})
            for path in paths:
                if path == "c":
                    continue
                _fresh(kernel, "ixgbe")
                packets, secs = _run_path(kernel, "ixgbe", path, batch, seconds)
                row = _row(path, "ixgbe", batch, packets, secs)
                if c_mpps:
                    row["vs_c"] = round(row["mpps"] / c_mpps, 4)
                rows.append(row)
            if nullnet:
                for path in PATHS:
                    _fresh(kernel, "nullnet")
                    packets, secs = _run_path(kernel, "nullnet", path, batch, seconds)
                    rows.append(_row(f"nullnet-{path}", "nullnet", batch, packets, secs))
    finally:
        kernel.shutdown()
        for device in devices:
            device.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"64-byte forwarding, one port, generator wire (10 GbE line rate: "
             f"{LINE_RATE_MPPS} Mpps)",
             f"{'batch':>5} {'path':<15} {'Mpps':>9} {'vs C':>7} {'packets':>11}"]
    for r in rows:
        ratio = f"{r['vs_c']:7.3f}" if r.get("vs_c") else "      -"
        lines.append(f"{r['batch']:>5} {r['path']:<15} {r['mpps']:>9.3f} {ratio} "
                     f"{r['packets']:>11,}")
    return "\n".join(lines)
