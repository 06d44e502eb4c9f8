"""The 82599 model's flow-count mode: above 65,536 flows each frame's header is flow 0's
template patched (source address, port, flow id, both checksums updated incrementally).
Frames must be valid IPv4/UDP with every flow's own 5-tuple, over the whole flow range,
accepted by the sink; the flow count is checked at the limits."""

from __future__ import annotations

from collections import Counter

import pytest

from redleaf_lab.devices.sim_ixgbe import MAX_FLOWS, SimIxgbe
from tests.devices.ixgbe_nic import Nic, parse_udp


def expected_source(flow: int) -> tuple[int, int]:
    address = (10 << 24) | ((1 + (flow >> 16)) << 16) | (flow & 0xFFFF)
    return address, 10000 + flow % 50000


@pytest.mark.parametrize("flows", [65536, 65537, 1 << 20, MAX_FLOWS])
def test_every_frame_is_valid_with_its_own_5_tuple(kernel, flows):
    dev = SimIxgbe(kernel.heap, packet_size=64, flows=flows, seed=3)
    try:
        nic = Nic(dev, ring=256)
        nic.give_all()
        frames: list[bytes] = []
        while len(frames) < 3000:
            frames += nic.rx()
        fields = [parse_udp(f) for f in frames]  # checks both checksums
        for f in fields:
            assert (f["src"], f["sport"]) == expected_source(f["flow"])
            assert f["dst"] == 0x0A020001 and f["dport"] == 9 and f["flow"] < flows
        seen = Counter(f["flow"] for f in fields)
        assert max(seen) > flows * 0.9 and len(seen) > 2500  # spread over the whole range
        nic.tx(frames[:200])  # the sink checks them again, with the per-flow sequence
        stats = dev.stats()
        assert stats.sink_ok == 200 and stats.sink_bad == 0 and stats.sink_seq_errors == 0
    finally:
        dev.close()


@pytest.mark.parametrize("flows", [0, MAX_FLOWS + 1])
def test_flow_count_outside_the_range_is_refused(kernel, flows):
    with pytest.raises(ValueError, match="flows"):
        SimIxgbe(kernel.heap, flows=flows)


def test_replay_mode_sends_the_given_frames_with_their_weights(kernel):
    frames = [bytes([i]) * 60 for i in range(4)]
    for i, f in enumerate(frames):
        frames[i] = f[:12] + b"\x08\x00" + f[14:]  # dst MAC rewritten below
    dev = SimIxgbe(kernel.heap, packet_size=64, flows=4, seed=9)
    try:
        frames = [dev.mac + f[6:] for f in frames]
        dev.set_replay(frames, weights=[8, 4, 2, 0])  # the last is never picked
        nic = Nic(dev, ring=256)
        nic.give_all()
        got: list[bytes] = []
        while len(got) < 3000:
            got += nic.rx()
        seen = Counter(frames.index(f) for f in got)  # every frame is one of them, unchanged
        assert seen[3] == 0 and seen[0] > seen[1] > seen[2] > 0
        assert abs(seen[0] / len(got) - 8 / 14) < 0.05
        dev.set_replay(frames)  # uniform
        more: list[bytes] = []
        while len(more) < 2000:
            more += nic.rx()
        assert min(Counter(frames.index(f) for f in more).values()) > 350
        dev.set_replay([])  # back to the flows, after what the ring holds already
        nic.rx()
        assert all(parse_udp(f)["dport"] == 9 for f in nic.rx())
        for bad in ([b"short"], [b"x" * 1515]):
            with pytest.raises(ValueError):
                dev.set_replay(bad)
        with pytest.raises(ValueError):
            dev.set_replay(frames, weights=[1, -1, 1, 1])
    finally:
        dev.close()
