"""Lab 4's graded exercises: the ixgbe RX refill (`RxRing.arm_from`) and the TX clean-up
(`TxRing.completed`: which sent descriptors may be given back), each spliced into a copy of
drivers/ixgbe and graded by forwarding traffic through the kernel: the 82599 model's
generator feeds RX, its sink checks every forwarded frame (content and sequence).

Interface: `check_rx_refill(arm_from, hidden=False)`, `check_tx_cleanup(completed,
hidden=False)`. Visible: 400 rounds of ixy-fwd at batch 32 (the 512-slot rings wrap many
times): frames must flow, the sink must see no bad or out-of-sequence frame, no buffer may
be lost (the app's pool + both rings == the population) and nothing may leak. Hidden, TX:
the checker plays the NIC and clears the DD bit of in-flight descriptors (as if not sent
yet), at ring positions that include the wrap; a clean-up must give back exactly the sent
prefix. Hidden, RX: a rate-limited generator (threaded model) so RX descriptors really
are outstanding, then the same conservation checks.
Ownership: each check boots its own kernel and model and closes both.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from ..devices.sim_ixgbe import SimIxgbe
from ..errors import RpcError
from ..heap import RRefDeque
from ..interfaces.net import Forwarder, Packet, PacketPool
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import student_domain

ROUNDS = 400
RING = 512


def _forward(kernel: Any, dev: SimIxgbe, net: Any, rounds: int, threaded: bool) -> Forwarder:
    fwd = Forwarder(net, 32, PacketPool(1024))
    try:
        for i in range(rounds):
            fwd.step()
            if threaded and i % 16 == 0:
                time.sleep(0.0005)  # let the rate-limited generator fill some descriptors
    except RpcError as err:
        raise ExerciseFailed(f"the driver panicked after {fwd.sent} forwarded frames: "
                             f"{panic_text(err)}") from None
    stats = dev.stats()
    if fwd.sent < rounds // (8 if threaded else 2):
        raise ExerciseFailed(f"only {fwd.received} frames received and {fwd.sent} sent in {rounds} "
                             "rounds: the RX ring is not refilled (the tail RDT must stay "
                             "behind the head: at most size - 1 armed, §7.1.9) or TX buffers "
                             "never come back")
    if stats.sink_bad or stats.sink_seq_errors:
        raise ExerciseFailed(f"the sink saw {stats.sink_bad} corrupt and {stats.sink_seq_errors} "
                             f"out-of-sequence frames among {stats.sink_packets}: a buffer was "
                             "reused while the NIC still owned it")
    if stats.errors:
        raise ExerciseFailed(f"the NIC model rejected {stats.errors} descriptors or addresses "
                             f"({stats})")
    _conserved(fwd, net, "after forwarding")
    return fwd


def _conserved(fwd: Forwarder, net: Any, when: str) -> None:
    rx_held, tx_held = net.buffers_held()
    in_app = len(fwd.pool) + len(fwd.free) + len(fwd.got)
    if fwd.dropped or in_app + rx_held + tx_held != fwd.pool.population:
        raise ExerciseFailed(f"{when}: the pool made {fwd.pool.population} buffers, the app holds "
                             f"{in_app}, the RX ring {rx_held}, the TX ring {tx_held} "
                             f"({fwd.dropped} went missing): a buffer was lost or counted twice")


def _run(folder: Any, rounds: int, threaded: bool, probe_tx: bool) -> None:
    with fresh_kernel(heap_mb=96) as kernel:
        rate = 2e6 if threaded else None
        dev = SimIxgbe(kernel.heap, wire="generator", packet_size=64, threaded=threaded,
                       rate_pps=rate)
        fwd = None
        try:
            try:
                net = kernel.load(folder, device=dev)
            except Exception as err:
                raise ExerciseFailed(f"the driver did not start: {panic_text(err)}") from None
            fwd = _forward(kernel, dev, net, rounds, threaded)
            if probe_tx:
                _probe_tx(kernel, net)
        finally:
            if kernel.domain("ixgbe").state == "running":
                kernel.stop("ixgbe")
            if fwd is not None:
                fwd.release()
            del fwd
            gc.collect()
            dev.close()


def _probe_tx(kernel: Any, net: Any) -> None:
    """Play the NIC: in-flight TX descriptors lose their DD bit (not sent yet); a clean-up
    must hand back only the sent prefix, also when the window crosses the ring's end."""
    ring = kernel.domain("ixgbe").impl._tx  # the trusted checker looks at the driver's ring
    pool = PacketPool(600)
    wrapped = 0
    for trial in range(12):
        packets = RRefDeque.new(Packet, 512)
        collect = RRefDeque.new(Packet, 512)
        pool.fill(packets, 40 + 37 * trial % 200)
        packets.set("len", 60)
        _n, packets, collect = net.submit_and_poll(packets, collect, True)
        pool.give_back(collect)
        oldest, count = ring.oldest, ring.count
        if count < 4:
            raise ExerciseFailed(f"trial {trial}: the TX ring has {count} frames in flight after "
                                 "a send: the clean-up gives back more than was sent")
        sent = count // 3
        slots = [(oldest + i) % RING for i in range(sent, count)]
        wrapped += oldest + count > RING
        saved = ring.status[slots].copy()
        ring.status[slots] = 0  # DD clear: "the NIC has not written these back yet"
        _n, packets, collect = net.submit_and_poll(packets, collect, True)
        got = len(collect)
        ring.status[slots] = saved
        if got != sent:
            raise ExerciseFailed(f"TX descriptors {oldest}..{(oldest + count - 1) % RING} were in "
                                 f"flight and only the first {sent} had DD set (written back, "
                                 f"§7.2.3.5), but the clean-up gave back {got} buffers"
                                 + (" (the window crossed the end of the ring)"
                                    if oldest + count > RING else ""))
        pool.give_back(collect)
        _n, packets, collect = net.submit_and_poll(packets, collect, True)
        pool.give_back(collect)
        pool.give_back(packets)
    if not wrapped:
        raise ExerciseFailed("internal: no TX probe crossed the ring's end")  # pragma: no cover


def check_rx_refill(arm_from: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `RxRing.arm_from`; raises ExerciseFailed."""
    with workdir() as folder:
        driver = student_domain("ixgbe", {"ring.py": {"RxRing.arm_from": arm_from}}, folder)
        _run(driver, ROUNDS, threaded=hidden, probe_tx=False)


def check_tx_cleanup(completed: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `TxRing.completed`; raises ExerciseFailed."""
    with workdir() as folder:
        driver = student_domain("ixgbe", {"ring.py": {"TxRing.completed": completed}}, folder)
        _run(driver, ROUNDS, threaded=False, probe_tx=hidden)
