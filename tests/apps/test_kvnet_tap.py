"""Real memcached clients against kvnet through the TAP wire: pymemcache (unchanged, over
UDP through its socket_module hook: redleaf_lab/bench/memcache_udp.py) sets and gets
300 keys one per request and 10,000 keys ten per request (set_many: ten commands in a
datagram; get_many: ten keys in one get), byte-exact, and libmemcached's memcaslap in its UDP mode runs its set/get mix
with every get verified: TAP in a namespace the test creates, the 82599 model on its
own thread, the ixgbe driver behind a shadow, kvnet over it. Then the driver is
panicked: every key is still there afterwards (the store is another domain).
Needs root, /dev/net/tun and `ip`; everything it creates is deleted in a finally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow

KV_IP = (10, 78, 0, 2)
PEER = "10.78.0.1/24"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


def client(ns: str, keys: int, key_size: int, value_size: int, batch: int) -> dict:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "redleaf_lab.bench.memcache_udp",
         ".".join(map(str, KV_IP)), "11211", "--keys", str(keys), "--key-size", str(key_size),
         "--value-size", str(value_size), "--batch", str(batch)],
        capture_output=True, text=True, timeout=120, cwd=os.getcwd())
    assert done.stdout, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.netns
def test_pymemcache_sets_and_gets_10000_keys_byte_exact_through_tap(kernel):
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or shutil.which("ip") is None:
        pytest.skip("needs root, /dev/net/tun and `ip`")
    tag = uuid.uuid4().hex[:8]
    ns, tap = f"rl-kv-{tag}", f"rlkv{tag}"
    dev = SimIxgbe(kernel.heap, wire="tap", tap_name=tap, threaded=True)
    stop = threading.Event()
    errors: list[BaseException] = []
    server = None
    ns_made = False
    try:
        sh("ip", "netns", "add", ns)
        ns_made = True
        sh("ip", "link", "set", tap, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", PEER, "dev", tap)
        sh("ip", "-n", ns, "link", "set", tap, "up")
        kernel.load("ixgbe", device=dev)
        net = make_shadow(kernel, "ixgbe", ShadowPolicy(backoff_s=0.0))
        kv = kernel.load("kvnet", net=net, config={"address": KV_IP, "capacity": 1 << 15})

        def serve() -> None:
            try:
                while not stop.is_set():
                    if kv.run(4, 32)[0] == 0:
                        time.sleep(0.0002)
            except BaseException as exc:  # reported below
                errors.append(exc)

        kv.run(1, 32)  # lend the RX buffers first
        server = threading.Thread(target=serve, name="kvnet-loop")
        server.start()
        single = client(ns, 300, 16, 64, 1)  # set and get, one key a request
        assert single["verified"] == single["stored"] == 300, single
        first = client(ns, 10_000, 16, 64, 10)  # set_many and get_many, ten keys a request
        assert first["verified"] == first["stored"] == 10_000, first
        assert first["mismatches"] == 0
        if shutil.which("memcaslap"):  # libmemcached-tools' load generator, in its UDP mode
            slap = subprocess.run(
                ["ip", "netns", "exec", ns, "memcaslap", "-s", "10.78.0.2:11211", "-U", "-t",
                 "2s", "-T", "1", "-c", "1", "-X", "64", "--verify=1.0"],
                capture_output=True, text=True, timeout=60)
            report = dict(line.split(": ", 1) for line in slap.stdout.splitlines()
                          if ": " in line)
            assert int(report["cmd_get"]) > 50 and int(report["cmd_set"]) > 5, slap.stdout
            assert report["verify_failed"].strip() == "0" and report["get_misses"].strip() == "0"
        kernel.panic("ixgbe")  # the shadow restarts the driver at kvnet's next call
        deadline = time.monotonic() + 10
        while kernel.restarts("ixgbe") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kernel.restarts("ixgbe") == 1
        # every key survived: a second client run gets them all back, ten per request
        again = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "from pymemcache.client.base import Client\n"
             "from redleaf_lab.bench.memcache_udp import UDP, key_for, value_for\n"
             "c = Client(('10.78.0.2', 11211), socket_module=UDP, default_noreply=False)\n"
             "bad = 0\n"
             "for start in range(0, 10000, 10):  # multi-get: ten keys per datagram\n"
             "    keys = [key_for(i, 16) for i in range(start, start + 10)]\n"
             "    got = c.get_many(keys)\n"
             "    bad += sum(got.get(k) != value_for(start + j, 64) for j, k in enumerate(keys))\n"
             "print(bad)"],
            capture_output=True, text=True, timeout=120)
        assert again.stdout.strip() == "0", again.stdout + again.stderr
        gets, sets, _deletes, hits, errors_seen, _dropped, keys, _ignored = kv.stats()
        assert keys >= 10_000 and sets >= 10_000 and gets >= 2_000 and hits >= 20_000
        assert errors_seen == 0
        assert not errors, errors[0]
    finally:
        stop.set()
        if server is not None:
            server.join(timeout=10)
        for name in ("kvnet", "ixgbe"):
            if name in kernel.domains:
                kernel.stop(name)
        dev.close()
        if ns_made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", tap], capture_output=True, timeout=20)
