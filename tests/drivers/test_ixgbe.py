"""drivers/ixgbe on the sim 82599 model (inline, deterministic): init, link, MAC, verified
frames across ring wrap-around (loopback wire), statistics, promiscuous mode, bad input at
the interface, the fwd and pktgen app domains, and recovery behind a shadow under 300+
panics (periodic, random, asynchronous) with the packet pool whole and no heap leak.
Frames forwarded from the generator are checked by the model's sink (IPv4 header and UDP
checksums, per-flow sequence); frames sent through the loopback wire carry a CRC-32.
"""

from __future__ import annotations

import gc
import random
import threading
import time
import zlib

import numpy as np
import pytest

from redleaf_lab import InvalidRequest
from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from redleaf_lab.errors import ExchangeError, RpcError, StaleRefError, UseAfterMoveError
from redleaf_lab.heap import BlkReq, RRefDeque
from redleaf_lab.idl import gates
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow
from redleaf_lab.interfaces.net import RING_SLOTS, Forwarder, Packet, PacketPool

GENEROUS = ShadowPolicy(max_restarts=100_000, window_s=1.0, max_attempts=50, backoff_s=0.0)
FCTRL, FCTRL_UPE, FCTRL_MPE = 0x5080, 1 << 9, 1 << 8


def make_device(kernel, wire: str) -> SimIxgbe:
    return SimIxgbe(kernel.heap, wire=wire, threaded=False, packet_size=64)


@pytest.fixture
def loopback(kernel):
    dev = make_device(kernel, "loopback")
    yield dev
    dev.close()


@pytest.fixture
def generator(kernel):
    dev = make_device(kernel, "generator")
    yield dev
    dev.close()


def packet_census(kernel) -> int:
    return sum(1 for e in kernel.heap.entries() if e.type_id == Packet.type_id)


def frame(seq: int, size: int) -> np.ndarray:
    """A frame whose bytes 14.. are derived from `seq`, with a CRC-32 in its last 4."""
    data = np.random.default_rng(seq).integers(0, 256, size, np.uint8)
    data[:12] = 0xFF
    data[14:22] = np.array([seq], "<u8").view(np.uint8)
    data[-4:] = np.array([zlib.crc32(data[:-4].tobytes())], "<u4").view(np.uint8)
    return data


def check_frame(data: np.ndarray) -> int:
    assert zlib.crc32(data[:-4].tobytes()) == int(data[-4:].view("<u4")[0]), "payload damaged"
    seq = int(data[14:22].view("<u8")[0])
    assert np.array_equal(data, frame(seq, len(data)))
    return seq


def stamp(dq: RRefDeque, seqs: list[int], sizes: list[int]) -> None:
    refs = dq.pop_many()
    for ref, seq, size in zip(refs, seqs, sizes, strict=True):
        view = ref.array()
        fill = min(size, len(view["data"]))  # a bad length may exceed the buffer
        view["data"][:fill] = frame(seq, fill)
        view["len"] = size
        del view
    dq.push_many(refs)


def test_init_link_mac_and_rings(kernel, loopback):
    net = kernel.load("ixgbe", device=loopback)
    drv = kernel.domain("ixgbe").impl
    assert net.link_status() == (True, 10_000)
    assert net.mac_address() == loopback.read32(0x5400) | (loopback.read32(0x5404) & 0xFFFF) << 32
    sections = [section for _step, section in drv.init_log]
    assert sections[:3] == ["4.6.3.1", "4.6.3.2", "4.6.3"] and "4.6.7.1" in sections
    assert loopback.read32(0x1028) & (1 << 25) and loopback.read32(0x6028) & (1 << 25)
    assert loopback.read32(0x3000) & 1 and loopback.read32(0x4A80) & 1  # RXEN, TE
    assert net.buffers_held() == (0, 0)
    assert drv.rings()["rx"]["RDT"] == 0 == drv.rings()["tx"]["TDT"]


