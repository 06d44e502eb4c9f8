"""`redleaf-lab bench nvme`: the NVMe driver's IOPS and MB/s against a C baseline.

Purpose: one run measures, on the sim NVMe model (inline or device-thread mode), the
Python driver called directly (its implementation object), through its proxy, through a
shadow (`make_shadow`), and the C baseline (csrc/nvme_host.c, an SPDK-perf-like loop on
a second controller model with the same parameters), plus this machine's memcpy
bandwidth (the physical limit of a memory-backed device).

Interface: `measure(seconds=..., batches=(1, 32, 128), threaded=False, rounds=5,
device="sim" | "vfio:BDF") ->
list[dict]`, one dict per (path, workload, batch) with keys path, workload, batch, ios,
seconds, iops, mbps (the median of `rounds` interleaved rounds), rounds, iops_best; plus
one dict with path "memcpy" (mbps). `format_table(rows) -> str`.
Workloads: 4k-randread, 4k-randwrite, 4k-seqread, 4k-seqwrite at each batch, and
128k-seqread / 128k-seqwrite: the Python driver submits 32 consecutive 4 KiB requests
per batch (the BDev unit is one block), the C baseline one 128 KiB command at depth 1.
The Python client reuses one batch of requests per case (block numbers fixed at set-up:
random or consecutive), so client-side work per I/O is only the deque swap.

Locking/ownership: boots its own kernel; runs in the calling thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..devices.sim_nvme import SimNvme, host_bench_bytes, memcpy_ns
from ..heap import BlkReq, RRef, RRefDeque
from ..idl.shadow import make_shadow

BLOCKS = 1 << 15
WORKLOADS_4K = ("4k-randread", "4k-randwrite", "4k-seqread", "4k-seqwrite")


def _requests(batch: int, random: bool, seed: int, device_blocks: int = BLOCKS) -> RRefDeque:
    rng = np.random.default_rng(seed)
    blocks = (rng.integers(0, device_blocks, batch) if random
              else (np.arange(batch) + seed % 1000) % device_blocks)
    submit = RRefDeque.new(BlkReq, batch)
    refs = []
    for block in blocks:
        ref = RRef.new(BlkReq)
        view = ref.array()
        view["block"] = int(block)
        del view
        refs.append(ref)
    submit.push_many(refs)
    return submit


def _run_python(bdev: Any, batch: int, random: bool, write: bool, seconds: float,
                device_blocks: int = BLOCKS) -> tuple[int, float]:
    submit = _requests(batch, random, batch, device_blocks)
    collect = RRefDeque.new(BlkReq, batch)
    ios = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(16):
            taken, submit, collect = bdev.submit_and_poll(submit, collect, write)
            submit, collect = collect, submit
            ios += taken
        now = time.perf_counter()
        if now >= deadline:
            return ios, now - t0


def _run_c(kernel: Any, threaded: bool, batch: int, nlb: int, random: bool, write: bool,
           seconds: float) -> tuple[int, float]:
    dev = SimNvme(kernel.heap, blocks=BLOCKS, threaded=threaded, name="nvme-c")
    try:
        need = host_bench_bytes(batch, nlb)
        mem = dev.dma_alloc(need)
        ios = max(batch * 4, 2000)
        while True:
            ns = dev.bench_host(mem.iova, need, batch, nlb, ios, write, random)
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
        device_blocks = min(BLOCKS, int(kernel.domain("nvme").impl.blocks))
        targets = {"direct": kernel.domain("nvme").impl, "proxy": proxy,
                   "shadow": make_shadow(kernel, "nvme")}
        cases = [(w, b) for b in batches for w in WORKLOADS_4K]
        cases += [("128k-seqread", 32), ("128k-seqwrite", 32)]
        for workload, batch in cases:
            write = "write" in workload
            random = "rand" in workload
            big = workload.startswith("128k")
            per_path: dict[str, list[tuple[int, int, float]]] = {p: [] for p in paths}
            for _round in range(max(1, rounds)):
                for path in paths:
                    if path == "c":
                        nlb, depth = (32, 1) if big else (1, batch)
                        ios, secs = _run_c(kernel, threaded, depth, nlb, random, write, slice_s)
                        nbytes = ios * nlb * 4096
                    else:
                        ios, secs = _run_python(targets[path], batch, random, write, slice_s,
                                                device_blocks)
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
                             "device": device})
        if not vfio:
            rows.append({"path": "memcpy", "workload": "memcpy", "batch": 0, "ios": 0,
                         "seconds": 0.0, "iops": 0, "mbps": round(memcpy_mbps(), 1),
                         "device": device})
    finally:
        kernel.shutdown()  # stops the driver before its device goes
        if dev is not None:
            dev.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    device = rows[0].get("device", "sim") if rows else "sim"
    lines = [f"device: {'embedded NVMe model' if device == 'sim' else device}",
             f"{'workload':<14} {'batch':>5} {'path':<7} {'IOPS':>11} {'MB/s':>9} {'vs C':>6}"]
    c_iops = {(r["workload"], r["batch"]): r["iops"] for r in rows if r["path"] == "c"}
    for r in rows:
        if r["path"] == "memcpy":
            lines.append(f"memcpy bandwidth: {r['mbps']:.0f} MB/s")
            continue
        base = c_iops.get((r["workload"], r["batch"]))
        ratio = f"{r['iops'] / base:6.2f}" if base else "     -"
        lines.append(f"{r['workload']:<14} {r['batch']:>5} {r['path']:<7} {r['iops']:>11,} "
                     f"{r['mbps']:>9.1f} {ratio}")
    return "\n".join(lines)
