"""The maglev domain on the Python ixgbe driver and the 82599 model: frames leave with a
backend's MAC and address and valid checksums (the model's sink checks them); a flow
keeps its backend; backends added, removed and marked down at run time; bad frames
dropped and counted; and across driver panics (behind a shadow) no flow is reassigned
while its backend is healthy."""

from __future__ import annotations

import struct

import pytest

from redleaf_lab.errors import InvalidRequest
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow
from tests.devices.ixgbe_nic import parse_udp

VIP = 0x0A020001


def backend(i: int) -> tuple[int, int]:
    return (0x10_00_00_00_00_02 | (i << 40), (10 << 24) | (3 << 16) | (i + 1))


@pytest.fixture
def rig(kernel):
    from redleaf_lab.devices.sim_ixgbe import SimIxgbe

    dev = SimIxgbe(kernel.heap, wire="generator", flows=64, capture=True, seed=5)
    kernel.load("ixgbe", name="nic", device=dev)
    shadow = make_shadow(kernel, "nic", ShadowPolicy(max_restarts=100))
    app = kernel.load("maglev", net=shadow, config={
        "backends": [backend(i) for i in range(3)], "table_size": 251, "flow_slots": 256})
    yield kernel, dev, app
    kernel.stop("maglev")
    kernel.stop("nic")
    dev.close()


FLOWS = [(0x0A010000 | f, 10000 + f) for f in range(64)]  # the generator's 64 flows


def all_flows(app) -> dict[tuple[int, int], int]:
    return {flow: app.backend_of(flow[0], VIP, flow[1], 9) for flow in FLOWS}


def same_on_common(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def sent_frames(dev, count=64) -> list[dict]:
    out = []
    for frame in dev.captured(count):
        fields = parse_udp(frame)  # both checksums valid
        fields["mac"] = int.from_bytes(frame[0:6], "little")
        out.append(fields)
    return out


def flow_backends(frames: list[dict]) -> dict[tuple[int, int], int]:
    by_ip = {backend(i)[1]: i for i in range(8)}
    seen: dict[tuple[int, int], int] = {}
    for f in frames:
        index = by_ip[f["dst"]]
        assert f["mac"] == backend(index)[0]  # MAC and address of the same backend
        assert seen.setdefault((f["src"], f["sport"]), index) == index  # a flow keeps it
    return seen


def test_frames_are_steered_and_stay_valid(rig):
    _kernel, dev, app = rig
    received, sent, dropped = app.run(40, 32)
    assert received == sent > 500 and dropped == 0
    stats = dev.stats()
    assert stats.sink_ok == sent and stats.sink_bad == 0
    seen = flow_backends(sent_frames(dev))
    assert set(seen.values()) == {0, 1, 2}  # 64 flows over 3 backends
    for (src, sport), index in seen.items():
        assert app.backend_of(src, VIP, sport, 9) == index
    assert app.stats()[3] == 64  # every flow tracked


def test_backends_change_at_run_time_and_tracked_flows_keep_theirs(rig):
    _kernel, dev, app = rig
    app.run(40, 32)
    before = all_flows(app)
    assert same_on_common(flow_backends(sent_frames(dev)), before)
    assert app.set_backend(3, *backend(3)) == 4  # added: new flows may use it, old ones stay
    app.run(40, 32)
    assert all_flows(app) == before
    assert same_on_common(flow_backends(sent_frames(dev)), before)
    moved_entries = app.remove_backend(1)
    assert 0 < moved_entries < 251
    app.set_health(2, False)
    app.run(40, 32)
    after = all_flows(app)
    assert same_on_common(flow_backends(sent_frames(dev)), after)
    for flow, index in after.items():
        assert index in (0, 3)
        if before[flow] == 0:
            assert index == 0  # healthy and present: never moved
    assert app.stats()[5] > 0  # flows moved off the removed and the unhealthy backend


def test_bad_requests_are_error_values(rig):
    _kernel, _dev, app = rig
    for call in (lambda: app.set_backend(-1, *backend(0)), lambda: app.set_backend(0, 3, 1),
                 lambda: app.remove_backend(77), lambda: app.set_health(900, True),
                 lambda: app.run(1, 0)):
        with pytest.raises(InvalidRequest):
            call()
    assert app.run(1, 32)[0] >= 0  # still serving


def udp_frame(dst_mac: bytes, dst_ip: int, proto: int = 17, ethertype: int = 0x0800,
              fragment: int = 0x4000) -> bytes:
    from tests.devices.ixgbe_nic import inet_sum

    payload = b"hello maglev, again!"  # 62-byte frame: no padding
    udp = struct.pack("!HHHH", 4242, 9, 8 + len(payload), 0) + payload
    pseudo = bytes([10, 9, 8, 7]) + dst_ip.to_bytes(4, "big") + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", ~inet_sum(pseudo + udp) & 0xFFFF or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, fragment, 64, proto, 0,
                     bytes([10, 9, 8, 7]), dst_ip.to_bytes(4, "big"))
    ip = ip[:10] + struct.pack("!H", ~inet_sum(ip) & 0xFFFF) + ip[12:]
    return dst_mac + bytes(6) + struct.pack("!H", ethertype) + ip + udp


