"""pingd over the ixgbe driver on the 82599 model, fed frames directly (no TAP, no root).

Checks that pingd answers an ARP request and an ICMP echo request for its address with
correct replies (checksums verified), ignores frames for other hosts, and survives
malformed frames (runts, truncated or lying IPv4 headers, a bad header checksum)
without a panic. Also shows that a domain's init() may call the capabilities it got
(pingd asks the driver for its MAC address while it loads).
"""

from __future__ import annotations

import struct

from redleaf_lab.devices.sim_ixgbe import SimIxgbe
from tests.devices.ixgbe_nic import inet_sum

ME = bytes([10, 1, 0, 2])
PEER_IP = bytes([10, 1, 0, 1])
PEER_MAC = bytes.fromhex("020000000001")


def checksum(data: bytes) -> int:
    """The Internet checksum to put in a header (0 when `data` already holds a correct one)."""
    return ~inet_sum(data) & 0xFFFF


def arp_request(target: bytes) -> bytes:
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + PEER_MAC + PEER_IP + b"\0" * 6 + target
    return b"\xff" * 6 + PEER_MAC + b"\x08\x06" + arp


def echo_request(target: bytes, seq: int, payload: bytes = b"redleaf lab ping") -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x77, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0,
                               PEER_IP, target))
    ip[10:12] = struct.pack("!H", checksum(bytes(ip)))
    return b"\x02\x00\x00\x00\x00\x99" + PEER_MAC + b"\x08\x00" + bytes(ip) + icmp


def test_pingd_answers_arp_and_echo_and_ignores_junk(kernel):
    dev = SimIxgbe(kernel.heap, wire="none", capture=True)
    try:
        net = kernel.load("ixgbe", device=dev)
        pingd = kernel.load("pingd", net=net, address=tuple(ME))  # init calls net
        mac = dev.mac
        good = echo_request(ME, 7)
        lying = bytearray(good)
        lying[16:18] = struct.pack("!H", 4000)  # total length beyond the frame
        bad_sum = bytearray(good)
        bad_sum[24:26] = b"\x00\x00"  # IPv4 header checksum wrong
        junk = [b"\x00" * 20, arp_request(ME)[:30], good[:40], bytes(lying), bytes(bad_sum),
                arp_request(bytes([10, 1, 0, 9])), echo_request(bytes([10, 1, 0, 9]), 1),
                bytes(range(256)) * 2]
        assert pingd.run(1, 32) == (0, 0, 0)  # lends its buffers to the RX ring
        for frame in [*junk, arp_request(ME), good]:
            assert dev.inject(frame), frame
        received, sent, dropped = pingd.run(4, 32)
        assert received == len(junk) + 2 and sent == 2 and dropped == 0
        arp_reply, echo_reply = dev.captured(2)
        assert arp_reply[:6] == PEER_MAC and arp_reply[6:12] == mac
        assert struct.unpack("!H", arp_reply[20:22])[0] == 2  # ARP reply
        assert arp_reply[28:32] == ME and arp_reply[32:38] == PEER_MAC
        ip = echo_reply[14:34]
        assert checksum(ip) == 0 and ip[12:16] == ME and ip[16:20] == PEER_IP
        icmp = echo_reply[34:34 + struct.unpack("!H", ip[2:4])[0] - 20]
        assert icmp[0] == 0 and checksum(icmp) == 0 and icmp.endswith(b"redleaf lab ping")
        assert kernel.domain("pingd").state == "running"
        assert kernel.domain("ixgbe").state == "running"
    finally:
        for name in ("pingd", "ixgbe"):
            if name in kernel.domains:
                kernel.stop(name)
        dev.close()