def test_frames_arrive_intact_across_ring_wrap(kernel, loopback):
    """3000 frames of random sizes go out and come back through the loopback wire: every
    one arrives once, in order, with its checksum intact; both rings wrap around 5 times."""
    net = kernel.load("ixgbe", device=loopback)
    drv = kernel.domain("ixgbe").impl
    pool = PacketPool(1200)
    free = RRefDeque.new(Packet, 1024)
    pool.fill(free, 600)
    _n, free, got = net.submit_and_poll(free, RRefDeque.new(Packet, 64), False)
    rng = random.Random(5)
    out = RRefDeque.new(Packet, 64)
    done = RRefDeque.new(Packet, 1024)
    next_seq, expect, total = 0, 0, 3000
    while expect < total:
        if next_seq < total:
            count = min(rng.randint(1, 64), total - next_seq)
            pool.fill(out, count)
            stamp(out, list(range(next_seq, next_seq + count)),
                  [rng.randint(60, 1514) for _ in range(count)])
            sent, out, done = net.submit_and_poll(out, done, True)
            assert sent == count and len(out) == 0
            next_seq += count
        _n, free, got = net.submit_and_poll(free, got, False)
        for ref in got.pop_many():
            view = ref.readonly()
            assert check_frame(view["data"][: int(view["len"])]) == expect
            del view
            expect += 1
            free.push_back(ref)
        pool.give_back(done)
    assert drv._rx.oldest == total % RING_SLOTS == drv._tx.tail  # wrapped 5 times
    assert net.stats()[:2] == (total, total)


def test_stats_accumulate_clear_on_read_counters(kernel, generator):
    net = kernel.load("ixgbe", device=generator)
    fwd = Forwarder(net, 32)
    fwd.run(20)
    rx, tx, rx_bytes, tx_bytes, _missed = net.stats()
    assert rx >= fwd.received > 0 and tx == fwd.sent > 0
    assert rx_bytes == 64 * rx and tx_bytes == 64 * tx
    assert net.stats()[:4] == (rx, tx, rx_bytes, tx_bytes)  # read again: nothing lost
    fwd.run(10)
    assert net.stats()[1] == fwd.sent > tx
    model = generator.stats()  # the sink checked every forwarded frame
    assert model.sink_ok == fwd.sent and model.sink_bad == model.sink_seq_errors == 0


def test_promiscuous_mode(kernel):
    generator = make_device(kernel, "sink")  # nothing arrives but what we inject
    net = kernel.load("ixgbe", device=generator)
    other = bytes([0x02, 0, 0, 0, 0, 0x99]) + generator.mac + b"\x88\xb5" + bytes(46)
    ours = generator.mac + generator.mac + b"\x88\xb5" + bytes(46)
    fwd = Forwarder(net, 32)
    fwd.run(1)  # buffers on the RX ring
    assert generator.read32(FCTRL) & (FCTRL_UPE | FCTRL_MPE) == FCTRL_UPE | FCTRL_MPE
    assert net.promiscuous(False) is True
    assert generator.read32(FCTRL) & (FCTRL_UPE | FCTRL_MPE) == 0
    assert generator.read32(FCTRL) & (1 << 10)  # broadcasts still accepted
    filtered = generator.stats().rx_filtered
    assert generator.inject(ours) and not generator.inject(other)
    assert generator.stats().rx_filtered == filtered + 1
    assert net.promiscuous(True) is False
    assert generator.read32(FCTRL) & FCTRL_UPE and generator.inject(other)
    assert fwd.step() == 2  # the two accepted frames
    generator.close()


def test_bad_frame_length_is_a_clear_error_and_nothing_leaks(kernel, loopback):
    net = kernel.load("ixgbe", device=loopback)
    baseline = kernel.heap.stats().live_objects
    pool = PacketPool(8)
    out = RRefDeque.new(Packet, 8)
    pool.fill(out, 3)
    stamp(out, [1, 2, 3], [60, 2000, 60])
    with pytest.raises(InvalidRequest, match=r"packet 1 of the batch has length 2000: a frame "
                                             r"must be 14\.\.1514 bytes"):
        net.submit_and_poll(out, RRefDeque.new(Packet, 8), True)
    assert kernel.domain("ixgbe").state == "running" and net.buffers_held() == (0, 0)
    assert pool.reconcile(0, net) == 3  # the rejected batch is counted as lost ...
    assert pool.population == 8 and len(pool) == 8  # ... and replaced
    del out, pool
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline  # the driver freed the deques


def clear_eop(rx, slot: int) -> None:
    rx.d32[slot, 2] &= ~np.uint32(0x2)  # as if the NIC split a frame over two buffers


