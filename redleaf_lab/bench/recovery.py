"""`redleaf-lab bench recovery`: block I/O through a shadow while the driver panics every second.

The paper's experiment (OSDI '20, section 5): sequential 4 KiB block reads, then
writes, through the shadow to the block driver, batched, in long stretches with a panic
every second, interleaved with clean stretches of the same length. In a faulted stretch
the driver is armed to panic at its next call (`kernel.faults.next_call`: inside the
driver, after the batch moved in) at 0.5 s, 1.5 s, ... into the stretch: exactly one
panic per faulted second, and the count is checked against the crash events. Stretches
come in ABBA order (clean, faulted, faulted, clean, ...) so that a drift of this VM's
speed weighs on both conditions alike. Each condition reports total bytes over total
time (not a median of ratios), and a throughput timeline sampled every 10 ms with the
crash instants marked. Here the driver is `drivers/membdev` over a `MemStore` (the
paper used an NVMe disk), so the figures measure the software path.

`measure(seconds, batch, stretches=2, panic_every=1.0)`: `seconds` of each condition
per operation, in `stretches` stretches of whole panic periods. It returns the
JSON-ready dict: read_mbps, read_crash_mbps, read_ratio, read_panics,
read_faulted_periods (and the same for write), crashes, recovery_ms_p50/p99, the
`timeline` (per operation, the stretches: condition, start_s, seconds, mbps every
`sample_s`, crash_s), goals (each "met" or "MISSED"), method, batch, seconds,
block_size, device. `format_table(result)` renders it.

Ownership: the benchmark owns its requests (RRefs in the root domain) and hands them
over in deques; each call returns them in the collect deque. After a crash the shadow
retries with the rescued requests in new deques, which the loop simply continues with.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..devices.memstore import MemStore
from ..heap import BLOCK_SIZE, BlkReq, RRef, RRefDeque
from ..idl.shadow import ShadowPolicy, make_shadow
from ..kernel.events import Event
from ..kernel.kernel import Kernel, boot
from .goals import Goal, goal_lines, goals_json, method_lines

PAPER = {"read_mbps": 2164, "read_crash_mbps": 2062, "write_mbps": 423, "write_crash_mbps": 356}
GOALS = {"read_ratio": 0.97, "write_ratio": 0.95, "recovery_ms_p50": 2.0}
DEVICE = "membdev (in-memory)"
DEVICE_BLOCKS = 16384  # 64 MiB
SAMPLE_S = 0.010  # the paper's sampling interval
METHOD = """Same work in both conditions: sequential 4 KiB blocks through the same shadow
to the same driver, batch `batch`, reads then writes. Interleaved: stretches of whole
seconds, clean and faulted of the same lengths, in ABBA order (clean, faulted, faulted,
clean, ...). Faulted: the driver panics at its next call at 0.5 s, 1.5 s, ... into the
stretch, one panic per faulted second, counted from the crash events. MB/s = total
bytes / total time of all stretches of a condition; ratio = faulted / clean. Timeline:
MB/s in 10 ms bins per stretch, with the crash instants (JSON `timeline`). Recovery
time: from the panic to the first successful call (shadow statistics), p50 and p99 over
all panics."""


@dataclass
class Stretch:
    """One stretch of one condition."""

    condition: str  # "clean" or "faulted"
    start_s: float  # since the operation's first stretch began
    seconds: float = 0.0
    bytes: int = 0
    sample_s: float = SAMPLE_S
    mbps: list[float] = field(default_factory=list)  # one per 10 ms bin
    crash_s: list[float] = field(default_factory=list)  # since the stretch began


class _Io:
    """The sequential batched I/O loop: requests, deques and the next block."""

    def __init__(self, bdev: Any, batch: int, num_blocks: int) -> None:
        self.bdev, self.batch, self.num_blocks = bdev, batch, num_blocks
        self.requests = [RRef.new(BlkReq) for _ in range(batch)]
        for i, req in enumerate(self.requests):
            view = req.array()
            view["data"] = (i * 7 + 1) % 251
            del view
        self.submit = RRefDeque.new(BlkReq, batch)
        self.collect = RRefDeque.new(BlkReq, batch)
        self.next_block = 0

    def one_batch(self, write: bool) -> int:
        """One batch; returns the bytes done."""
        first = self.next_block
        self.next_block = (first + self.batch) % self.num_blocks
        self.submit.push_many(self.requests)
        self.submit.set("block", (first + np.arange(self.batch)) % self.num_blocks)
        _taken, self.submit, self.collect = self.bdev.submit_and_poll(self.submit,
                                                                      self.collect, write)
        self.requests = self.collect.pop_many()
        return len(self.requests) * BLOCK_SIZE


def _stretch(kernel: Kernel, io: _Io, write: bool, stretch: Stretch, periods: int,
             panic_every: float, crash_ns: list[int]) -> None:
    """Run one stretch of `periods` panic periods; fills `stretch` in."""
    faulted = stretch.condition == "faulted"
    step = round(stretch.sample_s * 1e9)
    crashes_before = len(crash_ns)
    t0 = time.monotonic_ns()
    end = t0 + round(periods * panic_every * 1e9)
    panic_at = [t0 + round((k + 0.5) * panic_every * 1e9) for k in range(periods)] if faulted \
        else []
    boundary, done, at_boundaries = t0 + step, 0, [0]
    try:
        while True:
            now = time.monotonic_ns()
            if panic_at and now >= panic_at[0]:
                panic_at.pop(0)
                kernel.faults.next_call("membdev")  # the very next call panics
            done_before = done
            done += io.one_batch(write)
            now = time.monotonic_ns()
            while boundary <= now and boundary <= end:
                at_boundaries.append(done_before)  # what was complete when the bin closed
                boundary += step
            if now >= end and not panic_at:
                break
    finally:
        kernel.faults.clear("membdev")
    stretch.seconds = (now - t0) / 1e9
    stretch.bytes = done
    stretch.mbps = [round(b / stretch.sample_s / 1e6, 1) for b in np.diff(at_boundaries)]
    stretch.crash_s = [round((t - t0) / 1e9, 4) for t in crash_ns[crashes_before:]]


def _periods(seconds: float, stretches: int, panic_every: float) -> list[int]:
    """Whole panic periods per stretch: `seconds` in all, over at most `stretches`."""
    total = max(1, round(seconds / panic_every))
    n = max(1, min(stretches, total))
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def measure(seconds: float = 5.0, batch: int = 32, stretches: int = 2,
            panic_every: float = 1.0) -> dict[str, Any]:
    """Reads then writes, each in clean and faulted stretches; see the module docstring."""
    if seconds <= 0 or batch <= 0 or stretches <= 0 or panic_every <= 0:
        raise ValueError("seconds, batch, stretches and panic_every must be positive")
    kernel = boot(heap_bytes=256 << 20)
    crash_ns: list[int] = []
    t0_ns = kernel.events.t0_ns

    def on_crash(event: Event) -> None:
        if event.domain == "membdev":
            crash_ns.append(t0_ns + event.ts_ns)

    kernel.events.subscribe(on_crash, kinds={"crash"})
    result: dict[str, Any] = {"timeline": {}}
    lengths = _periods(seconds, stretches, panic_every)
    try:
        store = MemStore(DEVICE_BLOCKS)
        kernel.load("membdev", store=store)
        shadow = make_shadow(kernel, "membdev",
                             ShadowPolicy(max_restarts=100, window_s=1.0, max_attempts=5))
        io = _Io(shadow, batch, DEVICE_BLOCKS)
        warm_end = time.monotonic() + min(0.2, seconds / 4)
        while time.monotonic() < warm_end:
            io.one_batch(False)
        for op, write in (("read", False), ("write", True)):
            timeline: list[Stretch] = []
            t_op = time.monotonic_ns()
            for i, periods in enumerate(lengths):
                order = ("clean", "faulted") if i % 2 == 0 else ("faulted", "clean")
                for condition in order:
                    stretch = Stretch(condition, round((time.monotonic_ns() - t_op) / 1e9, 4))
                    _stretch(kernel, io, write, stretch, periods, panic_every, crash_ns)
                    timeline.append(stretch)
            _summarise(result, op, timeline, sum(lengths))
        recoveries = np.asarray(list(shadow.shadow_stats.recovery_ns), dtype=np.float64) / 1e6
        result["crashes"] = kernel.crashes("membdev")
        del io, shadow
    finally:
        kernel.shutdown()
    result["recovery_ms_p50"] = float(np.percentile(recoveries, 50)) if recoveries.size else None
    result["recovery_ms_p99"] = float(np.percentile(recoveries, 99)) if recoveries.size else None
    result.update(batch=batch, seconds=seconds, stretch_periods=lengths,
                  panic_every_s=panic_every, block_size=BLOCK_SIZE, device=DEVICE,
                  sample_s=SAMPLE_S, method=METHOD)
    result["goals"] = goals_json(goals(result))
    return result


def _summarise(result: dict[str, Any], op: str, timeline: list[Stretch], periods: int) -> None:
    clean = [s for s in timeline if s.condition == "clean"]
    faulted = [s for s in timeline if s.condition == "faulted"]
    clean_mbps = sum(s.bytes for s in clean) / sum(s.seconds for s in clean) / 1e6
    crash_mbps = sum(s.bytes for s in faulted) / sum(s.seconds for s in faulted) / 1e6
    result[f"{op}_mbps"] = clean_mbps
    result[f"{op}_crash_mbps"] = crash_mbps
    result[f"{op}_ratio"] = crash_mbps / clean_mbps if clean_mbps else None
    result[f"{op}_panics"] = sum(len(s.crash_s) for s in faulted)
    result[f"{op}_faulted_periods"] = periods
    result["timeline"][op] = [asdict(s) for s in timeline]


def goals(result: dict[str, Any]) -> list[Goal]:
    """The goals, checked against a result (a measured one, or any dict of the same keys)."""
    out = [Goal("read_ratio>=0.97", "reads: faulted / clean MB/s", result.get("read_ratio"),
                GOALS["read_ratio"], ">="),
           Goal("write_ratio>=0.95", "writes: faulted / clean MB/s",
                result.get("write_ratio"), GOALS["write_ratio"], ">="),
           Goal("recovery_ms_p50<2", "recovery time p50 (ms)", result.get("recovery_ms_p50"),
                GOALS["recovery_ms_p50"], "<")]
    for op in ("read", "write"):
        periods = result.get(f"{op}_faulted_periods")
        every = result.get("panic_every_s", 1.0)
        out.append(Goal(f"{op}_panics==faulted_seconds",
                        f"{op}s: panics, one per faulted {every:g} s ({periods} periods)",
                        result.get(f"{op}_panics"), float(periods or 0), "=="))
    return out


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} ms"


def _crash_bins(stretches: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Median MB/s of the 10 ms bins holding a crash, and of the other faulted bins."""
    hit: list[float] = []
    rest: list[float] = []
    for s in stretches:
        if s["condition"] != "faulted":
            continue
        crash_bins = {int(t / s["sample_s"]) for t in s["crash_s"]}
        for i, mbps in enumerate(s["mbps"]):
            (hit if i in crash_bins else rest).append(mbps)
    return (float(np.median(hit)) if hit else None, float(np.median(rest)) if rest else None)


