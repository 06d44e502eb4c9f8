"""A real `ping` reaches the lab's ICMP responder through the ixgbe driver and a TAP wire.

The test creates a TAP interface through the 82599 model (wire "tap", model on its own
thread), moves it into a network namespace it creates, gives it 10.77.0.1/24 there,
loads the ixgbe driver domain behind a shadow and the `pingd` domain (ARP and ICMP echo
responder for 10.77.0.2) over it, and runs `ping` inside the namespace: every request
crosses the TAP, the model's RX ring, the driver, a proxy into pingd, and back. Then the
driver is panicked; the shadow restarts it (NIC reset and re-init) and a second `ping`
gets its replies too. Needs root, /dev/net/tun, `ip` and `ping` (CI installs
iputils-ping); everything it creates is deleted in a finally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow

NIC_IP = (10, 77, 0, 2)
PEER = "10.77.0.1/24"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


def ping(ns: str, count: int) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", "2",
                           "-i", "0.3", ".".join(map(str, NIC_IP))],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.netns
def test_ping_gets_replies_from_pingd_through_the_driver_and_after_a_panic(kernel):
    if os.geteuid() != 0:
        pytest.skip("network namespaces and TAP devices need root")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is missing")
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed (apt-get install -y iproute2 iputils-ping)")
    tag = uuid.uuid4().hex[:8]
    ns, tap = f"rl-ping-{tag}", f"rltap{tag}"
    dev = SimIxgbe(kernel.heap, wire="tap", tap_name=tap, threaded=True)
    stop = threading.Event()
    errors: list[BaseException] = []
    ns_made = False
    responder = None
    try:
        sh("ip", "netns", "add", ns)
        ns_made = True
        sh("ip", "link", "set", tap, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", PEER, "dev", tap)
        sh("ip", "-n", ns, "link", "set", tap, "up")
        kernel.load("ixgbe", device=dev)
        net = make_shadow(kernel, "ixgbe", ShadowPolicy(backoff_s=0.0))
        pingd = kernel.load("pingd", net=net, address=NIC_IP)

        rounds = [0]

        def serve() -> None:
            try:
                while not stop.is_set():
                    pingd.run(4, 32)
                    rounds[0] += 1
                    stop.wait(0.001)
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        def served_after_recovery(timeout: float = 10.0) -> None:
            """Wait until pingd has run a full round on the restarted driver: frames that
            arrive while the NIC is reset and its RX ring is empty are dropped (counted in
            MPC), as on real hardware, and ping would count them as lost."""
            deadline = time.monotonic() + timeout
            while kernel.restarts("ixgbe") < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen = rounds[0]
            while rounds[0] < seen + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert rounds[0] >= seen + 2, "pingd did not run after the driver's restart"

        assert pingd.run(1, 32)[0] == 0  # lends pingd's buffers to the RX ring first
        responder = threading.Thread(target=serve, name="pingd-loop")
        responder.start()
        assert " 3 received" in ping(ns, 3)
        kernel.panic("ixgbe")  # asynchronous: the shadow restarts it at the next call
        served_after_recovery()
        assert " 3 received" in ping(ns, 3)
        assert kernel.crashes("ixgbe") == 1 and kernel.restarts("ixgbe") == 1
        assert net.shadow_stats.recoveries >= 1
        stats = dev.stats()
        assert stats.tap_rx >= 7 and stats.tap_tx >= 7 and stats.tap_errors == 0
        assert not errors, errors[0]
    finally:
        stop.set()
        if responder is not None:
            responder.join(timeout=10)
        for name in ("pingd", "ixgbe"):
            if name in kernel.domains:
                kernel.stop(name)
        dev.close()  # closing the TAP's file descriptor deletes the interface
        if ns_made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", tap], capture_output=True, timeout=20)
