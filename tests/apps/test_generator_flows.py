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
