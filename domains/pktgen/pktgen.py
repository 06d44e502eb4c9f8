"""pktgen: a packet generator domain over a `Net` capability (MoonGen's role, in small).

Interface: `NetApp.run(rounds, batch)`: each round transmits up to `batch` frames and
takes back the buffers whose transmission finished; they are sent again as they are,
so after set-up there is no work per packet. Every buffer holds the same 64-byte
IPv4/UDP frame (valid IPv4 header checksum, UDP checksum 0 = none, RFC 768), from
the port's own MAC address to the broadcast address. Returns (received, sent,
dropped): received is always 0 (this app does not read the RX ring); dropped counts
buffers lost in driver crashes.

Ownership: the pool and the deques belong to this domain; frames are written once,
when a buffer joins the pool (its `data`, then `len`).
"""

import struct

import numpy as np

from redleaf_lab.api import RpcError, RRefDeque
from redleaf_lab.interfaces.net import RING_SLOTS, Packet, PacketPool

from .inet import checksum

FRAME_BYTES = 60  # without FCS: 64 bytes on the wire, the 10 GbE line-rate case (14.88 Mpps)
SRC_IP, DST_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC_PORT, DST_PORT = 4321, 1234


def udp_frame(src_mac: int, size: int) -> bytes:
    """An Ethernet + IPv4 + UDP frame of `size` bytes (without FCS)."""
    payload = bytes(size - 14 - 20 - 8)
    udp = struct.pack(">HHHH", SRC_PORT, DST_PORT, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, SRC_IP, DST_IP)
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    mac = src_mac.to_bytes(8, "little")[:6]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp


class PktGen:
    def __init__(self, ctx, net, size: int = FRAME_BYTES) -> None:
        self._ctx = ctx
        self._net = net
        self._size = size
        self._frame = None  # built at the first run: no calls out of a domain during init
        self._pool = PacketPool(2 * RING_SLOTS)
        self._ready = RRefDeque.new(Packet, 2 * RING_SLOTS)  # frames to send
        self._sent = 0

    def _start(self) -> None:
        frame = udp_frame(self._net.mac_address(), self._size)
        self._frame = np.array(list(frame), dtype=np.uint8)
        self._pool.fill(self._ready)
        self._stamp(self._ready)

    def _stamp(self, dq) -> None:
        """Write the frame into every buffer of `dq`, in place (one scatter per field)."""
        data = np.zeros((len(dq), Packet.dtype["data"].shape[0]), dtype=np.uint8)
        data[:, : len(self._frame)] = self._frame
        dq.set("data", data)
        dq.set("len", len(self._frame))

    def run(self, rounds: int, batch: int) -> tuple:
        if self._frame is None:
            self._start()
        net, ready = self._net, self._ready
        out = RRefDeque.new(Packet, batch)
        for _ in range(rounds):
            if len(out) < batch and len(ready):
                ready.move_to(out, batch - len(out))
            try:
                sent, out, ready = net.submit_and_poll(out, ready, True)
            except RpcError:  # no shadow, or it gave up: start with fresh deques
                out = RRefDeque.new(Packet, batch)
                ready = self._ready = RRefDeque.new(Packet, 2 * RING_SLOTS)
                continue
            self._sent += sent
            if sent == 0:
                self._refill(ready, out)
        out.move_to(ready)  # the ready deque holds the whole population
        self._ready = ready
        return (0, self._sent, self._pool.dropped)

    def _refill(self, ready, out) -> None:
        """Nothing could be sent: replace buffers lost in a driver crash, stamped."""
        lost = self._pool.reconcile(len(ready) + len(out), self._net)
        if lost:
            fresh = RRefDeque.new(Packet, lost)
            self._pool.fill(fresh)
            self._stamp(fresh)
            fresh.move_to(ready)


def init(ctx, net) -> PktGen:
    return PktGen(ctx, net)
