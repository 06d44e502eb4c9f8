"""Shadows that give up leak nothing: many callers, the default policy, a stream of crashes.

Issue 12, item 2, as a user met it: eight threads submit batches of requests to membdev
through one shadow with the default `ShadowPolicy`, while faults trip at calls and a
panicker crashes the driver asynchronously (and sometimes restarts it). The restart limit
is hit again and again, so many calls give up, some of them while the crash that
interrupted them is still being handled. Afterwards, with every handle dropped, the heap
is back at its baseline and the leak check finds nothing. (Before the fix, a five-second
run left a few hundred `BlkReq`s owned by root with no handle, and `shutdown()` said 0.)
The deterministic form of the same race is in test_rescue.py.
"""

from __future__ import annotations

import gc
import random
import sys
import threading
import time

from redleaf_lab import RpcError
from redleaf_lab.devices import MemStore
from redleaf_lab.heap import BlkReq, RRef, RRefDeque
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow
from redleaf_lab.kernel.kernel import Kernel
from redleaf_lab.kernel.leaks import find_leaks

BLOCKS = 64
CRASHES = 200
GIVE_UPS = 50


def _caller(shadow, seed: int, stop: threading.Event, failures: list[str]) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        submit = RRefDeque.new(BlkReq, 32)
        refs = []
        for block in rng.sample(range(BLOCKS), 16):
            ref = RRef.new(BlkReq)
            view = ref.array()
            view["block"] = block
            del view
            refs.append(ref)
        submit.push_many(refs)
        del refs
        try:
            shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), rng.random() < 0.5)
        except RpcError:
            pass
        except Exception as exc:  # anything else is a bug the test reports
            failures.append(repr(exc))


def _panicker(kernel: Kernel, stop: threading.Event) -> None:
    rng = random.Random(5)
    while not stop.is_set():
        time.sleep(rng.random() * 0.004)
        kernel.panic("membdev")
        if kernel.domain("membdev").state == "crashed" and rng.random() < 0.3:
            try:
                kernel.restart("membdev")
            except Exception:  # a shadow restarted it first
                pass


def test_callers_that_give_up_leave_no_request_behind(kernel: Kernel) -> None:
    baseline = kernel.heap.stats().live_objects
    kernel.load("membdev", store=MemStore(BLOCKS))
    shadow = make_shadow(kernel, "membdev", ShadowPolicy())
    kernel.faults.probability("membdev", 0.02, seed=3)
    stop = threading.Event()
    failures: list[str] = []
    threads = [threading.Thread(target=_caller, args=(shadow, seed, stop, failures))
               for seed in range(8)]
    threads.append(threading.Thread(target=_panicker, args=(kernel, stop)))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # many more thread switches: more interleavings
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120.0  # against a hang only
    try:
        while (kernel.crashes("membdev") < CRASHES
               or shadow.shadow_stats.gave_up < GIVE_UPS):
            assert time.monotonic() < deadline, "not enough crashes and give-ups"
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10.0)
        sys.setswitchinterval(switch)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    kernel.faults.clear("membdev")
    assert shadow.shadow_stats.recoveries > 0
    kernel.stop("membdev")  # (if it runs) its own objects go too
    gc.collect()
    left = kernel.heap.stats().live_objects - baseline
    assert left == 0, f"{left} objects leaked"
    assert find_leaks(kernel.heap).objects == 0
    assert kernel.shutdown() == {"objects": 0, "bytes": 0}
