"""`redleaf-lab bench maglev`: Mpps of the Maglev domain on the Python ixgbe driver, next
to plain forwarding through the same driver and Maglev in C on the same model.

Workload: the 82599 model's generator, 64-byte UDP frames to 10.2.0.1 (the VIP) over
`flows` flows (default 2^20, the paper's 1M; flow-count mode), 5 backends. Paths, each
with its own NIC model, driver domain and packet pool, at batch 32 and 256:

* maglev-direct: the Maglev code runs inside the driver's domain and calls the driver's
  implementation (RedLeaf's statically linked configuration);
* maglev-proxy: the maglev domain calls the driver through its proxy;
* maglev-shadow: the same through a shadow of the driver;
* fwd-proxy: plain forwarding (the fwd domain, ixy-fwd's loop) through the driver's proxy;
* c-maglev: the same steering in C (csrc/maglev_host.c: C hash table as flow table, the
  lookup table built by the domain's own population code) inside the C forwarding loop
  on a fresh model; c-fwd: the C forwarding loop alone.

Interleaved: per batch size, every case runs in turn, `slices` times; Mpps = frames
sent / total time of a case's slices. Goals (issue 17): maglev-proxy >= 0.6 of fwd-proxy
at the same batch (RedLeaf: 7.2 of 14.2 Mpps, 0.51); reported, not a goal: maglev vs C
Maglev (RedLeaf 0.74 of DPDK). The generator's flows are new at first: the flow table
fills as the run goes (1M flows need 1M frames before any repeats), so early slices see
more misses; every path sees the same kind of stream.

Interface: `measure(seconds=0.3, flows=2**20, batches=(32, 256), slices=3)` -> rows
(path, batch, packets, seconds, mpps, vs_fwd, vs_c, goals); `format_table(rows)`.
Boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..idl.shadow import ShadowPolicy, make_shadow
from .goals import Goal, goal_lines, goals_json, method_lines
from .net import inside

FRAME_BYTES = 64
BACKENDS = 5
GOAL_OVER_FWD = 0.6
PAPER = {"DPDK (C)": 9.7, "RedLeaf": 7.2, "Rv6": 5.3, "Rv6 + shadow": 5.1}
METHOD = __doc__.split("Interleaved: ", 1)[1].split("\n\nInterface:", 1)[0]
PY_PATHS = ("maglev-direct", "maglev-proxy", "maglev-shadow", "fwd-proxy")


def backend_config() -> dict[str, Any]:
    """The benchmark's backends: MACs 02:00:00:00:00:1i and addresses 10.3.0.(i+1)."""
    backends = [(0x10_00_00_00_00_02 | (i << 40), (10 << 24) | (3 << 16) | (i + 1))
                for i in range(BACKENDS)]
    return {"backends": backends, "table_size": 65537, "flow_slots": 1 << 21}


