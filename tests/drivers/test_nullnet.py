"""drivers/nullnet: the software-only Net driver: it hands every buffer straight back
(receive sets the length, transmit counts), holds nothing, and behind a shadow it
survives panics with the caller's pool whole and no heap leak.
"""

from __future__ import annotations

import gc

import pytest

from redleaf_lab.heap import RRefDeque
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow
from redleaf_lab.interfaces.net import Forwarder, Packet, PacketPool


def test_receive_and_transmit_hand_buffers_straight_back(kernel):
    net = kernel.load("nullnet")
    pool = PacketPool(64)
    packets = RRefDeque.new(Packet, 64)
    pool.fill(packets, 40)
    n, packets, collect = net.submit_and_poll(packets, RRefDeque.new(Packet, 32), False)
    assert (n, len(packets), len(collect)) == (32, 8, 32)  # as many as collect has room for
    batch = collect.take_batch()
    assert batch.get("len").tolist() == [60] * 32
    collect.put_batch(batch)
    sent, collect, packets = net.submit_and_poll(collect, packets, True)
    assert (sent, len(collect), len(packets)) == (32, 0, 40)
    assert net.stats() == (32, 32, 32 * 60, 32 * 60, 0)
    assert net.buffers_held() == (0, 0) and net.link_status() == (True, 10_000)
    assert net.promiscuous(True) is False and net.promiscuous(False) is True


def test_forwarding_through_a_shadow_survives_panics(kernel):
    kernel.load("nullnet")
    shadow = make_shadow(kernel, "nullnet", ShadowPolicy(max_restarts=10_000, backoff_s=0.0))
    baseline = kernel.heap.stats().live_objects
    fwd = Forwarder(shadow, 32, PacketPool(256))
    for i in range(60):
        if i % 2:
            kernel.faults.next_call("nullnet")
        fwd.run(3)
    kernel.faults.clear("nullnet")
    assert kernel.crashes("nullnet") == 30
    fwd.run(5)
    assert fwd.received == fwd.sent and fwd.received > 100 * 32
    fwd.reconcile()
    assert fwd.dropped > 0 and fwd.pool.population == 256
    assert len(fwd.pool) + len(fwd.free) + len(fwd.got) == 256
    fwd.release()
    del fwd
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline


@pytest.mark.parametrize("room", [0, 3])
def test_only_what_collect_has_room_for_moves(kernel, room):
    net = kernel.load("nullnet")
    pool = PacketPool(16)
    packets = RRefDeque.new(Packet, 8)
    pool.fill(packets, 8)
    collect = RRefDeque.new(Packet, 4)
    pool.fill(collect, 4 - room)
    n, packets, collect = net.submit_and_poll(packets, collect, False)
    assert (n, len(packets), len(collect)) == (room, 8 - room, 4)
