"""`redleaf-lab bench kv`: requests/s of the kvnet domain on the Python ixgbe driver,
next to plain forwarding through the same driver and a C store on the same model, and
(through TAP) against real memcached driven by the same client.

Model part: the 82599 model's generator replays memcached request frames
(kv_requests.py): first `set` for every key until the store holds them all (the warm-up,
not timed), then the measured mix, 90% `get` and 10% `set`, keys drawn uniformly or
Zipf (s = 0.99), for the paper's key/value sizes 8/8, 16/64 and 64/64, batch 32. Paths,
each with its own NIC model, driver and pool: kvnet-direct (the store code inside the
driver's domain, calling the driver's implementation), kvnet-shadow (the kvnet domain
through a shadow of the driver), fwd-proxy (the fwd domain forwarding the same frames
through the driver's proxy), c-kv (csrc/kv_host.c: the same protocol and replies in C,
on the C hash table, inside the C forwarding loop) and c-fwd. The replies go to the
model's sink, which checks every IPv4 and UDP checksum (sink_bad must stay 0).

Interleaved: per (size, distribution), every case runs in turn, `slices` times;
requests/s = frames answered (sent) / total time of a case's slices. Goal (issue 17):
kvnet-shadow >= 0.5 of fwd-proxy; reported: kvnet vs the C store (RedLeaf: 0.61-0.86 of
a C DPDK store).

TAP part (`tap=True`, needs root): kvnet (model thread, driver behind a shadow) and real
memcached (Debian's, started on loopback inside the same namespace, stopped afterwards),
each set and get by the same pymemcache-over-UDP client (memcache_udp.py) from the
namespace, sequential requests, and the store's panic seen from a client. On the model
(always): kvnet holding `keys` keys is panicked and restarted by a shadow; reported:
keys lost, the time until it answers again, its hit rate afterwards.

Interface: `measure(seconds=0.3, keys=1000, slices=2, tap=False)` -> rows;
`format_table(rows)`. Boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..idl.shadow import ShadowPolicy, make_shadow
from .goals import Goal, goal_lines, goals_json, method_lines
from .kv_requests import SERVER_IP, request_frames, zipf_weights
from .net import inside

SIZES = ((8, 8), (16, 64), (64, 64))
DISTRIBUTIONS = ("uniform", "zipf")
PY_PATHS = ("kvnet-direct", "kvnet-shadow", "fwd-proxy")
GOAL_OVER_FWD = 0.5
GET_SHARE = 0.9
METHOD = __doc__.split("Interleaved: ", 1)[1].split("\n\nTAP part", 1)[0]


def kv_config() -> dict[str, Any]:
    return {"address": tuple(SERVER_IP), "capacity": 1 << 14, "key_max": 64, "value_max": 64}


def mix(sets: list[bytes], gets: list[bytes], distribution: str) -> tuple[list[bytes], Any]:
    weights = zipf_weights(len(gets)) if distribution == "zipf" else np.ones(len(gets))
    both = np.concatenate([weights * GET_SHARE, weights * (1 - GET_SHARE)])
    return gets + sets, both


class _Case:
    def __init__(self, kernel: Any, path: str, tag: str, keys: int, key_size: int,
                 value_size: int, distribution: str, devices: list[Any]) -> None:
        from ..devices.sim_ixgbe import SimIxgbe

        self.kernel, self.path = kernel, path
        name = f"nic-{path}-{tag}"
        self.dev = dev = SimIxgbe(kernel.heap, wire="generator", packet_size=64, name=name)
        devices.append(dev)
        sets, gets = request_frames(dev.mac, keys, key_size, value_size)
        dev.set_replay(sets)  # warm-up: every key stored
        kernel.load("ixgbe", name=name, device=dev)
        self.driver = kernel.domain(name)
        self.context: Any = None
        app = f"{path}-{tag}"
        if path == "kvnet-direct":
            kernel.load("kvnet", name=app, net=kernel.proxy(name), config=kv_config())
            cls = type(kernel.domain(app).impl)
            kernel.stop(app)
            self.context = self.driver
            with inside(self.driver):
                self.app: Any = cls(None, self.driver.impl, kv_config())
        elif path == "kvnet-shadow":
            shadow = make_shadow(kernel, name, ShadowPolicy(max_restarts=1000))
            self.app = kernel.load("kvnet", name=app, net=shadow, config=kv_config())
        else:
            self.app = kernel.load("fwd", name=app, net=kernel.proxy(name))
        if path != "fwd-proxy":
            deadline = time.perf_counter() + 30
            while self._stats()[6] < keys and time.perf_counter() < deadline:
                self._run(16)
            self.warm_keys = self._stats()[6]
        else:
            self._run(16)
            self.warm_keys = keys
        frames, weights = mix(sets, gets, distribution)
        dev.set_replay(frames, weights)
        self._run(8)
        self.packets, self.seconds = 0, 0.0

    def _stats(self) -> tuple:
        if self.context is None:
            return tuple(self.app.stats())
        with inside(self.context):
            return tuple(self.app.stats())

    def _run(self, rounds: int) -> int:
        if self.context is None:
            return int(self.app.run(rounds, 32)[1])
        with inside(self.context):
            return int(self.app.run(rounds, 32)[1])

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


class _CCase:
    """The C store (or the C forwarding loop) on a model of its own, warmed like the rest."""

    def __init__(self, kernel: Any, keys: int, key_size: int, value_size: int,
                 distribution: str, store: bool) -> None:
        from .._core._redleaf_dev import ffi as dffi
        from .._core._redleaf_dev import lib as dlib
        from ..devices.sim_ixgbe import SimIxgbe

        self.ffi, self.lib, self.is_store = dffi, dlib, store
        self.path = "c-kv" if store else "c-fwd"
        self.dev = SimIxgbe(kernel.heap, wire="generator", packet_size=64, name=self.path)
        sets, gets = request_frames(self.dev.mac, keys, key_size, value_size)
        self.store: Any = None
        self.counts = dffi.new("ixg_kv_counts *")
        self.ring = 512
        self.nbytes = int(dlib.ixg_fwd_bench_bytes(self.ring))
        self.mem = self.dev.dma_alloc(self.nbytes)
        if store:
            raw = dlib.ixg_kv_create(bytes(SERVER_IP), self.dev.mac, 11211, 14, 64, 64)
            if raw == dffi.NULL:
                raise MemoryError("cannot create the C store")
            self.store = dffi.gc(raw, dlib.ixg_kv_destroy)
            self.dev.set_replay(sets)
            self._slice(4 * keys * 10, 10.0)  # warm-up: enough sets for every key
            self.warm_keys = int(self.counts.keys)
        else:
            self.warm_keys = keys
        frames, weights = mix(sets, gets, distribution)
        self.dev.set_replay(frames, weights)
        self.packets, self.seconds = 0, 0.0
        self.checks = {"sink_bad": 0, "errors": 0}

    def _slice(self, max_packets: int, seconds: float) -> tuple[int, float]:
        out = self.ffi.new("ixg_fwd_result *")
        if self.is_store:
            rc = self.lib.ixg_kv_bench(self.dev._live(), self.mem.iova, self.nbytes, self.ring, 32,
                                       max_packets, int(seconds * 1e9), self.store, out,
                                       self.counts)
        else:
            rc = self.lib.ixg_fwd_bench(self.dev._live(), self.mem.iova, self.nbytes, self.ring,
                                        32, max_packets, int(seconds * 1e9), out)
        if rc != 0:
            raise RuntimeError(f"{self.path} failed ({rc})")
        return int(out.tx_packets), int(out.ns) / 1e9

    def run(self, seconds: float) -> None:
        packets, secs = self._slice(2**62, seconds)
        self.packets += packets
        self.seconds += secs
        if self.is_store:
            self.checks["errors"] += int(self.counts.errors)

    def close(self) -> None:
        self.dev.dma_free(self.mem.handle)
        self.checks["sink_bad"] = self.dev.stats().sink_bad
        self.dev.close()


def measure(seconds: float = 0.3, keys: int = 1000, slices: int = 2, tap: bool = False,
            sizes: tuple[tuple[int, int], ...] = SIZES,
            distributions: tuple[str, ...] = DISTRIBUTIONS) -> list[dict[str, Any]]:
    from .. import boot

    if not seconds > 0 or slices < 1 or not 1 <= keys <= 8192:
        raise ValueError("seconds must be > 0, slices >= 1, keys 1..8192")
    kernel = boot(heap_bytes=1 << 30, max_objects=1 << 19)
    rows: list[dict[str, Any]] = []
    devices: list[Any] = []
    try:
        for n, (key_size, value_size) in enumerate(sizes):
            for distribution in distributions:
                tag = f"{n}{distribution[0]}"
                cases: list[Any] = [_CCase(kernel, keys, key_size, value_size, distribution, s)
                                    for s in (True, False)]
                cases += [_Case(kernel, p, tag, keys, key_size, value_size, distribution,
                                devices) for p in PY_PATHS]
                for _ in range(slices):
                    for case in cases:
                        case.run(seconds / slices)
                group = []
                for case in cases:
                    row = {"path": case.path, "sizes": f"{key_size}/{value_size}",
                           "distribution": distribution, "batch": 32, "requests": case.packets,
                           "seconds": round(case.seconds, 4),
                           "rps": round(case.packets / case.seconds) if case.seconds else 0,
                           "warm_keys": case.warm_keys}
                    if isinstance(case, _CCase):
                        case.close()
                        row["checks"] = dict(case.checks)
                    else:
                        row["checks"] = {"sink_bad": case.dev.stats().sink_bad}
                    group.append(row)
                by = {r["path"]: r for r in group}
                for r in group:
                    r["vs_fwd"] = _ratio(r["rps"], by["fwd-proxy"]["rps"])
                    r["vs_c"] = _ratio(r["rps"], by["c-kv"]["rps"])
                rows += group
        rows.append(store_panic_row(kernel, keys, devices))
        if tap:
            from .kv_tap import tap_rows

            rows += tap_rows(kernel, keys)
    finally:
        kernel.shutdown()
        for device in devices:
            device.close()
    return annotate(rows)


def store_panic_row(kernel: Any, keys: int, devices: list[Any]) -> dict[str, Any]:
    """kvnet (behind a shadow of its own) holding `keys` keys on the model panics; the
    shadow restarts it. Keys lost, the time from the panic to the first reply of the new
    incarnation, and its get hit rate over the next 2,000 requests (the table is empty)."""
    from ..devices.sim_ixgbe import SimIxgbe

    dev = SimIxgbe(kernel.heap, wire="generator", packet_size=64, name="nic-panic")
    devices.append(dev)
    sets, gets = request_frames(dev.mac, keys, 16, 64)
    dev.set_replay(sets)
    kernel.load("ixgbe", name="nic-panic", device=dev)
    kernel.load("kvnet", name="kv-panic", net=kernel.proxy("nic-panic"), config=kv_config())
    kv = make_shadow(kernel, "kv-panic", ShadowPolicy(backoff_s=0.0, max_restarts=10))
    deadline = time.perf_counter() + 30
    while kv.stats()[6] < keys and time.perf_counter() < deadline:
        kv.run(16, 32)
    held = kv.stats()[6]
    dev.set_replay(gets)
    kv.run(16, 32)
    t0 = time.perf_counter()
    kernel.panic("kv-panic")
    sent = 0
    while sent == 0 and time.perf_counter() - t0 < 30:
        sent = kv.run(1, 32)[1]
    first_reply = time.perf_counter() - t0
    while kv.stats()[0] < 2000 and time.perf_counter() - t0 < 30:
        kv.run(16, 32)
    gets_after, hits_after = kv.stats()[0], kv.stats()[3]
    return {"path": "kvnet store panic", "keys_before": held, "keys_after": kv.stats()[6],
            "keys_lost": held - kv.stats()[6], "first_reply_after_s": round(first_reply, 4),
            "hit_rate_after": round(hits_after / gets_after, 3) if gets_after else None,
            "restarts": kernel.restarts("kv-panic")}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def goals(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Goal]]:
    return [(r, Goal(f"{r['sizes']}_{r['distribution']}_kvnet_over_fwd>=0.5",
                     f"{r['sizes']} {r['distribution']}: kvnet (shadow) / forwarding",
                     r["vs_fwd"], GOAL_OVER_FWD, ">="))
            for r in rows if r.get("path") == "kvnet-shadow"]


def annotate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r.setdefault("method", "own model, driver and pool per path; interleaved slices")
        r["goals"] = {}
    for r, g in goals(rows):
        r["goals"].update(goals_json([g]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["memcached over UDP on the 82599 model: 90% get / 10% set, batch 32",
             f"{'k/v':>6} {'keys':<8} {'path':<14} {'req/s':>11} {'x fwd':>7} {'x C kv':>7}"
             f"  checks / goal"]
    for r in rows:
        if "rps" not in r:
            continue
        fwd = f"{r['vs_fwd']:7.3f}" if r.get("vs_fwd") is not None else "      -"
        ck = f"{r['vs_c']:7.3f}" if r.get("vs_c") is not None else "      -"
        flags = ", ".join(f"{n} {g['status']}" for n, g in r.get("goals", {}).items())
        checks = " ".join(f"{k}={v}" for k, v in r.get("checks", {}).items())
        lines.append(f"{r['sizes']:>6} {r['distribution']:<8} {r['path']:<14} {r['rps']:>11,} "
                     f"{fwd} {ck}  {checks} {flags}".rstrip())
    for r in rows:
        if r.get("path") == "kvnet store panic":
            lines += ["", "the store's own panic (model, 16/64): " + ", ".join(
                f"{k}={v}" for k, v in r.items() if k not in ("method", "goals", "path"))]
    tap = [r for r in rows if r.get("tap")]
    if tap:
        lines += ["", "through TAP, one pymemcache-over-UDP client in the namespace:"]
        for r in tap:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in r.items()
                                          if k not in ("method", "goals", "tap")))
    lines.append("paper: RedLeaf's store at 61-86% of a C DPDK store (8/8, 16/64, 64/64)")
    lines += ["", *method_lines(METHOD), "", *goal_lines(g for _r, g in goals(rows))]
    return "\n".join(lines)
