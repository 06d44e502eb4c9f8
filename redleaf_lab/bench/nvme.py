"""`redleaf-lab bench nvme`: the NVMe driver's IOPS and MB/s against a C baseline.

Purpose: one run measures, on the sim NVMe model (inline or device-thread mode), the
Python driver called directly (its implementation object), through its proxy, through a
shadow (`make_shadow`), and the C baseline (csrc/nvme_host.c, an SPDK-perf-like loop on
a second controller model with the same parameters), plus this machine's memcpy
bandwidth (the physical limit of a memory-backed device).

Interface: `measure(seconds=..., batches=(1, 32, 128), threaded=False, rounds=5,
device="sim" | "vfio:BDF") ->
list[dict]`, one dict per (path, workload, batch) with keys path, workload, batch, ios,
seconds, iops, mbps (the median of `rounds` interleaved rounds), rounds, iops_best,
namespace_blocks, method (a one-line summary) and goals (the goals reported on that row:
name -> {goal, value, target, comparison, met, status}); plus one dict with path
"memcpy" (mbps). `format_table(rows) -> str` ends with the method and the goals.
Workloads: 4k-randread, 4k-randwrite, 4k-seqread, 4k-seqwrite at each batch, and
128k-seqread / 128k-seqwrite: the Python driver submits 32 consecutive 4 KiB requests
per batch (the BDev unit is one block), the C baseline one 128 KiB command at depth 1.
Every path walks the same block sequence, the C loop's own (`block_sequence`: random
rows uniform over the whole namespace, sequential rows from block 0), from its start
in every run; the Python client writes each batch's block numbers into its requests
with one registry call. `METHOD` says all this in the output; `goals(rows)` checks
issue 4's goals (each "met" or "MISSED").

Locking/ownership: boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..devices.sim_nvme import SimNvme, host_bench_bytes, memcpy_ns
from ..heap import BlkReq, RRef, RRefDeque
from ..idl.shadow import make_shadow
from .block_sequence import C_SEED, request_blocks
from .goals import Goal, goal_lines, goals_json, method_lines
from .reference import reference_targets

BLOCKS = 1 << 15
WORKLOADS_4K = ("4k-randread", "4k-randwrite", "4k-seqread", "4k-seqwrite")
BIG_NLB = 32  # 128 KiB = 32 blocks of 4 KiB
MAX_PYTHON_IOPS = 4e6  # above any Python path here: a slice's sequence is this long
METHOD = """Same work on every path: the Python NVMe driver called directly, through its
proxy and through a shadow, and the C host loop (SPDK-perf-like, on a second controller
model with the same parameters) read or write the same block sequence, the C loop's own:
random rows uniform over the whole namespace, sequential rows from block 0; every run
starts at the head of the sequence. 4 KiB rows: the C loop keeps `batch` one-block
commands in flight; the Python driver takes `batch` requests per call and merges runs of
consecutive blocks into one command (a block layer's merge), so its sequential batches
are multi-block commands. 128 KiB rows: the C loop issues one 32-block command at a time,
the Python driver 32 consecutive requests per call.

Interleaved: each case runs its paths in turn, `rounds` rounds of one slice each; IOPS
and MB/s are the median round of each path (iops_best: its best round); vs C divides by
the C row of the same case. memcpy: 64 MiB copied 8 times in C, the bandwidth limit of
a memory-backed device."""
METHOD_SUMMARY = ("same C-loop block sequence on every path (random: whole namespace); "
                  "paths interleaved; median of rounds")


def _sequence(workload: str, count: int, nsze: int) -> np.ndarray:
    """The 4 KiB blocks of `workload`, in the order every path uses them."""
    nlb = BIG_NLB if workload.startswith("128k") else 1
    return request_blocks(count, "rand" in workload, nsze, nlb=nlb, seed=C_SEED)


def _run_python(bdev: Any, batch: int, blocks: np.ndarray, write: bool, seconds: float
                ) -> tuple[int, float]:
    """Batches of `batch` requests for `seconds`, the i-th request on `blocks[i]` (the
    sequence starts again at its end: `blocks` is longer than a slice ever gets)."""
    submit = RRefDeque.new(BlkReq, batch)
    submit.push_many([RRef.new(BlkReq) for _ in range(batch)])
    collect = RRefDeque.new(BlkReq, batch)
    usable = len(blocks) - len(blocks) % batch
    if usable == 0:
        raise ValueError(f"a sequence of {len(blocks)} blocks is shorter than a batch")
    at = ios = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(16):
            submit.set("block", blocks[at:at + batch])
            taken, submit, collect = bdev.submit_and_poll(submit, collect, write)
            submit, collect = collect, submit
            ios += taken
            at = at + batch if at + batch < usable else 0
        now = time.perf_counter()
        if now >= deadline:
            return ios, now - t0


def _run_c(kernel: Any, threaded: bool, batch: int, nlb: int, random: bool, write: bool,
           seconds: float, nsze: int = BLOCKS) -> tuple[int, float]:
    dev = SimNvme(kernel.heap, blocks=nsze, threaded=threaded, name="nvme-c")
    try:
        need = host_bench_bytes(batch, nlb)
        mem = dev.dma_alloc(need)
        ios = max(batch * 4, 2000)
        while True:
            ns = dev.bench_host(mem.iova, need, batch, nlb, ios, write, random, seed=C_SEED)
            if ns < 0:
                raise RuntimeError(f"C baseline failed with {ns}")
            if ns / 1e9 >= seconds / 4 or ios > 50_000_000:
                dev.dma_free(mem.handle)
                return ios, ns / 1e9
            ios *= 4
    finally:
        dev.close()


def memcpy_mbps(nbytes: int = 64 << 20, rounds: int = 8) -> float:
    src = np.ones(nbytes, np.uint8)
    dst = np.ones(nbytes, np.uint8)  # touched: no first-touch page faults in the timing
    ns = memcpy_ns(dst, src, nbytes, rounds)
    return nbytes * rounds / (ns / 1e9) / 1e6


def measure(seconds: float = 0.3, batches: tuple[int, ...] = (1, 32, 128),
            threaded: bool = False, paths: tuple[str, ...] = ("direct", "proxy", "shadow", "c"),
            rounds: int = 5, device: str = "sim") -> list[dict[str, Any]]:
    """Run every (path, workload, batch); see the module docstring. Each case runs its
    paths interleaved, `rounds` times for seconds / rounds each, and reports the median
    round per path (this VM's neighbours make single runs swing by 10-30%).

    `device` "vfio:BDF" (devices.select.open_nvme) runs the Python paths on a real
    controller through VFIO, with a 64 MiB heap (VFIO pins it for DMA); the C baseline
    and memcpy rows need the embedded model and are left out."""
    from .. import boot
    from ..devices.select import VFIO_HEAP_BYTES, open_nvme

    vfio = device.startswith("vfio")
    if vfio:
        paths = tuple(p for p in paths if p != "c")
    elif device != "sim":
        raise ValueError(f"bench nvme runs on 'sim' or 'vfio:BDF', not {device!r}")
    kernel = boot(heap_bytes=VFIO_HEAP_BYTES if vfio else 512 << 20, max_objects=1 << 18)
    rows: list[dict[str, Any]] = []
    slice_s = seconds / max(1, rounds)
    dev: Any = None
    try:
        dev = (open_nvme(kernel, device) if vfio
               else SimNvme(kernel.heap, blocks=BLOCKS, threaded=threaded))
        proxy = kernel.load("nvme", device=dev)
        nsze = int(kernel.domain("nvme").impl.blocks)  # the whole namespace
        length = max(1 << 16, int(slice_s * MAX_PYTHON_IOPS))
        targets = {"direct": kernel.domain("nvme").impl, "proxy": proxy,
                   "shadow": make_shadow(kernel, "nvme")}
        py_proxy, py_shadow = reference_targets(kernel, "nvme")
        if py_proxy is not None:  # issue 14: the same paths through the Python proxy
            paths = (*paths, "python-proxy", "python-shadow")
            targets.update({"python-proxy": py_proxy, "python-shadow": py_shadow})
        cases = [(w, b) for b in batches for w in WORKLOADS_4K]
        cases += [("128k-seqread", 32), ("128k-seqwrite", 32)]
        for workload, batch in cases:
            write = "write" in workload
            random = "rand" in workload
            big = workload.startswith("128k")
            blocks = _sequence(workload, length - length % (batch * BIG_NLB) + batch * BIG_NLB,
                               nsze)
            per_path: dict[str, list[tuple[int, int, float]]] = {p: [] for p in paths}
            for _round in range(max(1, rounds)):
                for path in paths:
                    if path == "c":
                        nlb, depth = (32, 1) if big else (1, batch)
                        ios, secs = _run_c(kernel, threaded, depth, nlb, random, write, slice_s,
                                           nsze)
                        nbytes = ios * nlb * 4096
                    else:
                        ios, secs = _run_python(targets[path], batch, blocks, write, slice_s)
                        nbytes = ios * 4096
                        if big:
                            ios //= 32
                    per_path[path].append((ios, nbytes, secs))
            for path, runs in per_path.items():
                ios, nbytes, secs = sorted(runs, key=lambda r: r[0] / r[2])[len(runs) // 2]
                rows.append({"path": path, "workload": workload, "batch": batch, "ios": ios,
                             "seconds": round(secs, 4), "iops": round(ios / secs),
                             "mbps": round(nbytes / secs / 1e6, 1), "rounds": len(runs),
                             "iops_best": round(max(r[0] / r[2] for r in runs)),
                             "device": device, "namespace_blocks": nsze,
                             "method": METHOD_SUMMARY})
        if not vfio:
            rows.append({"path": "memcpy", "workload": "memcpy", "batch": 0, "ios": 0,
                         "seconds": 0.0, "iops": 0, "mbps": round(memcpy_mbps(), 1),
                         "device": device, "method": METHOD_SUMMARY})
    finally:
        kernel.shutdown()  # stops the driver before its device goes
        if dev is not None:
            dev.close()
    return annotate(rows)


def _row(rows: list[dict[str, Any]], path: str, workload: str, batch: int
         ) -> dict[str, Any] | None:
    return next((r for r in rows if (r["path"], r["workload"], r["batch"])
                 == (path, workload, batch)), None)


def goals(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Goal]]:
    """Issue 4's goals, each with the row it is reported on (those the run can check)."""
    out: list[tuple[dict[str, Any], Goal]] = []
    direct = _row(rows, "direct", "4k-randread", 32)
    if direct is None:
        return out
    out.append((direct, Goal("randread_b32_iops>=500000",
                             "4 KiB random reads, batch 32, direct: IOPS",
                             direct["iops"], 500_000, ">=")))
    c_row = _row(rows, "c", "4k-randread", 32)
    if c_row is not None:
        out.append((direct, Goal("randread_b32_vs_c>=0.5",
                                 "4 KiB random reads, batch 32, direct / C",
                                 direct["iops"] / c_row["iops"] if c_row["iops"] else None,
                                 0.5, ">=")))
    shadow = _row(rows, "shadow", "4k-randread", 32)
    if shadow is not None:
        ratio = shadow["iops"] / direct["iops"] if direct["iops"] else None
        out.append((shadow, Goal("shadow_over_direct_b32>=0.97",
                                 "4 KiB random reads, batch 32: shadow / direct",
                                 ratio, 0.97, ">=")))
    big = _row(rows, "direct", "128k-seqread", 32)
    memcpy = next((r for r in rows if r["path"] == "memcpy"), None)
    if big is not None and memcpy is not None:
        out.append((big, Goal("seqread_128k_vs_memcpy>=0.5",
                              "128 KiB sequential reads, direct / memcpy bandwidth",
                              big["mbps"] / memcpy["mbps"] if memcpy["mbps"] else None,
                              0.5, ">=")))
    return out


def annotate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row gets "goals": the goals reported on it, each with its status."""
    for row in rows:
        row["goals"] = {}
    for row, goal in goals(rows):
        row["goals"].update(goals_json([goal]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    device = rows[0].get("device", "sim") if rows else "sim"
    nsze = rows[0].get("namespace_blocks", BLOCKS) if rows else BLOCKS
    lines = [f"device: {'embedded NVMe model' if device == 'sim' else device}, "
             f"namespace {nsze} blocks of 4 KiB",
             f"{'workload':<14} {'batch':>5} {'path':<7} {'IOPS':>11} {'MB/s':>9} {'vs C':>6}"
             "  goal"]
    c_iops = {(r["workload"], r["batch"]): r["iops"] for r in rows if r["path"] == "c"}
    for r in rows:
        if r["path"] == "memcpy":
            lines.append(f"memcpy bandwidth: {r['mbps']:.0f} MB/s")
            continue
        base = c_iops.get((r["workload"], r["batch"]))
        ratio = f"{r['iops'] / base:6.2f}" if base else "     -"
        flags = ", ".join(f"{name} {g['status']}" for name, g in r.get("goals", {}).items())
        lines.append(f"{r['workload']:<14} {r['batch']:>5} {r['path']:<7} {r['iops']:>11,} "
                     f"{r['mbps']:>9.1f} {ratio}  {flags}".rstrip())
    lines += ["", *method_lines(METHOD), "", *goal_lines(g for _row, g in goals(rows))]
    return "\n".join(lines)