def test_frames_that_are_not_udp_to_the_vip_are_dropped_and_counted(kernel):
    from redleaf_lab.devices.sim_ixgbe import SimIxgbe

    dev = SimIxgbe(kernel.heap, wire="sink", capture=True, name="quiet")
    try:
        kernel.load("ixgbe", name="quiet", device=dev)
        app = kernel.load("maglev", name="lb", net=kernel.proxy("quiet"),
                          config={"backends": [backend(0)], "table_size": 13, "flow_slots": 16})
        app.run(2, 32)
        frames = [udp_frame(dev.mac, VIP), udp_frame(dev.mac, 0x0A0A0A0A),
                  udp_frame(dev.mac, VIP, proto=6), udp_frame(dev.mac, VIP, ethertype=0x0806),
                  udp_frame(dev.mac, VIP)[:30], udp_frame(dev.mac, VIP, fragment=0x2000),
                  udp_frame(dev.mac, VIP, fragment=0x0010)]
        for frame in frames:
            assert dev.inject(frame)
        received, sent, dropped = app.run(4, 32)
        assert (received, sent, dropped) == (7, 1, 6)
        out = dev.captured(1)[0]
        assert parse_udp(out)["dst"] == backend(0)[1] and out[:6] == backend(0)[0].to_bytes(6, "little")
        assert dev.stats().sink_bad == 0 and dev.stats().tx_packets == 1
        kernel.stop("lb")
        kernel.stop("quiet")
    finally:
        dev.close()


def test_driver_panics_reassign_no_flow(rig):
    kernel, dev, app = rig
    app.run(40, 32)
    before = all_flows(app)
    for _ in range(3):
        kernel.faults.after("nic", 3)
        app.run(30, 32)
    assert len(kernel.events.history({"crash"}, "nic")) >= 3
    app.run(40, 32)
    assert same_on_common(flow_backends(sent_frames(dev)), before)
    assert all_flows(app) == before
    assert app.stats()[5] == 0  # no flow moved: every backend stayed healthy
    assert dev.stats().sink_bad == 0


def test_a_full_flow_table_still_steers_by_the_lookup_table(kernel):
    from redleaf_lab.devices.sim_ixgbe import SimIxgbe

    dev = SimIxgbe(kernel.heap, wire="generator", flows=64, capture=True, name="small")
    try:
        kernel.load("ixgbe", name="small", device=dev)
        app = kernel.load("maglev", name="tiny", net=kernel.proxy("small"), config={
            "backends": [backend(i) for i in range(3)], "table_size": 251, "flow_slots": 16})
        received, sent, dropped = app.run(40, 32)
        assert received == sent > 500 and dropped == 0
        assert app.stats()[3] == 16  # the table is full: the other flows are not tracked
        seen = flow_backends(sent_frames(dev))  # ... but each keeps its backend all the same
        assert all(app.backend_of(src, VIP, port, 9) == b for (src, port), b in seen.items())
        assert dev.stats().sink_bad == 0
        kernel.stop("tiny")
        kernel.stop("small")
    finally:
        dev.close()
