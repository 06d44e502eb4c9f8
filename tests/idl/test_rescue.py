"""Shadows rescue the requests a crashed driver held, instead of copying them per call.

A `midcrash` driver (tests/support/domains) panics holding half of a batch's requests and
owning the deque with the other half. The shadow's reclaim hook takes every request back
before the heap is reclaimed (`CoreHeap.rescue`), and the retry carries the SAME request
objects (same registry ids: nothing was copied) in the same order, with their data.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from redleaf_lab import RpcError
from redleaf_lab.devices import MemStore
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, RRef, RRefDeque
from redleaf_lab.idl.recovery import NotRecoverable, Rescue
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow


class Trip:
    """Fires on the calls whose numbers (1-based) it was given; outlives incarnations."""

    def __init__(self, *crashing_calls: int) -> None:
        self.crashing = set(crashing_calls)
        self.calls = 0

    def fire(self) -> bool:
        self.calls += 1
        return self.calls in self.crashing


def requests(blocks: list[int], fill: int | None = None) -> tuple[RRefDeque, list[int]]:
    submit = RRefDeque.new(BlkReq, 32)
    refs = []
    for block in blocks:
        ref = RRef.new(BlkReq)
        view = ref.array()
        view["block"] = block
        view["data"] = block if fill is None else fill
        del view
        refs.append(ref)
    ids = [r.id for r in refs]
    submit.push_many(refs)
    return submit, ids


@pytest.fixture
def store() -> MemStore:
    return MemStore(64)


def test_a_mid_batch_crash_retries_the_same_requests_in_order(kernel, domains, store):
    baseline = kernel.heap.stats().live_objects
    kernel.load(domains / "midcrash", store=store, trip=Trip(1))
    shadow = make_shadow(kernel, "midcrash", ShadowPolicy(backoff_s=0.0))
    blocks = [9, 3, 40, 7, 22, 1]
    submit, ids = requests(blocks)
    taken, submit, collect = shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), True)
    assert kernel.crashes("midcrash") == 1 and shadow.shadow_stats.recoveries == 1
    assert taken == len(blocks) and len(submit) == 0
    done = collect.pop_many()
    assert [r.id for r in done] == ids  # the very same objects: rescued, not rebuilt
    assert [int(r.readonly()["block"]) for r in done] == blocks
    assert [int(r.readonly()["data_len"]) for r in done] == [BLOCK_SIZE] * len(blocks)
    for block in blocks:  # every write reached the store, with its own data
        assert (store.snapshot()[block] == block).all()
    rescues = kernel.events.history({"shadow-rescue"}, "midcrash")
    assert [e.data["requests"] for e in rescues] == [len(blocks)]
    del done, submit, collect
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline  # nothing leaked, nothing lost
    kernel.stop("midcrash")


def test_rescued_reads_return_fresh_data_after_repeated_crashes(kernel, domains, store):
    snapshot = np.arange(64, dtype=np.uint8)[:, None].repeat(BLOCK_SIZE, axis=1)
    store.write_many(np.arange(64), snapshot)
    kernel.load(domains / "midcrash", store=store, trip=Trip(1, 2, 3))
    shadow = make_shadow(kernel, "midcrash", ShadowPolicy(backoff_s=0.0))
    blocks = list(range(10, 30))
    submit, ids = requests(blocks, fill=0xEE)
    taken, submit, collect = shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), False)
    assert kernel.crashes("midcrash") == 3 and taken == len(blocks)
    done = collect.pop_many()
    assert [r.id for r in done] == ids
    for block, req in zip(blocks, done, strict=True):
        assert (req.readonly()["data"] == block).all()


def test_a_request_the_driver_destroyed_is_reported_not_invented(kernel, domains, store):
    """If a request is gone (here: its id is stale), the retry cannot be rebuilt without
    inventing data: the caller gets RpcError naming the lost request."""
    rule = Rescue("submit_and_poll", 0, 1)
    submit, _ = requests([1, 2])
    kept = rule.keep((submit, RRefDeque.new(BlkReq, 4), True))
    assert kept is not None
    lost = RRefDeque.new(BlkReq, 4)  # stands for a deque that moved into a dead driver
    lost._id = 0
    submit.pop_many()  # the requests are dropped: their ids go stale
    with pytest.raises(NotRecoverable, match="was lost in the crash"):
        rule.rebuild((lost, RRefDeque.new(BlkReq, 4), True), kept)


def test_the_retry_fails_cleanly_when_the_shadow_gives_up(kernel, domains, store):
    kernel.load(domains / "midcrash", store=store, trip=Trip(*range(1, 100)))
    shadow = make_shadow(kernel, "midcrash", ShadowPolicy(max_attempts=3, backoff_s=0.0))
    baseline = kernel.heap.stats().live_objects
    submit, _ = requests([1, 2, 3])
    with pytest.raises(RpcError, match="gave up"):
        shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), True)
    del submit
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline  # rescued requests were not leaked


def test_a_restart_that_fails_unexpectedly_is_a_give_up_not_a_leak(kernel, domains, store,
                                                                   monkeypatch):
    """Whatever breaks during recovery (here the restart itself raises an error that is
    not a load failure), the caller gets RpcError naming it, and the requests rescued for
    the call are freed: they belong to the caller, but no handle of it reaches them."""
    kernel.load(domains / "midcrash", store=store, trip=Trip(1))
    shadow = make_shadow(kernel, "midcrash", ShadowPolicy(backoff_s=0.0))
    baseline = kernel.heap.stats().live_objects

    def broken_restart(name: str) -> None:
        raise MemoryError("no room for a new incarnation")

    monkeypatch.setattr(kernel, "restart", broken_restart)
    submit, _ = requests([1, 2, 3, 4])
    with pytest.raises(RpcError, match="recovery failed: MemoryError: no room") as info:
        shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), True)
    assert isinstance(info.value.__cause__, MemoryError)
    assert shadow.shadow_stats.gave_up == 1
    del submit, info
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline  # the rescued requests were freed


class Blocker:
    """A trip whose call `crash_on` panics (as Trip) and whose call `block_on` waits inside
    the driver (polling, so the crash's unwind lands there) until the test crashes it."""

    def __init__(self, crash_on: int, block_on: int) -> None:
        self.crash_on = crash_on
        self.block_on = block_on
        self.calls = 0
        self.entered = threading.Event()
        self._never = threading.Event()

    def fire(self) -> bool:
        self.calls += 1
        if self.calls == self.block_on:
            self.entered.set()
            deadline = time.monotonic() + 10.0  # a deadline against a hang only
            while time.monotonic() < deadline:
                self._never.wait(0.001)
        return self.calls == self.crash_on


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_a_give_up_during_the_crash_handling_frees_the_rescued_requests(kernel, domains,
                                                                        store):
    """Issue 12, item 2: a caller gives up (restart limit reached) while the crash that
    interrupted its call is still being handled. The shadow's reclaim hook then hands the
    call's requests to the caller as handle-free objects: the give-up must free them, not
    leave them to nobody. A reclaim hook registered before the shadow's holds the crash
    handling until the caller has given up, so the order is forced, not raced."""
    blocker = Blocker(crash_on=1, block_on=3)
    kernel.load(domains / "midcrash", store=store, trip=blocker)
    gave_up = lambda: bool(kernel.events.history({"shadow-gave-up"}, "midcrash"))  # noqa: E731
    kernel.add_reclaim_hook(  # holds the second crash's handling (before the rescue)
        "midcrash", lambda dead: not blocker.entered.is_set() or _wait_for(gave_up) or True)
    shadow = make_shadow(kernel, "midcrash",
                         ShadowPolicy(max_restarts=1, window_s=3600.0, backoff_s=0.0))
    baseline = kernel.heap.stats().live_objects
    submit, _ = requests([4, 5])  # call 1 crashes, the retry (call 2) succeeds: budget spent
    shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), True)
    assert shadow.shadow_stats.restarts == 1 and shadow.shadow_stats.recoveries == 1
    del submit
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline

    submit, _ = requests([1, 2, 3, 4, 5])
    errors: list[str] = []

    def call(deque: RRefDeque) -> None:  # call 3: blocks inside the driver until the crash
        try:
            shadow.submit_and_poll(deque, RRefDeque.new(BlkReq, 32), True)
        except RpcError as exc:
            errors.append(str(exc))

    caller = threading.Thread(target=call, args=(submit,))
    caller.start()
    assert blocker.entered.wait(10.0)
    assert kernel.panic("midcrash")
    caller.join(10.0)
    assert not caller.is_alive()
    assert len(errors) == 1 and "restart limit" in errors[0]
    rescues = kernel.events.history({"shadow-rescue"}, "midcrash")
    assert [e.data["requests"] for e in rescues] == [2, 5]  # call 1's and call 3's
    del submit, caller
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline, "the rescued requests leaked"
    assert kernel.shutdown()["objects"] == 0