class _Case:
    def __init__(self, kernel: Any, path: str, batch: int, flows: int,
                 devices: list[Any]) -> None:
        from ..devices.sim_ixgbe import SimIxgbe

        self.kernel, self.path, self.batch = kernel, path, batch
        name = f"nic-{path}-{batch}"
        dev = SimIxgbe(kernel.heap, wire="generator", packet_size=FRAME_BYTES, flows=flows,
                       name=name)
        devices.append(dev)
        kernel.load("ixgbe", name=name, device=dev)
        self.driver = kernel.domain(name)
        self.context: Any = None
        if path == "maglev-direct":
            app_name = f"maglev-{batch}-image"
            kernel.load("maglev", name=app_name, net=kernel.proxy(name), config=backend_config())
            cls = type(kernel.domain(app_name).impl)
            kernel.stop(app_name)
            self.context = self.driver
            with inside(self.driver):  # the Maglev code, statically linked into the driver
                self.app: Any = cls(None, self.driver.impl, backend_config())
        else:
            net = (make_shadow(kernel, name, ShadowPolicy(max_restarts=1000))
                   if path == "maglev-shadow" else kernel.proxy(name))
            app_name = f"{path}-{batch}"
            if path == "fwd-proxy":
                self.app = kernel.load("fwd", name=app_name, net=net)
            else:
                self.app = kernel.load("maglev", name=app_name, net=net, config=backend_config())
        self._run(max(8, 1024 // batch))  # warm up: fill the RX ring
        self.packets, self.seconds = 0, 0.0

    def _run(self, rounds: int) -> int:
        if self.context is None:
            return int(self.app.run(rounds, self.batch)[1])
        with inside(self.context):
            return int(self.app.run(rounds, self.batch)[1])

    def stats(self) -> tuple[int, ...]:
        if self.context is None:
            return tuple(self.app.stats())
        with inside(self.context):
            return tuple(self.app.stats())

    def run(self, seconds: float) -> None:
        sent0 = self._run(0)
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while True:
            sent = self._run(4)
            now = time.perf_counter()
            if now >= deadline:
                break
        self.packets += sent - sent0
        self.seconds += now - t0


def c_run(kernel: Any, batch: int, seconds: float, flows: int,
          maglev: bool) -> tuple[int, float, dict[str, int]]:
    """One slice of the C baseline (Maglev or plain forwarding) on a fresh model."""
    from .._core._redleaf_dev import ffi as dffi
    from .._core._redleaf_dev import lib as dlib
    from ..devices.sim_ixgbe import SimIxgbe
    from ..domains.maglev.population import populate, preferences

    dev = SimIxgbe(kernel.heap, wire="generator", packet_size=FRAME_BYTES, flows=flows,
                   name="nic-c")
    try:
        if not maglev:
            result = dev.run_c_forward(batch, seconds)
            return int(result["packets"]), float(result["seconds"]), {}
        config = backend_config()
        m = config["table_size"]
        names = [".".join(str((ip >> s) & 0xFF) for s in (24, 16, 8, 0))
                 for _mac, ip in config["backends"]]
        lookup = np.array(populate([preferences(n, m) for n in names], m), dtype=np.int32)
        macs = np.array([[(mac >> (8 * i)) & 0xFF for i in range(6)]
                         for mac, _ip in config["backends"]], dtype=np.uint8)
        ips = np.array([[(ip >> s) & 0xFF for s in (24, 16, 8, 0)]
                        for _mac, ip in config["backends"]], dtype=np.uint8)
        vip = np.array([10, 2, 0, 1], dtype=np.uint8)
        ring = 512
        nbytes = int(dlib.ixg_fwd_bench_bytes(ring))
        mem = dev.dma_alloc(nbytes)
        out = dffi.new("ixg_fwd_result *")
        counts = dffi.new("ixg_maglev_counts *")
        try:
            rc = dlib.ixg_maglev_bench(
                dev._live(), mem.iova, nbytes, ring, batch, 2**63, int(seconds * 1e9),
                dffi.from_buffer("int32_t[]", lookup), m, dffi.from_buffer("uint8_t[]", macs),
                dffi.from_buffer("uint8_t[]", ips), len(names), 21,
                dffi.from_buffer("uint8_t[]", vip), out, counts)
        finally:
            dev.dma_free(mem.handle)
        if rc != 0:
            raise RuntimeError(f"C Maglev baseline failed ({rc})")
        stats = dev.stats()
        return int(out.tx_packets), int(out.ns) / 1e9, {
            "steered": int(counts.steered), "misses": int(counts.misses),
            "rejected": int(counts.rejected), "sink_ok": stats.sink_ok,
            "sink_bad": stats.sink_bad}
    finally:
        dev.close()


def measure(seconds: float = 0.3, flows: int = 1 << 20, batches: tuple[int, ...] = (32, 256),
            slices: int = 3) -> list[dict[str, Any]]:
    from .. import boot

    if not seconds > 0 or slices < 1:
        raise ValueError("seconds must be > 0 and slices >= 1")
    kernel = boot(heap_bytes=1 << 30, max_objects=1 << 19)
    rows: list[dict[str, Any]] = []
    devices: list[Any] = []
    try:
        for batch in batches:
            cases = [_Case(kernel, p, batch, flows, devices) for p in PY_PATHS]
            totals = {"c-maglev": [0, 0.0], "c-fwd": [0, 0.0]}
            checks: dict[str, int] = {}
            for _ in range(slices):
                for label, is_maglev in (("c-maglev", True), ("c-fwd", False)):
                    packets, secs, info = c_run(kernel, batch, seconds / slices, flows, is_maglev)
                    totals[label][0] += packets
                    totals[label][1] += secs
                    for key, value in info.items():
                        checks[key] = checks.get(key, 0) + value
                for case in cases:
                    case.run(seconds / slices)
            batch_rows = [_row(label, batch, int(p), float(s)) for label, (p, s) in totals.items()]
            batch_rows[0]["c_checks"] = checks
            if checks.get("steered"):
                batch_rows[0]["flow_misses"] = round(checks["misses"] / checks["steered"], 3)
            for c in cases:
                row = _row(c.path, batch, c.packets, c.seconds)
                if c.path != "fwd-proxy":  # how many frames began a flow the table lacked
                    received, _sent, _dropped, tracked, misses, moved = c.stats()
                    row.update(flow_misses=round(misses / received, 3) if received else None,
                               flows_tracked=tracked, flows_moved=moved)
                batch_rows.append(row)
            by_path = {r["path"]: r for r in batch_rows}
            for r in batch_rows:
                r["vs_fwd"] = _ratio(r["mpps"], by_path["fwd-proxy"]["mpps"])
                r["vs_c"] = _ratio(r["mpps"], by_path["c-maglev"]["mpps"])
            rows += batch_rows
    finally:
        kernel.shutdown()
        for device in devices:
            device.close()
    return annotate(rows)


def _row(path: str, batch: int, packets: int, secs: float) -> dict[str, Any]:
    return {"path": path, "batch": batch, "packets": packets, "seconds": round(secs, 4),
            "mpps": round(packets / secs / 1e6, 4) if secs else 0.0}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def goals(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Goal]]:
    out = []
    for r in rows:
        if r["path"] == "maglev-proxy":
            out.append((r, Goal(f"b{r['batch']}_maglev_over_fwd>=0.6",
                                f"batch {r['batch']}: maglev / plain forwarding (proxy)",
                                r["vs_fwd"], GOAL_OVER_FWD, ">=")))
    return out


def annotate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r["method"] = "own model, driver and pool per path; interleaved slices; totals"
        r["goals"] = {}
    for r, g in goals(rows):
        r["goals"].update(goals_json([g]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["Maglev, 64-byte UDP frames over the generator's flows, 5 backends, M = 65537",
             f"{'batch':>5} {'path':<14} {'Mpps':>8} {'x fwd':>7} {'x C mag':>8} "
             f"{'packets':>11} {'misses':>6}  goal   (misses: share of frames whose flow "
             "was not tracked yet)"]
    for r in rows:
        fwd = f"{r['vs_fwd']:7.3f}" if r.get("vs_fwd") is not None else "      -"
        cm = f"{r['vs_c']:8.3f}" if r.get("vs_c") is not None else "       -"
        flags = ", ".join(f"{n} {g['status']}" for n, g in r.get("goals", {}).items())
        miss = f"{r['flow_misses']:6.3f}" if r.get("flow_misses") is not None else "     -"
        lines.append(f"{r['batch']:>5} {r['path']:<14} {r['mpps']:>8.3f} {fwd} {cm} "
                     f"{r['packets']:>11,} {miss}  {flags}".rstrip())
    lines.append("paper (Mpps, 64 B, 1M flows): " + ", ".join(f"{k} {v}" for k, v in PAPER.items()))
    lines += ["", *method_lines(METHOD), "", *goal_lines(g for _r, g in goals(rows))]
    return "\n".join(lines)


def format_quality(figures: list[dict[str, Any]]) -> str:
    """The quality figures (domains/maglev/quality.figures) as a table."""
    fails = [k for k in figures[0] if k.startswith("fail_")] if figures else []
    head = "".join(f"  {k[5:]:>5} failed: forced maglev ring" for k in fails)
    lines = ["Maglev vs a consistent-hashing ring (100 points per backend), same M keys",
             f"{'M':>7} {'N':>5}  balance maglev   ring{head}"]
    for r in figures:
        cells = "".join(f"  {'':>13}{r[k]['forced']:6.3f} {r[k]['maglev']:6.3f} "
                        f"{r[k]['ring']:5.3f}" for k in fails)
        lines.append(f"{r['M']:>7} {r['N']:>5}  {'':>7} {r['maglev_balance']:6.3f} "
                     f"{r['ring_balance']:6.3f}{cells}")
    lines.append("balance: max/avg entries per backend; failed: fraction of backends removed; "
                 "forced: entries that had to move (the removed backends'); maglev, ring: "
                 "entries that moved")
    return "\n".join(lines)
