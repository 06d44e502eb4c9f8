"""Shadows: transparent restart-and-retry, data integrity under >1,000 crashes, policy.

The integrity test writes blocks carrying a checksum and a sequence number
through a shadow of membdev while faults are injected in four modes (before
every call, every N calls, with probability p, asynchronously from another
thread at random points). Every acknowledged write must read back intact,
every read must return exactly the last acknowledged write, and afterwards the
heap registry must be back at its baseline.
"""

from __future__ import annotations

import gc
import random
import threading
import time
import zlib

import numpy as np
import pytest

from redleaf_lab import RpcError
from redleaf_lab.devices import MemStore
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefArray, RRefDeque
from redleaf_lab.idl import Interface, ProxyBase
from redleaf_lab.idl.shadow import (
    AsIs,
    CopiedRRef,
    Lost,
    NotRecoverable,
    ShadowPolicy,
    generic_rule,
    make_shadow,
)
from tests.support.interfaces import Spin

BLOCKS = 32
GENEROUS = ShadowPolicy(max_restarts=100_000, window_s=1.0, max_attempts=50, backoff_s=0.0)


# -- payloads with checksums and sequence numbers ----------------------------------------------
def payload(block: int, seq: int) -> np.ndarray:
    """[block u64][seq u64][pseudo-random body][crc32 of everything before it]."""
    data = np.random.default_rng((block << 32) | seq).integers(0, 256, BLOCK_SIZE, np.uint8)
    data[:16] = np.array([block, seq], dtype="<u8").view(np.uint8)
    crc = zlib.crc32(data[: BLOCK_SIZE - 4].tobytes())
    data[BLOCK_SIZE - 4 :] = np.array([crc], dtype="<u4").view(np.uint8)
    return data


def check_block(data: np.ndarray, block: int, seq: int) -> None:
    """The block must be intact (checksum), the right block, and the last acked write."""
    crc = int(np.frombuffer(data[BLOCK_SIZE - 4 :].tobytes(), "<u4")[0])
    assert crc == zlib.crc32(data[: BLOCK_SIZE - 4].tobytes()), f"block {block}: bad checksum"
    got_block, got_seq = np.frombuffer(data[:16].tobytes(), "<u8")
    assert (int(got_block), int(got_seq)) == (block, seq), f"block {block}: stale or misplaced"
    assert np.array_equal(data, payload(block, seq))


class Writer:
    """One deterministic writer/reader of a block range through a BDev."""

    def __init__(self, bdev, store: MemStore, blocks: range, seed: int) -> None:
        self.bdev = bdev
        self.blocks = blocks
        self.rng = random.Random(seed)
        self.seq = 0
        self.acked: dict[int, int] = {}  # block -> seq of the last acknowledged write
        self.ops = 0
        assert not store.snapshot()[blocks.start : blocks.stop].any()  # starts zeroed

    def expect(self, data: np.ndarray, block: int) -> None:
        if block in self.acked:
            check_block(data, block, self.acked[block])
        else:
            assert not data.any(), f"block {block} was never written but is not zero"

    def step(self) -> None:
        op = self.rng.randrange(4)
        self.ops += 1
        if op == 0:
            block = self.rng.choice(self.blocks)
            self.seq += 1
            self.bdev.write(block, RRef.new(Block, payload(block, self.seq)))
            self.acked[block] = self.seq
        elif op == 1:
            block = self.rng.choice(self.blocks)
            buf = self.bdev.read(block, RRef.new(Block, 0xEE))
            view = buf.readonly()
            self.expect(view, block)
            del view
        else:
            write = op == 2
            chosen = self.rng.sample(self.blocks, self.rng.randrange(1, min(17, len(self.blocks))))
            submit = RRefDeque.new(BlkReq, 32)
            requests = []
            seqs = {}
            for block in chosen:
                req = RRef.new(BlkReq)
                view = req.array()
                view["block"] = block
                if write:
                    self.seq += 1
                    seqs[block] = self.seq
                    view["data"] = payload(block, self.seq)
                else:
                    view["data"] = 0xEE  # garbage the read must replace
                del view
                requests.append(req)
            submit.push_many(requests)
            taken, submit, collect = self.bdev.submit_and_poll(
                submit, RRefDeque.new(BlkReq, 32), write)
            assert taken == len(chosen) and len(submit) == 0
            done = collect.pop_many()
            assert [int(r.readonly()["block"]) for r in done] == chosen  # order kept
            for req in done:
                view = req.readonly()
                assert int(view["data_len"]) == BLOCK_SIZE
                if not write:
                    self.expect(view["data"], int(view["block"]))
                del view
            self.acked.update(seqs)

    def verify_all(self) -> None:
        for block in self.blocks:
            buf = self.bdev.read(block, RRef.new(Block))
            view = buf.readonly()
            self.expect(view, block)
            del view


