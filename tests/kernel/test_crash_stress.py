"""1,000 random crashes, synchronous and asynchronous, with calls in flight on two threads.

Afterwards the registry is back to its baseline: nothing leaked, nothing freed
twice (live == allocs - frees), every crash was followed by a reclaim, and no thread
was left with a stale continuation. It runs on the default proxies: the compiled call
gate where it is built (asynchronous panics then land while threads are inside gates,
moving RRefs in C), else the generated Python proxies.
"""

from __future__ import annotations

import gc
import random
import threading
import time

from redleaf_lab import Block, RpcError, RRef
from redleaf_lab.kernel.context import ROOT, thread_state

CRASHES = 1000


def _worker(kernel, seed: int, stop: threading.Event, calls: list[int],
            stacks: list[list[str]]) -> None:
    rng = random.Random(seed)
    try:
        _work(kernel, rng, stop, calls)
    finally:
        stacks.append([entry.name for entry in thread_state().stack])


def _work(kernel, rng: random.Random, stop: threading.Event, calls: list[int]) -> None:
    while not stop.is_set():
        try:
            proxy = kernel.proxy("hoarder")
            op = rng.randrange(3)
            if op == 0:
                proxy.put(RRef.new(Block, rng.randrange(256)))
            elif op == 1:
                proxy.churn(rng.randrange(1, 30))
            else:
                proxy.allocate(rng.randrange(1, 5))
            calls[0] += 1
        except RpcError:
            time.sleep(0)


def _wait_crashed(domain, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while domain.state == "running":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    return True


def test_thousand_random_crashes_leave_the_registry_at_baseline(kernel, domains):
    rng = random.Random(20261123)
    baseline = kernel.heap.stats()
    kernel.load(domains / "hoarder")
    stop = threading.Event()
    calls = [0]
    stacks: list[list[str]] = []
    workers = [threading.Thread(target=_worker, args=(kernel, seed, stop, calls, stacks))
               for seed in (1, 2)]
    for t in workers:
        t.start()
    modes = {"async": 0, "next_call": 0, "after": 0}
    try:
        for _ in range(CRASHES):
            domain = kernel.domain("hoarder")
            choice = rng.random()
            if choice < 0.5:
                time.sleep(rng.random() * 0.001)  # land at a random point
                modes["async"] += 1
                kernel.panic("hoarder")
            elif choice < 0.75:
                modes["next_call"] += 1
                kernel.faults.next_call("hoarder")
            else:
                modes["after"] += 1
                kernel.faults.after("hoarder", rng.randrange(2, 6))
            assert _wait_crashed(domain), "the armed fault never fired"
            assert kernel.wait_unwound(domain, timeout=5)
            kernel.faults.clear("hoarder")
            kernel.restart("hoarder")
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=10)
    assert not any(t.is_alive() for t in workers)
    assert stacks == [[ROOT.name], [ROOT.name]], "a thread kept a stale continuation"
    assert thread_state().stack == [ROOT]
    gate_proxy = type(type(kernel.proxy("hoarder")).__dict__["put"]).__name__ == "gate"
    assert gate_proxy == (kernel.proxies == "gate")
    assert kernel.crashes("hoarder") == CRASHES
    assert calls[0] > 0 and min(modes.values()) > 100
    reclaims = kernel.events.history({"reclaim"}, "hoarder")
    assert len(reclaims) == CRASHES
    kernel.stop("hoarder")
    stats = kernel.heap.stats()
    assert stats.live_objects == baseline.live_objects, "heap objects leaked"
    assert stats.live_bytes == baseline.live_bytes
    assert stats.total_allocs - stats.total_frees == stats.live_objects  # no double free
    dead_owned = [e for e in kernel.heap.entries() if e.owner not in (0, 1)]
    assert dead_owned == []
    gc.collect()  # the dead incarnations' state (and the views it kept) is garbage now
    assert kernel.heap.stats().held_objects == 0, "reclaimed memory still held by views"
