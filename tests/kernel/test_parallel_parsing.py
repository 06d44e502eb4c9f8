"""The kernel's parses from many threads at once never trip CPython's shared AST counter.

CPython 3.11 counts the depth of its AST conversions in state that all threads share; a
finalizer run by the garbage collector in the middle of a conversion lets another thread
convert too, and one of them fails with `SystemError: AST constructor recursion depth
mismatch` (gh-106905). Without the kernel's lock (kernel/safety/parsing.py) this test's
set-up reproduces it within a second on this machine (3 of 4 threads failed); with it,
every check passes.
"""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

from redleaf_lab.interfaces.bench import Echo
from redleaf_lab.kernel import loader, safety

DOMAIN_SOURCE = Path(__file__).parents[2] / "domains" / "netstack" / "tcp.py"  # a large domain file


class Finalized:
    """Garbage in cycles whose finalizer runs Python code: a thread switch point."""

    def __del__(self) -> None:
        _ = [i for i in range(5)]


def churn() -> None:
    for _ in range(40):
        a, b = Finalized(), Finalized()
        a.other, b.other = b, a  # type: ignore[attr-defined]


def test_many_threads_check_and_load_sources_at_once() -> None:
    source = DOMAIN_SOURCE.read_text()
    echo_source = "class E:\n    def ping(self, x):\n        return x\n\n\ndef init(ctx):\n    return E()\n"
    failures: list[str] = []
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(10, 1, 1)
    sys.setswitchinterval(1e-6)

    def worker(index: int) -> None:
        try:
            for round_ in range(15):
                churn()
                safety.check_source(source, "tcp.py")
                # distinct text each time: image_from_sources caches compiled code by text
                loader.image_from_sources(f"e{index}", {"e": echo_source + f"# {index}.{round_}\n"},
                                          "e", Echo, {}, origin=f"parallel/{index}")
        except SystemError as exc:
            failures.append(f"thread {index}: {exc}")

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
    assert failures == []
