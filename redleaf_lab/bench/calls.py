"""`redleaf-lab bench calls`: the cost of a cross-domain call (RedLeaf's Table 1).

Rows, all measured in one process run, each the median of `runs` timed loops:

    plain_ns              a plain Python method call on an object
    proxy_ns              a proxied call into the `echo` domain: ping(int) -> int
    proxy_rref_move_ns    a proxied call that moves an RRef in and back out: echo(RRef)
    proxy_rref_borrow_ns  a proxied call that borrows an RRef for the call: peek(&RRef)
    shadow_ns             ping through a shadow of the echo domain (idl.shadow)
    shadow_rref_ns        echo(RRef) through the shadow
    thread_queue_ns       a round trip to a worker thread over two queue.SimpleQueue
    mp_pipe_ns            a round trip to a worker process over multiprocessing.Pipe
    python_*_ns           the proxy, move, borrow and shadow rows again through the
                          reference Python proxy of the same incarnation (issue 14)

The unprefixed proxy rows use the compiled call gate (idl.gates, the kernel's default)
where it is built, else the Python proxies; `proxies` in the JSON says which.

Times are per iteration of a `for` loop and include the loop's own cost, which
is reported as `loop_ns`. The rows are interleaved: each of `runs` rounds times every
row once, so a drift of this VM's speed weighs on all rows alike; a row is the median
of its rounds, and ratios are taken between rows of the same run. `METHOD` says so in
the output, and `goals(rows)` checks the goals (`GOALS`), each flagged met or MISSED in
the table and in the JSON (`rows["goals"]`). The paper's figures (cycles on its 2.6 GHz
Xeon E5-2660 v3) are given for comparison, and in ns at 2.6 GHz: seL4 834 (321 ns),
RedLeaf 124 (48 ns), RedLeaf + RRef 141 (54 ns), RedLeaf shadow 279 (107 ns).
"""

from __future__ import annotations

import multiprocessing
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from ..heap import Block, RRef
from ..idl import gates
from ..idl.proxy import make_proxy
from ..idl.shadow import make_shadow
from ..kernel.kernel import boot
from .goals import Goal, goal_lines, goals_json, method_lines
from .reference import reference_targets

PAPER_CYCLES = {"seL4": 834, "VMFUNC": 169, "RedLeaf": 124, "RedLeaf+RRef": 141,
                "RedLeaf shadow": 279}
PAPER_GHZ = 2.6
PAPER_NS = {k: round(v / PAPER_GHZ, 1) for k, v in PAPER_CYCLES.items()}
# issue 14's goals, for the default (compiled gate) rows
GOALS = {
    "proxy_over_plain": 2.0,  # proxy_ns <= 2 x plain_ns
    "move_over_proxy": 1.3,  # proxy_rref_move_ns <= 1.3 x proxy_ns
    "borrow_over_proxy": 1.3,  # proxy_rref_borrow_ns <= 1.3 x proxy_ns
    "mp_pipe_over_proxy": 300.0,  # mp_pipe_ns >= 300 x proxy_ns
    "shadow_over_proxy": 1.5,  # shadow_ns <= 1.5 x proxy_ns (RedLeaf: 279 vs 124 cycles)
    "shadow_rref_over_proxy_rref": 1.5,  # shadow_rref_ns <= 1.5 x proxy_rref_move_ns
}
PYTHON_ROWS = ("proxy_ns", "proxy_rref_move_ns", "proxy_rref_borrow_ns", "shadow_ns",
               "shadow_rref_ns")
METHOD = """Same work per row: every proxied row calls the same `echo` domain (ping(int), or
echo/peek of one 4 KiB RRef), the shadow rows a shadow of it, the plain row the same
method on a plain object; the thread and process rows do a round trip of one int.
Interleaved: each of `runs` rounds times every row once (a loop of `iterations` calls,
`slow_iterations` for the thread and pipe rows); ns per call is the median of a row's
rounds, loop overhead included (loop_ns); ratios are between rows of this run."""


class _Plain:
    def ping(self, x: int) -> int:
        return x


def _time_loop(body: Callable[[int], None], iterations: int) -> float:
    t0 = time.perf_counter_ns()
    body(iterations)
    return (time.perf_counter_ns() - t0) / iterations


def _interleaved(loops: dict[str, tuple[Callable[[int], None], int]], runs: int
                 ) -> dict[str, float]:
    """ns per iteration of each loop: `runs` rounds, every loop once per round, median."""
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _round in range(runs):
        for name, (body, iterations) in loops.items():
            samples[name].append(_time_loop(body, iterations))
    return {name: statistics.median(values) for name, values in samples.items()}


def _pipe_worker(conn: Any) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(msg)


