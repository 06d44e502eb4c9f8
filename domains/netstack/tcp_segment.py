"""TCP segments (RFC 9293 section 3.1): parse, validate and build headers and options.

Interface: `parse(src, dst, body, counters)` returns a `Segment` or None (counted);
`build(src, dst, sport, dport, seq, ack, flags, window, data, mss)` returns the bytes
of a segment with its checksum (over the pseudo header, RFC 9293 3.1). Sequence-number
arithmetic modulo 2^32 (RFC 9293 3.4): `lt`, `le`, `add`.

Validation: the data offset must cover the 20-byte header and fit the body; the
checksum must verify; options are walked (RFC 9293 3.2: End, No-Op, and kind/length
pairs; a length below 2 or past the header is malformed); only MSS (kind 2, length 4)
is used, the rest (window scale, SACK, timestamps) are skipped, so the peer never
scales or SACKs: we do not send those options back. Impossible flag combinations (SYN
with FIN or RST, e.g. a segment with every flag set) and port 0 are dropped.
"""

import struct

from .inet import checksum, pseudo_sum
from .ipv4 import PROTO_TCP

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
HEADER = 20
MASK = 0xFFFFFFFF


def lt(a: int, b: int) -> bool:
    """a < b in sequence space."""
    return ((a - b) & MASK) > 0x7FFFFFFF


def le(a: int, b: int) -> bool:
    return a == b or ((a - b) & MASK) > 0x7FFFFFFF


def add(a: int, n: int) -> int:
    return (a + n) & MASK


class Segment:
    """One parsed segment: ports, seq, ack, flags, window, MSS option (or 0), data."""

    def __init__(self, sport: int, dport: int, seq: int, ack: int, flags: int,
                 window: int, mss: int, data: bytes) -> None:
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.mss = mss
        self.data = data

    @property
    def length(self) -> int:
        """SEG.LEN: data plus one for each of SYN and FIN."""
        return len(self.data) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)


def parse(src: bytes, dst: bytes, body: bytes, counters):
    if len(body) < HEADER:
        counters.drop("tcp_truncated")
        return None
    sport, dport, seq, ack, offset_flags, window, _sum, _urg = struct.unpack("!HHIIHHHH", body[:20])
    offset = (offset_flags >> 12) * 4
    if offset < HEADER or offset > len(body):
        counters.drop("tcp_bad_offset")
        return None
    if checksum(body, pseudo_sum(src, dst, PROTO_TCP, len(body))):
        counters.drop("tcp_bad_checksum")
        return None
    flags = offset_flags & 0x3F
    if flags & SYN and flags & (FIN | RST):
        counters.drop("tcp_bad_flags")
        return None
    if sport == 0 or dport == 0:
        counters.drop("tcp_port_zero")
        return None
    mss = 0
    at = HEADER
    while at < offset:
        kind = body[at]
        if kind == 0:
            break
        if kind == 1:
            at += 1
            continue
        if at + 1 >= offset or body[at + 1] < 2 or at + body[at + 1] > offset:
            counters.drop("tcp_bad_options")
            return None
        if kind == 2:
            if body[at + 1] != 4:
                counters.drop("tcp_bad_options")
                return None
            mss = (body[at + 2] << 8) | body[at + 3]
        at += body[at + 1]
    counters.add("tcp_in")
    return Segment(sport, dport, seq, ack, flags, window, mss, body[offset:])


def build(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
          window: int, data: bytes = b"", mss: int = 0) -> bytes:
    options = struct.pack("!BBH", 2, 4, mss) if mss else b""
    offset = (HEADER + len(options)) // 4
    segment = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (offset << 12) | flags,
                          window, 0, 0) + options + data
    value = checksum(segment, pseudo_sum(src, dst, PROTO_TCP, len(segment)))
    return segment[:16] + struct.pack("!H", value) + segment[18:]
