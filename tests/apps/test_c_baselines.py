"""The C baselines of bench maglev and bench kv do the same work as the domains: C Maglev
sends valid frames to the same backends the domain's lookup table picks; the C store
answers memcached requests with the right values (checked on the model's capture)."""

from __future__ import annotations

import struct

import numpy as np
from redleaf_lab._core._redleaf_dev import ffi as dffi
from redleaf_lab._core._redleaf_dev import lib as dlib
from redleaf_lab.domains.maglev.population import populate, preferences

from redleaf_lab.bench.kv_requests import SERVER_IP, request_frames, value_bytes
from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from tests.devices.ixgbe_nic import parse_udp


def test_c_maglev_steers_like_the_domain(kernel):
    dev = SimIxgbe(kernel.heap, wire="generator", flows=64, capture=True)
    try:
        names = ["10.3.0.1", "10.3.0.2", "10.3.0.3"]
        lookup = np.array(populate([preferences(n, 251) for n in names], 251), dtype=np.int32)
        macs = np.array([[2, 0, 0, 0, 0, 16 + i] for i in range(3)], dtype=np.uint8)
        ips = np.array([[10, 3, 0, i + 1] for i in range(3)], dtype=np.uint8)
        vip = np.array([10, 2, 0, 1], dtype=np.uint8)
        nbytes = int(dlib.ixg_fwd_bench_bytes(512))
        mem = dev.dma_alloc(nbytes)
        out = dffi.new("ixg_fwd_result *")
        counts = dffi.new("ixg_maglev_counts *")
        rc = dlib.ixg_maglev_bench(dev._live(), mem.iova, nbytes, 512, 32, 3000, 10**9,
                                   dffi.from_buffer("int32_t[]", lookup), 251,
                                   dffi.from_buffer("uint8_t[]", macs),
                                   dffi.from_buffer("uint8_t[]", ips), 3, 10,
                                   dffi.from_buffer("uint8_t[]", vip), out, counts)
        assert rc == 0 and out.tx_packets >= 3000 and counts.steered >= 3000
        assert counts.misses == 64 and counts.rejected == 0  # each flow looked up once
        seen = {}
        for frame in dev.captured(64):
            f = parse_udp(frame)
            index = f["dst"] - 0x0A030001
            assert 0 <= index < 3 and frame[:6] == bytes(macs[index])
            assert seen.setdefault((f["src"], f["sport"]), index) == index
        assert dev.stats().sink_bad == 0
        dev.dma_free(mem.handle)
    finally:
        dev.close()


def test_c_store_answers_with_the_stored_values(kernel):
    dev = SimIxgbe(kernel.heap, wire="generator", capture=True)
    try:
        sets, gets = request_frames(dev.mac, 20, 16, 64)
        store = dffi.gc(dlib.ixg_kv_create(bytes(SERVER_IP), dev.mac, 11211, 8, 64, 64),
                        dlib.ixg_kv_destroy)
        nbytes = int(dlib.ixg_fwd_bench_bytes(512))
        mem = dev.dma_alloc(nbytes)
        counts = dffi.new("ixg_kv_counts *")
        for frames, packets in ((sets, 2000), (gets, 64)):
            dev.set_replay(frames)
            out = dffi.new("ixg_fwd_result *")
            assert dlib.ixg_kv_bench(dev._live(), mem.iova, nbytes, 512, 32, packets, 10**9,
                                     store, out, counts) == 0
        assert counts.errors == 0 and counts.hits >= 64
        for frame in dev.captured(64):
            body = frame[42 + 8:34 + struct.unpack("!H", frame[38:40])[0]]
            assert body.startswith(b"VALUE k") and body.endswith(b"\r\nEND\r\n")
            key = body.split(b" ")[1]
            assert body == b"VALUE %s 0 64\r\n%s\r\nEND\r\n" % (key, value_bytes(int(key[1:]), 64))
        assert dev.stats().sink_bad == 0
        dev.dma_free(mem.handle)
    finally:
        dev.close()
