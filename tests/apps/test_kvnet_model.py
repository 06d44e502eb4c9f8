"""kvnet on the 82599 model (no root needed): the generator replays memcached requests;
a panic of the driver under the store (behind a shadow) loses no key, and every get
after it still hits; replies pass the model's sink checks (IPv4 and UDP checksums)."""

from __future__ import annotations

from redleaf_lab.bench.kv_requests import SERVER_IP, request_frames
from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow


def test_a_driver_panic_loses_no_key(kernel):
    dev = SimIxgbe(kernel.heap, wire="generator", capture=True)
    try:
        sets, gets = request_frames(dev.mac, 50, 16, 64)
        dev.set_replay(sets)
        kernel.load("ixgbe", name="nic", device=dev)
        shadow = make_shadow(kernel, "nic", ShadowPolicy(max_restarts=100))
        kv = kernel.load("kvnet", net=shadow, config={"address": tuple(SERVER_IP),
                                                       "capacity": 256})
        for _ in range(50):
            kv.run(8, 32)
            if kv.stats()[6] == 50:
                break
        assert kv.stats()[6] == 50
        dev.set_replay(gets)
        for _ in range(3):
            kernel.faults.after("nic", 4)
            kv.run(20, 32)
        assert kernel.crashes("nic") >= 3
        gets0, hits0 = kv.stats()[0], kv.stats()[3]
        kv.run(20, 32)
        gets_n, _sets, _deletes, hits_n, errors, dropped, keys, _ignored = kv.stats()
        assert keys == 50 and errors == 0 and dropped == 0
        assert gets_n - gets0 > 100 and hits_n - hits0 == gets_n - gets0  # every get hits
        assert dev.stats().sink_bad == 0
        reply = dev.captured(1)[0]
        assert b"VALUE k" in reply and reply.rstrip(b"\0").endswith(b"END\r\n")
    finally:
        for name in ("kvnet", "nic"):
            if name in kernel.domains:
                kernel.stop(name)
        dev.close()