def measure(iterations: int = 200_000, slow_iterations: int = 2_000, runs: int = 7
            ) -> dict[str, Any]:
    """Run every row; returns the JSON-ready result."""
    kernel = boot(heap_bytes=64 << 20, proxies="gate" if gates.available() else "python")
    proxies = kernel.proxies
    try:
        echo = kernel.load("echo")
        plain = _Plain()
        block = [RRef.new(Block)]

        def loop_empty(n: int) -> None:
            for _ in range(n):
                pass

        def loop_plain(n: int) -> None:
            f = plain
            for _ in range(n):
                f.ping(1)

        def loop_proxy(n: int) -> None:
            p = echo
            for _ in range(n):
                p.ping(1)

        def loop_move(n: int) -> None:
            p, b = echo, block[0]
            for _ in range(n):
                b = p.echo(b)
            block[0] = b

        def loop_borrow(n: int) -> None:
            p, b = echo, block[0]
            for _ in range(n):
                p.peek(b)

        shadow = make_shadow(kernel, "echo")

        def loop_shadow(n: int) -> None:
            s = shadow
            for _ in range(n):
                s.ping(1)

        def loop_shadow_move(n: int) -> None:
            s, b = shadow, block[0]
            for _ in range(n):
                b = s.echo(b)
            block[0] = b

        # the reference Python proxy of the same incarnation, and a shadow crossing it
        domain = kernel.domain("echo")
        py_echo = make_proxy(domain.interface, domain, domain.impl, proxies="python")
        py_shadow = reference_targets(kernel, "echo")[1] if proxies == "gate" else shadow
        py_loops = {
            "python_proxy_ns": _proxy_loop(py_echo),
            "python_proxy_rref_move_ns": _move_loop(py_echo, block),
            "python_proxy_rref_borrow_ns": _borrow_loop(py_echo, block),
            "python_shadow_ns": _proxy_loop(py_shadow),
            "python_shadow_rref_ns": _move_loop(py_shadow, block),
        }

        with ExitStack() as stack:
            loop_thread = stack.enter_context(_thread_queue())
            loop_pipe = stack.enter_context(_mp_pipe())
            rows: dict[str, Any] = _interleaved({
                "loop_ns": (loop_empty, iterations),
                "plain_ns": (loop_plain, iterations),
                "proxy_ns": (loop_proxy, iterations),
                "proxy_rref_move_ns": (loop_move, iterations),
                "proxy_rref_borrow_ns": (loop_borrow, iterations),
                "shadow_ns": (loop_shadow, iterations),
                "shadow_rref_ns": (loop_shadow_move, iterations),
                "thread_queue_ns": (loop_thread, slow_iterations),
                "mp_pipe_ns": (loop_pipe, slow_iterations),
                **{name: (loop, iterations) for name, loop in py_loops.items()},
            }, runs)
        del block[:]
    finally:
        leaked = kernel.shutdown()
    plain_ns = rows["plain_ns"]
    for key in ("proxy_ns", "proxy_rref_move_ns", "proxy_rref_borrow_ns", "shadow_ns",
                "shadow_rref_ns", "thread_queue_ns", "mp_pipe_ns"):
        rows[key.replace("_ns", "_ratio")] = rows[key] / plain_ns
    ratios = {
        "proxy_over_plain": rows["proxy_ns"] / plain_ns,
        "move_over_proxy": rows["proxy_rref_move_ns"] / rows["proxy_ns"],
        "borrow_over_proxy": rows["proxy_rref_borrow_ns"] / rows["proxy_ns"],
        "mp_pipe_over_proxy": rows["mp_pipe_ns"] / rows["proxy_ns"],
        "shadow_over_proxy": rows["shadow_ns"] / rows["proxy_ns"],
        "shadow_rref_over_proxy_rref": rows["shadow_rref_ns"] / rows["proxy_rref_move_ns"],
        "thread_queue_over_proxy": rows["thread_queue_ns"] / rows["proxy_ns"],
    }
    for key in PYTHON_ROWS:
        rows["python_" + key.replace("_ns", "_ratio")] = rows["python_" + key] / plain_ns
    ratios.update({
        "python_proxy_over_plain": rows["python_proxy_ns"] / plain_ns,
        "python_move_over_proxy": rows["python_proxy_rref_move_ns"] / rows["python_proxy_ns"],
        "python_borrow_over_proxy": rows["python_proxy_rref_borrow_ns"]
        / rows["python_proxy_ns"],
        "python_shadow_over_proxy": rows["python_shadow_ns"] / rows["python_proxy_ns"],
        "gate_speedup": rows["python_proxy_ns"] / rows["proxy_ns"],
    })
    rows.update(ratios)
    rows["proxies"] = proxies
    rows["goals"] = goals_json(goals(rows))
    rows["method"] = METHOD
    rows["iterations"] = iterations
    rows["slow_iterations"] = slow_iterations
    rows["runs"] = runs
    rows["leaked_objects"] = leaked["objects"]
    rows["paper_cycles"] = PAPER_CYCLES
    rows["paper_ns_at_2_6_ghz"] = PAPER_NS
    return rows