def overlong(rx, slot: int) -> None:
    rx.d32[slot, 3] = 3000  # the length (bytes 12-13): it would have run past the buffer


@pytest.mark.parametrize("corrupt, why", [
    (clear_eop, "not a complete writeback"),
    (overlong, "its value 3000 is past the limit 1514"),
])
def test_a_bad_writeback_is_a_panic_and_nothing_moves(kernel, loopback, corrupt, why):
    """A device that breaks §7.1.6.2 (a written-back descriptor without EOP, or with a
    length past the buffer) must not get its frame delivered: the driver panics
    (IxgbeError) before any buffer moves."""
    net = kernel.load("ixgbe", device=loopback)
    domain = kernel.domain("ixgbe")
    drv = domain.impl
    pool = PacketPool(16)
    free = RRefDeque.new(Packet, 16)
    pool.fill(free, 8)
    _n, free, got = net.submit_and_poll(free, RRefDeque.new(Packet, 8), False)
    out = RRefDeque.new(Packet, 8)
    pool.fill(out, 3)
    stamp(out, [0, 1, 2], [60, 60, 60])
    sent, out, _done = net.submit_and_poll(out, RRefDeque.new(Packet, 8), True)
    assert sent == 3
    rx = drv._rx
    second = (rx.oldest + 1) % rx.size
    assert rx.status[second] & 0x3 == 0x3  # written back: DD | EOP
    corrupt(rx, second)
    armed = rx.count
    with pytest.raises(RpcError, match=r"panic.*IxgbeError.*descriptor \d+ \(item 1\).*" + why):
        net.submit_and_poll(free, got, False)
    assert domain.state != "running"  # a panic: the incarnation is gone
    assert rx.count == armed  # nothing left the ring before the panic


def test_misused_deques_are_refused_at_the_proxy(kernel, loopback):
    net = kernel.load("ixgbe", device=loopback)
    dq = RRefDeque.new(Packet, 4)
    with pytest.raises(UseAfterMoveError, match="cannot be passed on again"):
        net.submit_and_poll(dq, dq, False)  # one deque as both arguments
    dropped = RRefDeque.new(Packet, 4)
    dropped.drop()
    with pytest.raises(StaleRefError, match="dropped"):
        net.submit_and_poll(dropped, RRefDeque.new(Packet, 4), False)
    with pytest.raises(ExchangeError, match=r"submit_and_poll\(packets\): expected .*Packet"):
        net.submit_and_poll(RRefDeque.new(BlkReq, 4), dq, False)  # deque of another layout
    with pytest.raises(ExchangeError):
        net.submit_and_poll([1, 2], dq, False)
    batch = RRefDeque.new(Packet, 4).take_batch()
    with pytest.raises(ExchangeError, match="RRefBatch"):  # batches never cross a proxy
        net.submit_and_poll(batch, dq, False)
    assert len(dq) == 0  # the failed call moved nothing: the caller still owns its deque
    assert net.submit_and_poll(dq, RRefDeque.new(Packet, 4), False)[0] == 0  # driver lives
    assert kernel.domain("ixgbe").state == "running"


def test_forwarding_with_the_model_on_its_own_thread(kernel):
    dev = SimIxgbe(kernel.heap, wire="generator", threaded=True, packet_size=64)
    net = kernel.load("ixgbe", device=dev)
    fwd = Forwarder(net, 32)
    deadline = time.monotonic() + 30  # the device thread's pace is the machine's, not ours
    while fwd.sent < 5000 and time.monotonic() < deadline:
        fwd.step()
    assert fwd.sent >= 5000
    kernel.stop("ixgbe")  # quiesces the NIC: the sink has seen everything it will see
    model = dev.stats()
    assert 0 < model.sink_ok <= fwd.sent and model.sink_bad == model.sink_seq_errors == 0
    fwd.release()
    dev.close()


