"""The TAP part of `bench kv`: kvnet against real memcached, one client, one namespace.

Creates a network namespace and the 82599 model's TAP interface in it (10.78.0.1/24;
kvnet is 10.78.0.2), loads the ixgbe driver behind a shadow and kvnet behind a shadow
too, serves from a thread, and runs the pymemcache-over-UDP client (memcache_udp.py)
inside the namespace: `keys` sets and gets, sequential. Then Debian's memcached is
started on the namespace's loopback (UDP port 11211) and the same client runs against
it; memcached is stopped. Last, kvnet is panicked (the store's own crash): the shadow
restarts it; reported are the keys lost and the outage: a probe in the namespace sends
`get` requests for 2 s (2 ms timeout each), the panic comes after 1 s, and the longest
gap between two replies is the time the store did not answer.
Everything created is removed in a finally. Needs root, /dev/net/tun, ip, memcached.

Interface: `tap_rows(kernel, keys) -> list[dict]` (rows with "tap": True).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from ..idl.shadow import ShadowPolicy, make_shadow
from .kv_requests import SERVER_IP

OUTAGE_PROBE = """
import json, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.002)
t0 = last = time.perf_counter()
rid = replies = 0
gap = 0.0
while time.perf_counter() - t0 < float(sys.argv[2]):
    rid = (rid + 1) & 0xFFFF
    s.sendto(struct.pack("!HHHH", rid, 0, 1, 0) + b"get k0000000\\r\\n", (sys.argv[1], 11211))
    try:
        s.recv(2048)
    except TimeoutError:
        continue
    now = time.perf_counter()
    gap, last, replies = max(gap, now - last), now, replies + 1
print(json.dumps({"replies": replies, "longest_gap_s": gap}))
"""


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


def _client(ns: str, host: str, keys: int) -> dict[str, Any]:
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "redleaf_lab.bench.memcache_udp", host, "11211", "--keys", str(keys),
                           "--key-size", "8", "--value-size", "64"],
                          capture_output=True, text=True, timeout=300)
    if not done.stdout:
        raise RuntimeError(f"client failed: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def tap_rows(kernel: Any, keys: int) -> list[dict[str, Any]]:
    from ..devices.sim_ixgbe import SimIxgbe

    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("memcached"):
        return [{"tap": True, "skipped": "needs root, /dev/net/tun and memcached"}]
    tag = uuid.uuid4().hex[:8]
    ns, tap = f"rl-kvb-{tag}", f"rlkvb{tag}"
    dev = SimIxgbe(kernel.heap, wire="tap", tap_name=tap, threaded=True, name="nic-tap")
    stop = threading.Event()
    server = memcached = None
    rows: list[dict[str, Any]] = []
    try:
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "set", tap, "netns", ns)
        _sh("ip", "-n", ns, "addr", "add", "10.78.0.1/24", "dev", tap)
        _sh("ip", "-n", ns, "link", "set", tap, "up")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        kernel.load("ixgbe", name="nic-tap", device=dev)
        net = make_shadow(kernel, "nic-tap", ShadowPolicy(backoff_s=0.0))
        kernel.load("kvnet", name="kv-tap", net=net,
                    config={"address": tuple(SERVER_IP), "capacity": 1 << 15})
        kv = make_shadow(kernel, "kv-tap", ShadowPolicy(backoff_s=0.0, max_restarts=100))

        def serve() -> None:
            while not stop.is_set():
                if kv.run(4, 32)[0] == 0:
                    time.sleep(0.0002)

        kv.run(1, 32)
        server = threading.Thread(target=serve, name="kvnet-bench", daemon=True)
        server.start()
        host = ".".join(map(str, SERVER_IP))
        rows.append({"tap": True, "server": "kvnet", **_client(ns, host, keys)})
        memcached = subprocess.Popen(["ip", "netns", "exec", ns, "memcached", "-U", "11211",
                                      "-p", "11211", "-l", "127.0.0.1", "-u", "root"])
        time.sleep(0.5)
        rows.append({"tap": True, "server": "memcached 1.6 (loopback)",
                     **_client(ns, "127.0.0.1", keys)})
        held = kv.stats()[6]
        probe = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                  OUTAGE_PROBE, host, "2.0"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the probe is getting replies: now the store panics
        kernel.panic("kv-tap")
        out, _ = probe.communicate(timeout=60)
        outage = json.loads(out.strip().splitlines()[-1])
        rows.append({"tap": True, "server": "kvnet store panic", "keys_before": held,
                     "keys_after": kv.stats()[6], "keys_lost": held - kv.stats()[6],
                     "probe_replies": outage["replies"],
                     "longest_gap_between_replies_s": round(outage["longest_gap_s"], 4),
                     "restarts": kernel.restarts("kv-tap")})
    finally:
        stop.set()
        if server is not None:
            server.join(timeout=10)
        if memcached is not None:
            memcached.terminate()
            memcached.wait(timeout=10)
        for name in ("kv-tap", "nic-tap"):
            if name in kernel.domains:
                kernel.stop(name)
        dev.close()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", tap], capture_output=True, timeout=20)
    return rows
