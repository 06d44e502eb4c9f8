"""pingd: answers ARP requests (RFC 826) and ICMP echo requests (RFC 792) for one IPv4
address, over a `Net` capability: the host a real `ping` reaches through the TAP wire.

Interface: `NetApp.run(rounds, batch)`: `rounds` rounds of: receive up to `batch`
frames; turn each ARP request for our address into its reply and each echo request to
our address into its echo reply, in the same buffer (zero copy: the reply goes out in
the packet that brought the request); transmit the replies; give everything else back
to the receive ring. Returns (received, sent, dropped) over this incarnation's life.
`address` (a capability given at load) is the IPv4 address as four ints.

This is a control-plane application: it looks at each frame in Python, which is fine
at ping rates (the data-plane apps, fwd and pktgen, never do). Malformed frames,
frames for other hosts and other protocols are ignored, never a panic.

Ownership: the packet pool and the deques belong to this domain; buffers are lent to
the driver inside `submit_and_poll` and while they sit on its rings.
"""

import struct

from redleaf_lab.api import RRefDeque
from redleaf_lab.interfaces.net import RING_SLOTS, Packet, PacketPool

from .inet import arp_reply, checksum

ETH_ARP, ETH_IPV4 = b"\x08\x06", b"\x08\x00"


def reply_to(frame: bytes, mac: bytes, ip: bytes):
    """The reply frame to an ARP request for `ip` or an echo request to `ip`, else None."""
    if len(frame) < 42:
        return None
    if frame[12:14] == ETH_ARP:
        return arp_reply(frame, mac, ip)
    if frame[12:14] != ETH_IPV4 or frame[14] >> 4 != 4:
        return None
    ihl = (frame[14] & 0xF) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    if ihl < 20 or total < ihl + 8 or 14 + total > len(frame):
        return None
    header, icmp = frame[14:14 + ihl], frame[14 + ihl:14 + total]
    if header[9] != 1 or header[16:20] != ip or icmp[0] != 8:
        return None
    if checksum(header) or checksum(icmp):  # a damaged request: drop it, as hosts do
        return None
    echo = b"\x00\x00\x00\x00" + icmp[4:]  # type 0 (echo reply), code 0, checksum later
    echo = echo[:2] + struct.pack("!H", checksum(echo)) + echo[4:]
    out = bytearray(header[:20])  # options dropped
    out[0] = 0x45
    out[2:4] = struct.pack("!H", 20 + len(echo))
    out[8] = 64  # TTL
    out[10:12] = b"\x00\x00"
    out[12:16], out[16:20] = header[16:20], header[12:16]
    out[10:12] = struct.pack("!H", checksum(bytes(out)))
    return frame[6:12] + mac + ETH_IPV4 + bytes(out) + echo


class PingD:
    def __init__(self, ctx, net, address) -> None:
        self._ctx = ctx
        self._net = net
        self._ip = bytes(int(x) & 0xFF for x in address)
        if len(self._ip) != 4:
            raise ValueError(f"pingd needs an IPv4 address as four numbers, got {address!r}")
        number = net.mac_address()  # first byte in the low bits
        self._mac = bytes((number >> (8 * i)) & 0xFF for i in range(6))
        self._pool = PacketPool(2 * RING_SLOTS)
        self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)  # buffers for the RX ring
        self._got = RRefDeque.new(Packet, RING_SLOTS)
        self._replies = RRefDeque.new(Packet, RING_SLOTS)
        self._pool.fill(self._free, RING_SLOTS)
        self._received = 0
        self._sent = 0

    def run(self, rounds: int, batch: int) -> tuple:
        net = self._net
        for _ in range(rounds):
            n, self._free, self._got = net.submit_and_poll(self._free, self._got, False)
            self._received += n
            if n:
                self._answer()
            if len(self._replies):
                sent, self._replies, self._free = net.submit_and_poll(
                    self._replies, self._free, True)
                self._sent += sent
            elif n == 0:  # idle: count buffers lost in a driver crash, top the RX supply up
                held = len(self._free) + len(self._got) + len(self._replies)
                self._pool.reconcile(held, net)
                self._pool.fill(self._free, RING_SLOTS)
        return (self._received, self._sent, self._pool.dropped)

    def _answer(self) -> None:
        """Turn requests into replies in place; everything else goes back to the RX supply."""
        keep = []
        replies = []
        for packet in self._got.pop_many():
            view = packet.array()
            length = int(view["len"])
            reply = reply_to(bytes(view["data"][:length]), self._mac, self._ip)
            if reply is not None:
                view["data"][: len(reply)] = list(reply)
                view["len"] = len(reply)
                replies.append(packet)
            else:
                keep.append(packet)
            del view
        self._free.push_many(keep)
        self._replies.push_many(replies)


def init(ctx, net, address) -> PingD:
    return PingD(ctx, net, address)