def test_fwd_and_pktgen_domains(kernel, generator):
    kernel.load("ixgbe", device=generator)
    fwd = kernel.load("fwd", net=make_shadow(kernel, "ixgbe", GENEROUS))
    received, sent, dropped = fwd.run(50, 32)
    assert received == sent > 0 and dropped == 0
    assert generator.stats().sink_ok == sent
    sink = make_device(kernel, "sink")
    kernel.load("ixgbe", name="ixgbe-tx", device=sink)
    gen = kernel.load("pktgen", net=make_shadow(kernel, "ixgbe-tx", GENEROUS))
    assert gen.run(40, 32) == (0, 40 * 32, 0)
    assert kernel.proxy("ixgbe-tx").stats()[1] == 40 * 32
    assert sink.stats().sink_other == 40 * 32  # well-formed UDP frames (not the generator's)
    kernel.faults.every_n("ixgbe-tx", 7)  # both apps go on through panics of their driver
    kernel.faults.every_n("ixgbe", 7)
    _r, sent_after, lost = gen.run(40, 32)
    _received2, sent2, dropped2 = fwd.run(50, 32)
    kernel.faults.clear("ixgbe-tx")
    kernel.faults.clear("ixgbe")
    assert kernel.crashes("ixgbe-tx") >= 5 and kernel.crashes("ixgbe") >= 5
    assert sent_after > 40 * 32 and lost > 0 and sent2 > sent and dropped2 > 0
    assert kernel.domain("pktgen").state == kernel.domain("fwd").state == "running"
    kernel.stop("ixgbe-tx")
    sink.close()


def arm_fault(kernel, mode: str, i: int, timers: list) -> None:
    if mode == "periodic":
        kernel.faults.next_call("ixgbe")
    elif mode == "random":
        kernel.faults.probability("ixgbe", 0.5, seed=i)
    else:  # from another thread, at whatever bytecode the driver is executing
        timer = threading.Timer(0.0002 * (i % 5), kernel.panic, ("ixgbe", "async"))
        timer.start()
        timers.append(timer)


@pytest.mark.slow
def test_recovery_under_300_crashes_pool_whole_no_leak(kernel, generator):
    kernel.load("ixgbe", device=generator)
    shadow = make_shadow(kernel, "ixgbe", GENEROUS)
    baseline = kernel.heap.stats().live_objects
    fwd = Forwarder(shadow, 32, PacketPool(2 * RING_SLOTS))
    modes = ["periodic", "random", "async"]
    timers: list[threading.Timer] = []
    for i in range(330):
        arm_fault(kernel, modes[i % 3], i, timers)
        for _ in range(3):
            fwd.step()
        kernel.faults.clear("ixgbe")
        for timer in timers:
            timer.join()
        timers.clear()
    assert kernel.crashes("ixgbe") >= 300, kernel.crashes("ixgbe")
    assert generator.stats().resets >= 300  # quiesced at each crash, reset at each init
    before = fwd.received
    fwd.run(50)  # forwarding continues
    assert fwd.received - before >= 40 * 32
    fwd.reconcile()
    assert fwd.dropped > 0  # buffers in flight at the crashes were counted ...
    assert fwd.pool.population == 2 * RING_SLOTS  # ... and replaced: the pool is whole
    rx_held, tx_held = shadow.buffers_held()
    in_app = len(fwd.pool) + len(fwd.free) + len(fwd.got)
    assert in_app + rx_held + tx_held == fwd.pool.population == packet_census(kernel)
    kernel.stop("ixgbe")  # the driver's rings go back to the heap with it
    fwd.release()
    del fwd
    gc.collect()
    assert kernel.heap.stats().live_objects <= baseline
    assert packet_census(kernel) == 0


def test_live_workload_forwards_through_panics(kernel):
    import time

    from redleaf_lab.live.net_workload import NetWorkload

    wl = NetWorkload(kernel, batch=32)
    wl.start("forward")
    deadline = time.monotonic() + 5
    while wl.sample().ops < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    kernel.faults.every_n("ixgbe", 5)
    while kernel.crashes("ixgbe") < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    kernel.faults.clear("ixgbe")
    before = wl.sample().ops
    while wl.sample().ops < before + 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    wl.stop()
    assert kernel.crashes("ixgbe") >= 5 and wl.sample().ops >= before + 2000, wl.last_error
    result = wl.check()
    assert result["wrong"] == 0 and result["sink_ok"] == result["sent"] > 0
    assert result["dropped_in_crashes"] > 0 and wl.errors == 0
    wl.close()