def _proxy_loop(p: Any) -> Callable[[int], None]:
    def loop(n: int) -> None:
        for _ in range(n):
            p.ping(1)
    return loop


def _move_loop(p: Any, block: list[Any]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        b = block[0]
        for _ in range(n):
            b = p.echo(b)
        block[0] = b
    return loop


def _borrow_loop(p: Any, block: list[Any]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        b = block[0]
        for _ in range(n):
            p.peek(b)
    return loop


_GOAL_TEXT = {
    "proxy_over_plain": ("proxy call / plain call", "<="),
    "move_over_proxy": ("proxy call moving an RRef / proxy call", "<="),
    "borrow_over_proxy": ("proxy call borrowing an RRef / proxy call", "<="),
    "mp_pipe_over_proxy": ("multiprocessing.Pipe round trip / proxy call", ">="),
    "shadow_over_proxy": ("shadow call / proxy call", "<="),
    "shadow_rref_over_proxy_rref": ("shadow call moving an RRef / proxy call moving one",
                                    "<="),
}


def _goal_name(key: str) -> str:
    return f"{key}{_GOAL_TEXT[key][1]}{GOALS[key]:g}"


def goals(rows: dict[str, Any]) -> list[Goal]:
    """The goals, checked against a result (a measured one, or any dict of the same keys)."""
    return [Goal(_goal_name(key), text, rows.get(key), GOALS[key], cmp)
            for key, (text, cmp) in _GOAL_TEXT.items()]


@contextmanager
def _thread_queue() -> Iterator[Callable[[int], None]]:
    """A loop of round trips to a worker thread over two queue.SimpleQueue."""
    requests: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    replies: queue.SimpleQueue[int] = queue.SimpleQueue()

    def worker() -> None:
        while True:
            msg = requests.get()
            if msg is None:
                return
            replies.put(msg)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()

    def loop(n: int) -> None:
        for _ in range(n):
            requests.put(1)
            replies.get()

    try:
        yield loop
    finally:
        requests.put(None)
        thread.join(timeout=5)


@contextmanager
def _mp_pipe() -> Iterator[Callable[[int], None]]:
    """A loop of round trips to a worker process over multiprocessing.Pipe."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_pipe_worker, args=(child,), daemon=True)
    proc.start()

    def loop(n: int) -> None:
        for _ in range(n):
            parent.send(1)
            parent.recv()

    try:
        loop(100)  # warm up: the worker is running
        yield loop
    finally:
        parent.send(None)
        proc.join(timeout=5)


def format_table(rows: dict[str, Any]) -> str:
    flags = {g.name: f"{g.status}" for g in goals(rows)}
    lines = [
        "Cross-domain call cost (ns per call, median of "
        f"{rows['runs']} interleaved rounds; loop overhead {rows['loop_ns']:.1f} ns included)",
        f"unprefixed rows: {rows.get('proxies', 'gate')} proxies; python_* rows: the reference "
        "Python proxy, same run",
        f"{'row':<30}{'ns':>10}{'x plain':>10}",
    ]
    keys = ["plain_ns", "proxy_ns", "proxy_rref_move_ns", "proxy_rref_borrow_ns",
            "shadow_ns", "shadow_rref_ns", *("python_" + k for k in PYTHON_ROWS),
            "thread_queue_ns", "mp_pipe_ns"]
    for key in keys:
        if key in rows:
            ratio = rows[key] / rows["plain_ns"]
            lines.append(f"{key:<30}{rows[key]:>10.1f}{ratio:>10.1f}")
    lines.append("")
    for key in _GOAL_TEXT:
        name = _goal_name(key)
        lines.append(f"{key:<28} = {rows[key]:8.2f}  (goal {name[len(key):]})  {flags[name]}")
    if "python_proxy_over_plain" in rows:
        lines.append(f"python proxy / plain        = {rows['python_proxy_over_plain']:8.2f}   "
                     f"python move / proxy = {rows['python_move_over_proxy']:.2f}   "
                     f"python shadow / proxy = {rows['python_shadow_over_proxy']:.2f}")
        lines.append(f"python proxy / gate         = {rows['gate_speedup']:8.2f}")
    lines.append("paper (cycles at 2.6 GHz -> ns): " + ", ".join(
        f"{k} {PAPER_CYCLES[k]} ({PAPER_NS[k]:.0f} ns)" for k in PAPER_CYCLES)
        + "; RRef/proxy = 1.14, shadow/proxy = 2.25")
    lines.append(f"leaked heap objects: {rows['leaked_objects']}")
    lines += ["", *method_lines(METHOD), "", *goal_lines(goals(rows))]
    return "\n".join(lines)
