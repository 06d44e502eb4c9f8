"""Fault injection modes, clean stop, restart and events."""

from __future__ import annotations

import threading
import time

import pytest

from redleaf_lab import RpcError


@pytest.fixture
def spin(kernel, domains):
    return kernel.load(domains / "spinner")


def _calls_until_panic(kernel, limit=1000):
    for i in range(1, limit + 1):
        try:
            kernel.proxy("spinner").ping(i)
        except RpcError:
            return i
    return None


def test_next_call_and_after_n(kernel, spin):
    kernel.faults.next_call("spinner")
    assert _calls_until_panic(kernel) == 1
    kernel.restart("spinner")
    kernel.faults.after("spinner", 5)
    assert _calls_until_panic(kernel) == 5
    kernel.restart("spinner")
    assert _calls_until_panic(kernel, 50) is None  # once only


def test_every_n_survives_restarts(kernel, spin):
    kernel.faults.every_n("spinner", 3)
    for _ in range(3):
        assert _calls_until_panic(kernel) == 3
        kernel.restart("spinner")
    assert kernel.crashes("spinner") == 3 and kernel.restarts("spinner") == 3


def test_probability_is_deterministic_with_a_seed(kernel, spin):
    def run(seed):
        kernel.faults.probability("spinner", 0.2, seed=seed)
        out = []
        for _ in range(5):
            out.append(_calls_until_panic(kernel))
            kernel.restart("spinner")
        return out

    assert run(7) == run(7)


def test_every_t_seconds_at_call(kernel, spin):
    kernel.faults.every("spinner", 0.05)
    assert spin.ping(1) == 1
    time.sleep(0.06)
    with pytest.raises(RpcError):
        spin.ping(1)


def test_async_now_unwinds_a_busy_thread(kernel, spin):
    result = {}

    def busy():
        try:
            result["value"] = spin.spin(10.0)
        except RpcError as err:
            result["error"] = err

    t = threading.Thread(target=busy)
    t.start()
    time.sleep(0.05)
    assert kernel.faults.now("spinner")
    t.join(timeout=2)
    assert not t.is_alive() and "error" in result
    assert kernel.wait_unwound(kernel.domain("spinner"), timeout=1)


def test_unwinding_several_threads_inside_the_crashed_domain(kernel, spin):
    spin.spawn_spinners(3)
    errors = []

    def caller(kind):
        try:
            if kind == "spin":
                spin.spin(10.0)
            else:
                spin.nap(10.0)
        except RpcError as err:
            errors.append(err)

    callers = [threading.Thread(target=caller, args=(k,)) for k in ("spin", "spin", "nap")]
    for t in callers:
        t.start()
    time.sleep(0.1)
    domain = kernel.domain("spinner")
    assert kernel.panic("spinner")
    for t in callers:
        t.join(timeout=2)
    assert all(not t.is_alive() for t in callers)
    assert len(errors) == 3
    assert kernel.wait_unwound(domain, timeout=2)
    assert domain.crash is not None and domain.crash.unwound_threads == 6
    exits = kernel.events.history({"thread-exit"}, "spinner")
    assert len(exits) == 3 and all(e.data["outcome"] == "unwound" for e in exits)
    # the record counts threads that actually left: 3 callers back at their proxy and
    # 3 domain threads at their entry (not only the 6 that were told to unwind)
    assert domain.crash.left_threads == 6


def test_clean_stop_reclaims_and_later_calls_fail(kernel, spin):
    from redleaf_lab import Block, RRef

    spin.hold(RRef.new(Block))
    spin.spawn_spinners(1)
    kernel.stop("spinner")
    assert kernel.domain("spinner").state == "stopped"
    assert kernel.heap.domain_stats(kernel.domain("spinner").id) == (0, 0)
    with pytest.raises(RpcError, match="stopped"):
        spin.ping(1)


def test_events_are_timestamped_and_ordered(kernel, spin):
    seen = []
    kernel.events.subscribe(seen.append, kinds={"crash", "reclaim", "restart"})
    kernel.faults.next_call("spinner")
    with pytest.raises(RpcError):
        spin.ping(1)
    kernel.restart("spinner")
    assert [e.kind for e in seen] == ["crash", "reclaim", "restart"]
    assert seen[0].ts_ns <= seen[1].ts_ns <= seen[2].ts_ns


def test_tracing_emits_call_events(kernel, spin):
    kernel.trace(True)
    spin.ping(1)
    kernel.trace(False)
    spin.ping(2)
    assert kernel.events.count("call", "spinner") == 1


def test_ps_reports_the_domain_table(kernel, spin):
    spin.ping(1)
    (row,) = [r for r in kernel.ps() if r.name == "spinner"]
    assert row.state == "running" and row.calls == 1 and row.interface == "Spin"


def test_device_capabilities_are_quiesced_before_reclaim(kernel, domains):
    from redleaf_lab import Block, RRef

    class FakeDevice:
        quiesced_with_live_heap: bool | None = None

        def quiesce(self) -> None:
            owner = kernel.domain("dma_user").id
            self.quiesced_with_live_heap = kernel.heap.domain_stats(owner)[0] > 0

    device = FakeDevice()
    proxy = kernel.load(domains / "dma_user", device=device)
    proxy.put(RRef.new(Block))
    kernel.panic("dma_user")
    assert device.quiesced_with_live_heap is True  # DMA stopped before the reclaim
    assert kernel.events.count("quiesce", "dma_user") == 1
    assert kernel.heap.domain_stats(kernel.domain("dma_user").id) == (0, 0)


def test_restart_waits_until_the_crash_path_has_quiesced_the_device(kernel, domains):
    import threading as _threading

    from redleaf_lab import Block, RRef

    class SlowDevice:
        def __init__(self) -> None:
            self.quiescing = _threading.Event()
            self.release = _threading.Event()
            self.restarted_during_quiesce = False

        def quiesce(self) -> None:
            self.quiescing.set()
            self.release.wait(2)

    device = SlowDevice()
    proxy = kernel.load(domains / "dma_user", device=device)
    proxy.put(RRef.new(Block))
    crasher = _threading.Thread(target=kernel.panic, args=("dma_user",))
    crasher.start()
    assert device.quiescing.wait(2)
    assert kernel.domain("dma_user").state == "crashed"  # calls already fail fast

    def finish_quiesce_later() -> None:
        time.sleep(0.1)
        device.restarted_during_quiesce = kernel.domain("dma_user").incarnation > 1
        device.release.set()

    helper = _threading.Thread(target=finish_quiesce_later)
    helper.start()
    fresh = kernel.restart("dma_user")  # must wait for the quiesce to finish
    crasher.join()
    helper.join()
    assert not device.restarted_during_quiesce
    assert fresh.count() == 0


def test_restart_of_a_running_domain_fails_at_once(kernel, domains):
    from redleaf_lab import DomainLoadError

    kernel.load(domains / "leaf")
    t0 = time.monotonic()
    with pytest.raises(DomainLoadError, match="running"):
        kernel.restart("leaf")
    assert time.monotonic() - t0 < 1.0