def test_live_workload_receive_mode_lends_buffers_straight_back(kernel):
    from redleaf_lab.live.net_workload import NetWorkload

    wl = NetWorkload(kernel, batch=32)
    wl.start("receive")
    deadline = time.monotonic() + 5
    while wl.sample().ops < 5000 and time.monotonic() < deadline:
        time.sleep(0.01)
    wl.stop()
    assert wl.sample().ops >= 5000 and wl.errors == 0, wl.last_error
    assert wl.check()["sent"] == 0  # nothing transmitted in this mode
    rx_held, tx_held = wl.shadow.buffers_held()
    assert tx_held == 0 and rx_held > 0
    wl.close()


def test_bench_net_rows():
    from redleaf_lab.bench import net as bench

    rows = bench.measure(seconds=0.05, batches=(32,), slices=1)
    paths = [r["path"] for r in rows]
    reference = ["python-domain", "python-shadow"] if gates.available() else []
    assert paths == ["c", "direct", "domain", "shadow", *reference, "nullnet-direct",
                     "nullnet-domain", "nullnet-shadow",
                     *(f"nullnet-{p}" for p in reference)]
    assert all(r["mpps"] > 0 and r["batch"] == 32 for r in rows)
    assert all(0 < r["vs_c"] < 1 for r in rows if r["driver"] == "ixgbe")
    assert "vs C" in bench.format_table(rows)


def test_bench_net_threaded_runs_each_device_thread_in_its_own_slices(monkeypatch):
    from redleaf_lab.bench import net as bench

    running: list[str] = []
    started: list[str] = []
    start, stop = SimIxgbe.start_thread, SimIxgbe.stop_thread

    def start_thread(self):
        running.append(self.name)
        started.append(self.name)
        assert len(running) == 1, f"device threads running at once: {running}"
        start(self)

    def stop_thread(self):
        stop(self)
        running.remove(self.name)

    monkeypatch.setattr(SimIxgbe, "start_thread", start_thread)
    monkeypatch.setattr(SimIxgbe, "stop_thread", stop_thread)
    rows = bench.measure(seconds=0.06, batches=(32,), slices=2, threaded=True, nullnet=False)
    reference = ["python-domain", "python-shadow"] if gates.available() else []
    assert [r["path"] for r in rows] == ["c", "direct", "domain", "shadow", *reference]
    assert all(r["mpps"] > 0 for r in rows) and running == []
    assert sorted(started) == sorted(2 * [f"ixgbe-{p}" for p in
                                          ("direct", "domain", "shadow", *reference)])


def test_driver_register_map_agrees_with_the_model():
    """drivers/ixgbe/regs.py (the driver's own, datasheet-cited) and devices/ixgbe_regs.py
    (the model's) must give every register and bit they share the same value."""
    import importlib.util
    from pathlib import Path

    from redleaf_lab.devices import ixgbe_regs as model

    path = Path(__file__).parents[2] / "drivers" / "ixgbe" / "regs.py"
    spec = importlib.util.spec_from_file_location("ixgbe_driver_regs", path)
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    shared = [n for n in vars(driver) if n.isupper() and hasattr(model, n)]
    assert len(shared) > 60
    for name in shared:
        mine, theirs = getattr(driver, name), getattr(model, name)
        if callable(mine):
            assert [mine(q) for q in range(4)] == [theirs(q) for q in range(4)], name
        else:
            assert mine == theirs, name


def test_shadow_retries_a_crashed_call_with_fresh_deques(kernel, generator):
    kernel.load("ixgbe", device=generator)
    shadow = make_shadow(kernel, "ixgbe", GENEROUS)
    pool = PacketPool(600)
    free, got = RRefDeque.new(Packet, 600), RRefDeque.new(Packet, 32)
    pool.fill(free, 600)
    kernel.faults.next_call("ixgbe")  # panics inside the driver, after the deques moved in
    n, free2, got2 = shadow.submit_and_poll(free, got, False)
    assert shadow.shadow_stats.recoveries == 1 and kernel.crashes("ixgbe") == 1
    assert free2 is not free and (len(free2), free2.capacity) == (0, 600)  # the retry's
    assert got2 is not got and (n, len(got2), got2.capacity) == (0, 0, 32)
    assert pool.reconcile(0, shadow) == 600 and pool.population == 600  # counted, replaced
    kernel.panic("ixgbe")  # dead before the next call: its deques never move, and come back
    pool.fill(free2, 100)
    n, free3, got3 = shadow.submit_and_poll(free2, got2, False)
    assert free3 is free2 and got3 is got2 and shadow.buffers_held() == (100, 0)
