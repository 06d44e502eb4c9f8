"""A real `ping` through the 82599 model's TAP wire, from a network namespace.

The test creates a TAP interface through the model (wire "tap"), moves it into a fresh
network namespace, gives it 10.77.0.1/24 there, and pings 10.77.0.2: a small ARP and
ICMP echo responder in this file polls the model's RX ring through the Device (the
register-level host of ixgbe_nic.py) and answers on the TX ring. The driver domain
replaces this responder later. Needs root and /dev/net/tun; everything it creates is
deleted in a finally.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import uuid

import pytest
from ixgbe_nic import Nic, inet_sum

from redleaf_lab.devices.sim_ixgbe import SimIxgbe

NIC_IP = bytes([10, 77, 0, 2])
PEER = "10.77.0.1/24"


def respond(frame: bytes, mac: bytes, ip: bytes) -> bytes | None:
    """The reply to an ARP request for `ip` or an ICMP echo request to it, else None."""
    if frame[12:14] == b"\x08\x06" and len(frame) >= 42:  # ARP (RFC 826)
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 1) or tpa != ip:
            return None
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + sha + spa
        return sha + mac + b"\x08\x06" + arp
    if frame[12:14] != b"\x08\x00" or len(frame) < 42:
        return None
    ihl = (frame[14] & 0xF) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    ip_hdr, icmp = frame[14:14 + ihl], frame[14 + ihl:14 + total]
    if ip_hdr[9] != 1 or ip_hdr[16:20] != ip or not icmp or icmp[0] != 8:
        return None
    body = b"\x00\x00\x00\x00" + icmp[4:]  # echo reply, checksum 0 for now
    body = body[:2] + struct.pack("!H", ~inet_sum(body) & 0xFFFF) + body[4:]
    hdr = bytearray(ip_hdr[:20])
    hdr[8] = 64
    hdr[10:12] = b"\x00\x00"
    hdr[12:16], hdr[16:20] = ip_hdr[16:20], ip_hdr[12:16]
    hdr[10:12] = struct.pack("!H", ~inet_sum(bytes(hdr)) & 0xFFFF)
    return frame[6:12] + mac + b"\x08\x00" + bytes(hdr) + body


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@pytest.mark.netns
def test_ping_gets_replies_through_the_tap_wire(kernel):
    if os.geteuid() != 0:
        pytest.skip("network namespaces and TAP devices need root")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is missing")
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed (apt-get install -y iproute2 iputils-ping)")
    tag = uuid.uuid4().hex[:8]
    ns, tap = f"rl-ixgbe-{tag}", f"rltap{tag}"
    dev = SimIxgbe(kernel.heap, wire="tap", tap_name=tap, threaded=True)
    ns_made = False
    try:
        assert dev.tap_name == tap
        sh("ip", "netns", "add", ns)
        ns_made = True
        sh("ip", "link", "set", tap, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", PEER, "dev", tap)
        sh("ip", "-n", ns, "link", "set", tap, "up")
        nic = Nic(dev, ring=64, promisc=False)
        nic.give_all()
        ping = subprocess.Popen(
            ["ip", "netns", "exec", ns, "ping", "-c", "3", "-W", "1", "-i", "0.3",
             str(".".join(map(str, NIC_IP)))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        answered = 0
        deadline = time.monotonic() + 20
        while ping.poll() is None and time.monotonic() < deadline:
            replies = [x for x in (respond(f, dev.mac, NIC_IP) for f in nic.rx()) if x]
            if replies:
                nic.tx(replies)
                answered += len(replies)
            time.sleep(0.001)
        if ping.poll() is None:
            ping.kill()
        out = ping.communicate(timeout=5)[0]
        assert ping.returncode == 0, out
        assert " 3 received" in out and answered >= 4, out  # at least one ARP + 3 echoes
        st = dev.stats()
        assert st.tap_rx >= 4 and st.tap_tx >= 4 and st.tap_errors == 0
    finally:
        dev.close()  # closing the TAP's file descriptor deletes the interface
        if ns_made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", tap], capture_output=True, timeout=20)