def _strip(stretch: dict[str, Any], per_char: int = 10) -> str:
    """The stretch's timeline, one character per `per_char` 10 ms bins; '!' holds a crash."""
    marks = " .:-=+*#%@"
    bins = np.asarray(stretch["mbps"], dtype=np.float64)
    chunks = [bins[i:i + per_char].mean() for i in range(0, len(bins), per_char)]
    top = max(chunks, default=0.0) or 1.0
    crashed = {int(t / stretch["sample_s"]) // per_char for t in stretch["crash_s"]}
    return "".join("!" if i in crashed else marks[min(9, int(9 * c / top + 0.5))]
                   for i, c in enumerate(chunks))


def format_table(result: dict[str, Any]) -> str:
    """The result as a small text table, with the paper's figures, the timelines, the
    method and the goals (each met or MISSED)."""
    by_name = {g.name: g for g in goals(result)}
    every = result.get("panic_every_s", 1.0)
    lengths = ", ".join(f"{n * every:g}" for n in result["stretch_periods"])
    lines = [
        f"recovery benchmark: {result['device']}, sequential {result['block_size'] // 1024} KiB "
        f"blocks, batch {result['batch']}, through a shadow; stretches of {lengths} s of "
        "each condition",
        f"{'':8}{'no faults':>14}{f'panic every {every:g} s':>18}{'ratio':>9}{'panics':>9}   "
        "paper (NVMe)",
    ]
    for op, label in (("read", "reads"), ("write", "writes")):
        paper = (f"{PAPER[f'{op}_mbps']} / {PAPER[f'{op}_crash_mbps']} MB/s "
                 f"({PAPER[f'{op}_crash_mbps'] / PAPER[f'{op}_mbps']:.0%})")
        ratio = result[f"{op}_ratio"]
        ratio_goal = by_name[f"{op}_ratio>={GOALS[f'{op}_ratio']:g}"]
        panics = f"{result[f'{op}_panics']}/{result[f'{op}_faulted_periods']}"
        lines.append(f"{label:8}{result[f'{op}_mbps']:>9.1f} MB/s"
                     f"{result[f'{op}_crash_mbps']:>13.1f} MB/s"
                     f"{'n/a' if ratio is None else f'{ratio:.1%}':>9}{panics:>9}   {paper}"
                     f"   ratio {ratio_goal.status}, panics "
                     f"{by_name[f'{op}_panics==faulted_seconds'].status}")
    lines.append(f"crashes: {result['crashes']}; recovery (panic -> first successful call): "
                 f"p50 {_ms(result['recovery_ms_p50'])}, p99 {_ms(result['recovery_ms_p99'])}")
    lines.append("timeline (one character per 100 ms, '!' = a crash; 10 ms samples in the "
                 "JSON):")
    for op, stretches in result.get("timeline", {}).items():
        for s in stretches:
            lines.append(f"  {op:5} {s['condition']:7} {s['start_s']:6.2f} s  |{_strip(s)}|")
        hit, rest = _crash_bins(stretches)
        if hit is not None:
            lines.append(f"  {op}: median of the 10 ms bins holding a crash {hit:.0f} MB/s, "
                         f"of the other faulted bins {rest or 0:.0f} MB/s")
    lines += ["", *method_lines(METHOD), "", *goal_lines(by_name.values())]
    return "\n".join(lines)