@pytest.fixture
def membdev(kernel):
    store = MemStore(BLOCKS)
    kernel.load("membdev", store=store)
    return store


def _panic_randomly(kernel, name: str, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        time.sleep(rng.random() * 0.002)
        kernel.panic(name)


def _drive(kernel, writer: Writer, crashes: int, timeout: float = 20.0) -> int:
    start = kernel.crashes("membdev")
    deadline = time.monotonic() + timeout
    while kernel.crashes("membdev") - start < crashes:
        assert time.monotonic() < deadline, "not enough crashes"
        writer.step()
    return kernel.crashes("membdev") - start


def _check_writer(shadow, writer: Writer, store: MemStore, crashes: int) -> None:
    writer.verify_all()
    for block, seq in writer.acked.items():  # the store itself holds every acked write
        check_block(store.snapshot()[block], block, seq)
    stats = shadow.shadow_stats
    assert stats.gave_up == 0 and stats.restarts >= crashes - 5
    assert stats.recoveries > 0 and min(stats.recovery_ns) > 0


def _synchronous_workload(kernel, store: MemStore) -> dict[str, int]:
    shadow = make_shadow(kernel, "membdev", GENEROUS)
    writer = Writer(shadow, store, range(BLOCKS), seed=20261123)
    done = {}
    kernel.faults.every_n("membdev", 3)
    done["every_n"] = _drive(kernel, writer, 260)
    kernel.faults.probability("membdev", 0.3, seed=7)
    done["probability"] = _drive(kernel, writer, 260)
    kernel.faults.clear("membdev")
    start = kernel.crashes("membdev")
    while kernel.crashes("membdev") - start < 260:
        kernel.faults.next_call("membdev")
        writer.step()
    done["next_call"] = kernel.crashes("membdev") - start
    kernel.faults.clear("membdev")
    _check_writer(shadow, writer, store, sum(done.values()))
    return done


def _asynchronous_workload(kernel, store: MemStore, crashes: int) -> int:
    shadow = make_shadow(kernel, "membdev", GENEROUS)
    writer = Writer(shadow, store, range(BLOCKS), seed=99)
    stop = threading.Event()
    panicker = threading.Thread(target=_panic_randomly, args=(kernel, "membdev", 3, stop))
    panicker.start()
    try:
        done = _drive(kernel, writer, crashes)
    finally:
        stop.set()
        panicker.join(timeout=5)
    _check_writer(shadow, writer, store, done)
    return done


def assert_heap_at(kernel, baseline) -> None:
    gc.collect()  # exception tracebacks form cycles with the frames holding handles
    stats = kernel.heap.stats()
    assert stats.live_objects == baseline.live_objects, "heap objects leaked"
    assert stats.live_bytes == baseline.live_bytes
    assert stats.total_allocs - stats.total_frees == stats.live_objects  # no double free


# 780 synchronous + 260 asynchronous crashes: more than 1,000 in this file.
def test_data_integrity_under_synchronous_faults(kernel, membdev):
    baseline = kernel.heap.stats()
    done = _synchronous_workload(kernel, membdev)
    assert min(done.values()) >= 260
    kernel.stop("membdev")
    assert_heap_at(kernel, baseline)
    assert [e for e in kernel.heap.entries() if e.owner not in (0, 1)] == []


def test_data_integrity_under_asynchronous_panics(kernel, membdev):
    assert _asynchronous_workload(kernel, membdev, 260) >= 260
    kernel.stop("membdev")
    assert [e for e in kernel.heap.entries() if e.owner not in (0, 1)] == []  # all reclaimed


def test_two_threads_share_a_shadow_under_async_panics(kernel, membdev):
    shadow = make_shadow(kernel, "membdev", GENEROUS)
    writers = [Writer(shadow, membdev, range(0, 16), 1), Writer(shadow, membdev, range(16, 32), 2)]
    errors: list[BaseException] = []

    def run(w: Writer) -> None:
        try:
            for _ in range(150):
                w.step()
            w.verify_all()
        except BaseException as exc:
            errors.append(exc)

    stop = threading.Event()
    panicker = threading.Thread(target=_panic_randomly, args=(kernel, "membdev", 5, stop))
    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    start = kernel.crashes("membdev")
    panicker.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stop.set()
    panicker.join(timeout=5)
    assert not errors, errors[0]
    assert kernel.crashes("membdev") - start > 10
    assert shadow.shadow_stats.gave_up == 0


# -- transparency, generic rules ------------------------------------------------------------
def test_shadow_is_a_proxy_with_the_same_interface(kernel, membdev):
    shadow = make_shadow(kernel, "membdev")
    assert isinstance(shadow, ProxyBase) and shadow.interface.__name__ == "BDev"
    assert shadow.shadow_name == "membdev"
    assert not hasattr(shadow, "domain")  # opaque: no way from a capability to the kernel
    assert "shadow BDev -> membdev" in repr(shadow)
    assert shadow.num_blocks() == BLOCKS


@pytest.mark.parametrize("arm", ["next_call", "every_n", "probability"])
def test_echo_survives_faults_and_keeps_moved_contents(kernel, arm):
    kernel.load("echo")
    shadow = make_shadow(kernel, "echo", GENEROUS)
    {"next_call": lambda: kernel.faults.next_call("echo"),
     "every_n": lambda: kernel.faults.every_n("echo", 2),
     "probability": lambda: kernel.faults.probability("echo", 0.5, seed=1)}[arm]()
    for i in range(20):
        assert shadow.ping(i) == i
        block = shadow.echo(RRef.new(Block, i))  # moved in: the crash takes it
        assert block.owner() == 1 and int(block.readonly()[0]) == i  # rebuilt from the copy
        assert shadow.peek(block) == 0  # borrowed: retried as is
        assert block.owner() == 1
    assert kernel.crashes("echo") >= 1
    assert shadow.shadow_stats.restarts == kernel.restarts("echo")


def test_async_panic_while_idle_is_recovered_at_the_next_call(kernel, membdev):
    shadow = make_shadow(kernel, "membdev")
    shadow.write(1, RRef.new(Block, payload(1, 1)))
    kernel.panic("membdev")
    check_block(shadow.read(1, RRef.new(Block)).readonly(), 1, 1)
    assert shadow.shadow_stats.restarts == 1


def test_a_shadow_can_be_passed_as_a_capability(kernel):
    kernel.load("checksum")
    shadow = make_shadow(kernel, "checksum")
    kv = kernel.load("kvstore", checksum=shadow)
    value = RRef.new(Block, 5)
    expected = zlib.crc32(np.full(BLOCK_SIZE, 5, np.uint8).tobytes())
    kernel.faults.next_call("checksum")
    assert kv.put(1, value) == expected  # the kvstore never sees the checksum crash
    assert kernel.crashes("checksum") == 1 and shadow.shadow_stats.restarts == 1


def test_generic_rules_follow_the_type_specs(kernel):
    class Odd(Interface):
        def f(self, a: int, b: RRef[Block], c: RRefArray[Block, 4]) -> int: ...

    spec = Odd.__methods__["f"]
    rules = [generic_rule(Odd, spec, i) for i in range(3)]
    assert [type(r) for r in rules] == [AsIs, CopiedRRef, Lost]
    with pytest.raises(NotRecoverable, match=r"Odd.f\(c: .*RRefArray.* was moved into the crashed domain"):
        rules[2].rebuild(object(), None)
    arr = RRefArray.new(Block, 4)
    assert rules[2].rebuild(arr, None) is arr  # still the caller's: reused


# -- policy ----------------------------------------------------------------------------------
def test_gives_up_after_max_attempts_for_one_call(kernel):
    kernel.load("echo")
    shadow = make_shadow(kernel, "echo", ShadowPolicy(max_attempts=3, backoff_s=0))
    kernel.faults.every_n("echo", 1)  # panics at every call, every incarnation
    t0 = time.monotonic()
    with pytest.raises(RpcError, match=r"gave up \(ShadowPolicy.max_attempts\)") as info:
        shadow.ping(1)
    assert time.monotonic() - t0 < 2
    assert info.value.domain == "echo" and isinstance(info.value.original, RpcError)
    assert shadow.shadow_stats.restarts == 3 and shadow.shadow_stats.gave_up == 1
    assert kernel.events.count("shadow-gave-up", "echo") == 1
    kernel.faults.clear("echo")
    assert shadow.ping(2) == 2  # the next call restarts again and succeeds


def test_gives_up_at_the_restart_rate_limit(kernel):
    kernel.load("echo")
    shadow = make_shadow(kernel, "echo",
                         ShadowPolicy(max_restarts=4, window_s=60, max_attempts=100, backoff_s=0))
    for i in range(4):  # the limit counts restarts across calls
        kernel.faults.next_call("echo")
        assert shadow.ping(i) == i
    kernel.faults.next_call("echo")
    with pytest.raises(RpcError, match=r"restart limit of 4 per 60 s"):
        shadow.ping(9)
    assert shadow.shadow_stats.restarts == 4


def test_backoff_grows_between_restarts_of_one_call(kernel):
    kernel.load("echo")
    policy = ShadowPolicy(max_attempts=4, backoff_s=0.02, backoff_factor=2.0, backoff_max_s=0.05)
    assert [policy.backoff(k) for k in (1, 2, 3, 4)] == [0.0, 0.02, 0.04, 0.05]
    shadow = make_shadow(kernel, "echo", policy)
    kernel.faults.every_n("echo", 1)
    t0 = time.monotonic()
    with pytest.raises(RpcError):
        shadow.ping(1)
    assert time.monotonic() - t0 >= 0.11
    delays = [e.data["backoff_s"] for e in kernel.events.history({"shadow-restart"}, "echo")]
    assert delays == [0.0, 0.02, 0.04, 0.05]


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        ShadowPolicy(max_restarts=0)
    with pytest.raises(ValueError):
        ShadowPolicy(backoff_factor=0.5)


def test_recovery_time_statistics_and_events(kernel, membdev):
    shadow = make_shadow(kernel, "membdev")
    recovered = []
    kernel.events.subscribe(recovered.append, kinds={"shadow-recovered"})
    for i in range(5):
        kernel.faults.next_call("membdev")
        t0 = time.monotonic_ns()
        shadow.write(i, RRef.new(Block, payload(i, 1)))
        elapsed = time.monotonic_ns() - t0
        assert 0 < shadow.shadow_stats.recovery_ns[-1] <= elapsed
    stats = shadow.shadow_stats
    assert (stats.restarts, stats.retries, stats.recoveries) == (5, 5, 5)
    assert [e.data["recovery_ns"] for e in recovered] == list(stats.recovery_ns)
    assert all(e.data["method"] == "write" for e in recovered)
    assert 0 < stats.recovery_ms(50) <= stats.recovery_ms(99) < 1000
    assert kernel.events.count("shadow-restart", "membdev") == 5
    assert kernel.restarts("membdev") == 5


def test_stopping_the_domain_fails_calls_in_flight_without_restart(kernel, domains):
    kernel.load(domains / "spinner")
    shadow = make_shadow(kernel, "spinner")
    assert shadow.interface is Spin
    outcome: list[BaseException | int] = []
    thread = threading.Thread(target=lambda: _record(outcome, lambda: shadow.spin(10.0)))
    thread.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    kernel.stop("spinner")
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - t0 < 3
    assert isinstance(outcome[0], RpcError) and "was stopped" in str(outcome[0])
    assert kernel.restarts("spinner") == 0
    with pytest.raises(RpcError, match="was stopped"):
        shadow.ping(1)


def _record(outcome: list, call) -> None:
    try:
        outcome.append(call())
    except BaseException as exc:
        outcome.append(exc)


# -- regressions for kernel bugs the shadow tests found -------------------------------------------
def test_asynchronous_panics_leave_the_heap_at_baseline(kernel, membdev):
    baseline = kernel.heap.stats()
    _asynchronous_workload(kernel, membdev, 260)
    kernel.stop("membdev")
    assert_heap_at(kernel, baseline)


def test_crash_records_do_not_pin_the_callers_rrefs(kernel, membdev):
    baseline = kernel.heap.stats().live_objects
    shadow = make_shadow(kernel, "membdev", GENEROUS)

    def writes() -> None:
        mine = RRef.new(Block, 1)  # dropped when writes() returns, unless its frame is pinned
        for i in range(5):
            kernel.faults.next_call("membdev")
            shadow.write(i, mine)

    writes()
    kernel.stop("membdev")
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline
