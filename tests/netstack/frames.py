"""Hand-built frames for the stack tests (dpkt builds and parses them), and `Host`, a
sans-I/O Stack under test with a clock the test moves.

`Host` is the server side (10.9.0.2): its ARP entry for the client is filled in, so
what it sends leaves at once; `host.feed(frame)` delivers a frame and returns the
frames it answered, parsed (`Seg` for TCP). The client side is the test itself: it
writes each segment with `tcp(...)` as RFC 9293's examples do.
"""

from __future__ import annotations

from dataclasses import dataclass

import dpkt
from redleaf_lab.domains.netstack.sockets import Sockets
from redleaf_lab.domains.netstack.stack import Stack
from redleaf_lab.domains.netstack.tcp import TcpOptions
from redleaf_lab.domains.netstack.tcp_segment import ACK, FIN, PSH, RST, SYN

from .wire import CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC

__all__ = ["ACK", "CLIENT_IP", "CLIENT_MAC", "FIN", "PSH", "RST", "SERVER_IP", "SERVER_MAC",
           "SYN", "Host", "Seg", "eth", "ip_packet", "tcp", "udp"]


def eth(payload: bytes, ethertype: int = 0x0800, dst: bytes = SERVER_MAC,
        src: bytes = CLIENT_MAC) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=payload))


def ip_packet(proto: int, body, src: bytes = CLIENT_IP, dst: bytes = SERVER_IP,
              **fields: int) -> bytes:
    packet = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=fields.pop("ttl", 64), data=body, **fields)
    return bytes(packet)


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"",
        win: int = 65535, mss: int | None = None, src: bytes = CLIENT_IP) -> bytes:
    opts = b"" if mss is None else bytes((2, 4, mss >> 8, mss & 0xFF))
    segment = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win,
                           opts=opts, data=data)
    segment.off = (20 + len(opts)) // 4
    return eth(ip_packet(6, segment, src=src))


def udp(sport: int, dport: int, data: bytes, dst: bytes = SERVER_IP) -> bytes:
    datagram = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    datagram.ulen = 8 + len(data)
    return eth(ip_packet(17, datagram, dst=dst))


@dataclass
class Seg:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    data: bytes
    mss: int | None

    def has(self, flags: int) -> bool:
        return self.flags & flags == flags


def parse(frame: bytes):
    packet = dpkt.ethernet.Ethernet(frame)
    body = packet.data
    if isinstance(body, dpkt.ip.IP) and isinstance(body.data, dpkt.tcp.TCP):
        t = body.data
        mss = None
        for kind, value in dpkt.tcp.parse_opts(t.opts):
            if kind == dpkt.tcp.TCP_OPT_MSS:
                mss = int.from_bytes(value, "big")
        return Seg(t.sport, t.dport, t.seq, t.ack, t.flags, t.win, bytes(t.data), mss)
    return packet


class Host:
    """The stack under test, its sockets and a clock."""

    def __init__(self, **options: float) -> None:
        self.stack = Stack(SERVER_MAC, SERVER_IP, options=TcpOptions(**options), seed=3)
        self.stack.arp.cache[CLIENT_IP] = (CLIENT_MAC, 1e12)
        self.sockets = Sockets(self.stack)
        self.now = 0.0

    def feed(self, *frames: bytes) -> list:
        for frame in frames:
            self.stack.input(frame, self.now)
        return self.flush()

    def flush(self) -> list:
        self.stack.flush_acks()
        return [parse(f) for f in self.stack.drain()]

    def advance(self, seconds: float) -> list:
        self.now += seconds
        self.stack.now = self.now
        self.stack.tick(self.now)
        return self.flush()

    def count(self, name: str) -> int:
        return self.stack.counters.get(name)

    def conn(self, sport: int = 40000, dport: int = 80):
        return self.stack.tcp.connections.get((CLIENT_IP, sport, dport))

    def listen(self, port: int = 80, backlog: int = 8) -> int:
        fd = self.sockets.socket(1)
        assert self.sockets.bind(fd, port) == 0 and self.sockets.listen(fd, backlog) == 0
        return fd

    def handshake(self, sport: int = 40000, dport: int = 80, iss: int = 1000,
                  win: int = 65535, mss: int | None = 1460):
        """Passive open from the client's side; returns (server ISS, accepted fd)."""
        out = self.feed(tcp(sport, dport, iss, 0, SYN, win=win, mss=mss))
        assert len(out) == 1 and out[0].has(SYN | ACK) and out[0].ack == iss + 1, out
        server_iss = out[0].seq
        assert self.feed(tcp(sport, dport, iss + 1, server_iss + 1, ACK, win=win)) == []
        listener = next(fd for fd, s in self.sockets.table.items() if s.listener is not None)
        fd, _ip, _port = self.sockets.accept(listener)
        assert fd >= 0
        return server_iss, fd
