"""`redleaf-lab demo`: boot, run drivers and domains, panic them on a schedule, recover.

Five workloads run at once:

* the block driver `membdev` behind a shadow (`live.workloads.BlockWorkload`):
  batched 4 KiB writes and read-backs on its own traffic thread, panicking at
  the first call after every `period` seconds; the shadow restarts it and
  retries, so no acknowledged write may be lost (checked against the store).
  Reads land in poisoned buffers and are checked against the record of
  acknowledged writes (`live.block_pattern`), so "wrong reads 0" means the
  driver really read every block back;
* the NVMe driver on the embedded controller model, behind a shadow
  (`live.nvme_workload.NvmeWorkload`), the same verified traffic, panicked
  *asynchronously* every `1.3 x period` seconds, wherever it is; each restart
  resets the controller (checked against the namespace's media);
* the ixgbe driver on the embedded 82599 model, behind a shadow
  (`live.net_workload.NetWorkload`): ixy-fwd's loop forwards 64-byte frames from
  the model's traffic generator back out to its sink, which verifies them;
  panicked at the first call after every `1.1 x period` seconds; each restart
  resets the NIC, and the frames in flight are counted as dropped;
* Rv6 (`rv6img.workload.Rv6Workload`): a process of Rv6 rewrites files with a
  pattern naming file and version and reads each back, through the syscall layer,
  the file-system domain and its log, onto the block driver `rv6disk` behind a
  shadow, which panics at the first call after every `period` seconds. A wrong
  read-back, a failed call (the program must see no error) and, at the end, a file
  that lost its last acknowledged version all count against the demo's health;
* the root program stores 4 KiB blocks in the `kvstore` domain, which
  checksums each one through the `checksum` domain (a nested call), and reads
  them back, verifying every byte. `kvstore` panics every `period` seconds; it
  has no shadow, so the demo restarts it and counts the blocks lost with it.
  `checksum` is panicked asynchronously every `1.7 x period` seconds; kvstore
  handles the RpcError and the demo restarts checksum.

A `Sampler` thread records throughput, crashes and recoveries (live progress on
a terminal); at the end every domain is stopped, the heap is checked for leaks,
and `--out DIR` gets the offline HTML dashboard (and a PNG when chromium is
installed), whose call-cost chart is a short `bench calls` run next to RedLeaf's
Table 1. `run()` returns the JSON summary.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RpcError
from .heap import Block, RRef
from .kernel.events import Event


def _pattern(key: int, version: int) -> np.ndarray:
    rng = np.random.default_rng(key * 1_000_003 + version)
    return rng.integers(0, 256, Block.size, dtype=np.uint8)


def run(seconds: float = 5.0, period: float = 1.0, keys: int = 64,
        progress: Callable[[str], None] | None = None, out: str | Path | None = None,
        block_driver: str | Path = "membdev", rv6_driver: str | Path = "membdev"
        ) -> dict[str, Any]:
    """Run the demo; returns the summary (what `--json` prints). `block_driver` is the
    driver loaded as `membdev`, `rv6_driver` the one loaded as Rv6's `rv6disk` (names or
    folders: tests use broken ones)."""
    from .live.sampler import Sampler, Tick
    from .live.session import LabSession
    from .rv6img import workload as _registers_rv6  # noqa: F401 - the "rv6" workload

    lab = LabSession.boot(heap_mb=256, domains=(), workloads=())
    kernel = lab.kernel
    counts = {"reclaimed_objects": 0, "reclaimed_bytes": 0, "unwound_threads": 0}

    def on_event(event: Event) -> None:
        if event.kind == "reclaim":
            counts["reclaimed_objects"] += int(event.data["objects"])
            counts["reclaimed_bytes"] += int(event.data["bytes"])
        elif event.kind == "unwind":
            counts["unwound_threads"] += int(event.data["threads"])

    kernel.events.subscribe(on_event, kinds={"reclaim", "unwind"})
    baseline = kernel.heap.stats().live_objects
    checksum = kernel.load("checksum")
    kv = kernel.load("kvstore", checksum=checksum)
    block_io = lab.add_workload("membdev", driver=block_driver)
    nvme_io = lab.add_workload("nvme")
    net_io = lab.add_workload("ixgbe")
    rv6_io = lab.add_workload("rv6", membdev_code=rv6_driver)  # Rv6 on its own rv6disk
    drivers_running = (block_io, nvme_io, net_io, rv6_io)
    sampler = Sampler(kernel, lab.workloads, period=0.2)
    t_start = time.monotonic()
    deadline = t_start + seconds

    def show(tick: Tick) -> None:
        if progress is None:
            return
        done = min(1.0, (time.monotonic() - t_start) / seconds)
        bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
        figures = []
        for name, domain in (("membdev", "membdev"), ("nvme", "nvme"), ("ixgbe", "ixgbe"),
                             ("rv6", rv6_io.domain)):
            mbps, ops = tick.rates.get(name, (0.0, 0.0))
            c = tick.counters.get(domain)
            rate = f"{ops / 1e6:5.2f} Mpps" if name == "ixgbe" else f"{mbps:6.1f} MB/s"
            figures.append(f"{name} {rate} ({c.crashes if c else 0} crashes)")
        progress(f"[{bar}] {'  '.join(figures)}  kv {stats['puts']:>6} puts "
                 f"(crashes kv={kernel.crashes('kvstore')} cs={kernel.crashes('checksum')})")

    sampler.add_listener(show)
    block_io.start("mixed")
    nvme_io.start("mixed")
    net_io.start("forward")
    rv6_io.start()
    sampler.start()
    kernel.faults.every("membdev", period)
    kernel.faults.every("nvme", 1.3 * period, asynchronous=True)
    kernel.faults.every("ixgbe", 1.1 * period)
    kernel.faults.every(rv6_io.domain, period)
    kernel.faults.every("kvstore", period)
    kernel.faults.every("checksum", 1.7 * period, asynchronous=True)

    expected: dict[int, int] = {}  # key -> version stored
    stats = {"puts": 0, "gets": 0, "verified": 0, "wrong": 0, "kv_rpc_errors": 0,
             "lost_on_crash": 0}
    version = 0
    while version == 0 or time.monotonic() < deadline:  # (at least one round: starting
        # five workloads' threads can take a short run's whole time on a loaded machine)
        version += 1
        key = version % keys
        try:
            if kernel.domain("checksum").state != "running":
                checksum = kernel.restart("checksum")
                kv.use_checksum(checksum)
            # no local keeps the handle: kvstore holds this very object after the move,
            # and a view it takes (kv.get of this key) would outlive the store through us
            crc = kv.put(key, RRef.new(Block, _pattern(key, version)))
            stats["puts"] += 1
            if crc != zlib.crc32(_pattern(key, version).tobytes()):
                stats["wrong"] += 1
            expected[key] = version
            probe = (key * 7) % keys
            found, buf = kv.get(probe, RRef.new(Block))
            stats["gets"] += 1
            if found != (probe in expected):
                stats["wrong"] += 1
            elif found:
                ok = np.array_equal(buf.readonly(), _pattern(probe, expected[probe]))
                stats["verified" if ok else "wrong"] += 1
            buf.drop()
        except RpcError as err:
            if err.domain != "kvstore":
                raise
            stats["kv_rpc_errors"] += 1
            stats["lost_on_crash"] += len(expected)
            expected.clear()
            kv = kernel.restart("kvstore")
            if kernel.domain("checksum").state == "running":
                kv.use_checksum(kernel.proxy("checksum"))
    kernel.faults.clear_all()
    for workload in drivers_running:
        workload.stop()
    elapsed = time.monotonic() - t_start
    sampler.tick()
    sampler.stop()
    drivers = {wl.name: _driver_summary(wl, sampler, kernel, elapsed)
               for wl in drivers_running}
    call_rows: dict[str, Any] | None = None
    if out is not None:  # the dashboard's call-cost chart: this machine next to Table 1
        from .bench import calls

        call_rows = calls.measure(iterations=20_000, slow_iterations=300, runs=3)
    files = _write_outputs(sampler, out, call_rows) if out is not None else {}
    rows = kernel.ps()
    sampler.close()
    leaked = lab.close()
    gc.collect()  # the dead incarnations' leftovers: their views' pins go with them
    after = kernel.heap.stats().live_objects
    held = kernel.heap.stats().held_objects
    return {
        "seconds": seconds,
        "domains": [row.__dict__ for row in rows],
        "drivers": drivers,
        **stats,
        "crashes": {r.name: r.crashes for r in rows},
        "restarts": {r.name: r.restarts for r in rows},
        **counts,
        "lost_writes": sum(d["lost_writes"] for d in drivers.values()),
        "leaked_objects": leaked["objects"],
        "heap_live_before": baseline,
        "heap_live_after": after,
        "heap_held_after": held,
        "files": files,
        "calls": call_rows,
    }


# what went wrong in a driver's recovery, when something did (shown in the summary)
INCIDENTS = ("shadow-gave-up", "shadow-restart-failed", "load-failed", "reclaim-hook-failed",
             "quiesce-failed")


def _driver_summary(workload: Any, sampler: Any, kernel: Any, elapsed: float
                    ) -> dict[str, Any]:
    check = workload.check()
    incidents = kernel.events.history(INCIDENTS, workload.domain)
    incidents += [e for e in kernel.events.history({"subscriber-error"})]
    c = sampler.counters.get(workload.domain)
    times = np.asarray(c.recovery_ms if c else [], dtype=np.float64)
    return {
        "unit": workload.unit,
        "throughput_mbps": workload.bytes_done / elapsed / 1e6,
        "iops": workload.ops_done / elapsed,  # operations/s: I/Os, or frames for a NIC
        "crashes": kernel.crashes(workload.domain),
        "restarts": kernel.restarts(workload.domain),
        "recoveries": c.recoveries if c else 0,
        "recovery_ms_p50": float(np.percentile(times, 50)) if times.size else None,
        "recovery_ms_p99": float(np.percentile(times, 99)) if times.size else None,
        "lost_writes": check["lost_writes"],
        "dropped_in_crashes": check.get("dropped_in_crashes", 0),
        "wrong_reads": check["wrong_reads"],
        "bad_blocks": check.get("bad_blocks", 0),
        "errors": workload.errors,
        "last_error": workload.last_error,  # what the workload saw last ("" when none)
        "incidents": [str(e) for e in incidents[-5:]],  # failed recoveries, the latest last
    }


def _write_outputs(sampler: Any, out: str | Path, call_rows: dict[str, Any] | None
                   ) -> dict[str, str]:
    from .dashboards.live import save_html

    folder = Path(out)
    html_path = save_html(sampler, folder / "dashboard.html", calls=call_rows)
    files = {"html": str(html_path)}
    png = screenshot(html_path, folder / "dashboard.png")
    if png is not None:
        files["png"] = str(png)
    return files


def chromium() -> str | None:
    """The system chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html_path: Path, png_path: Path, size: str = "1200,900") -> Path | None:
    """Render `html_path` with headless chromium into `png_path`; None without chromium."""
    browser = chromium()
    if browser is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               f"--window-size={size}", "--virtual-time-budget=5000", "--hide-scrollbars",
               f"--screenshot={png_path.resolve()}", html_path.resolve().as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return png_path if png_path.exists() and png_path.stat().st_size > 0 else None


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"RedLeaf Lab demo: {result['seconds']:g} s", ""]
    lines.append(f"{'domain':<12}{'state':<10}{'calls':>9}{'crashes':>9}{'restarts':>10}")
    for row in result["domains"]:
        lines.append(f"{row['name']:<12}{row['state']:<10}{row['calls']:>9}"
                     f"{row['crashes']:>9}{row['restarts']:>10}")
    lines += ["", f"{'driver':<10}{'MB/s':>9}{'kops/s':>9}{'crashes':>9}{'restarts':>10}"
              f"{'p50 ms':>9}{'p99 ms':>9}{'lost writes':>13}{'wrong reads':>13}"]
    for name, d in result["drivers"].items():
        p50, p99 = d["recovery_ms_p50"], d["recovery_ms_p99"]
        lines.append(f"{name:<10}{d['throughput_mbps']:>9.1f}{d['iops'] / 1e3:>9.1f}"
                     f"{d['crashes']:>9}{d['restarts']:>10}"
                     f"{'-' if p50 is None else f'{p50:.2f}':>9}"
                     f"{'-' if p99 is None else f'{p99:.2f}':>9}{d['lost_writes']:>13}"
                     f"{d['wrong_reads']:>13}")
    for name, d in result["drivers"].items():  # a recovery that failed says why
        if d["errors"]:
            lines.append(f"{name}: {d['errors']} error(s) reached the workload; last: "
                         f"{d['last_error'] or '-'}")
            lines.extend(f"  {incident}" for incident in d["incidents"])
    net = result["drivers"].get("ixgbe")
    if net is not None:
        lines.append(f"ixgbe: {net['iops'] / 1e6:.3f} Mpps of 64-byte frames; frames in "
                     f"flight dropped in crashes: {net.get('dropped_in_crashes', 0)}; "
                     f"frames the sink found wrong: {net['wrong_reads']}")
    lines += [
        "",
        f"puts {result['puts']}, gets {result['gets']}, verified reads {result['verified']}, "
        f"wrong results {result['wrong']}",
        f"RpcErrors seen by the root program: {result['kv_rpc_errors']} "
        f"(blocks lost with the crashed store: {result['lost_on_crash']}; "
        "a shadow would keep them)",
        f"reclaimed on crashes/stops: {result['reclaimed_objects']} objects, "
        f"{result['reclaimed_bytes'] / 1024:.0f} KiB; threads unwound: "
        f"{result['unwound_threads']}",
        f"leak check: {result['leaked_objects']} objects owned by dead domains; heap live "
        f"objects {result['heap_live_before']} before boot, {result['heap_live_after']} after "
        f"({result['heap_held_after']} freed objects still pinned by views)",
    ]
    for kind, path in result.get("files", {}).items():
        lines.append(f"{kind}: {path}")
    return "\n".join(lines)


def print_progress(line: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
