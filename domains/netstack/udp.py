"""UDP (RFC 768): datagram validation, checksums and construction.

Interface: `parse(src, dst, body, counters)` returns (source port, destination port,
data) of a valid datagram, else None (counted); `build(src, dst, sport, dport, data)`
is a datagram with its checksum. Rules: the length field must cover the 8-byte header
and fit in the IP body (bytes after it are ignored); a checksum of 0 means "none"
(RFC 768), any other must verify over the pseudo header; an outgoing checksum that
computes to 0 is sent as 0xFFFF. Port 0 is not a valid destination. Delivery to
sockets and port-unreachable replies are the Stack's (stack.py). Pure functions.
"""

import struct

from .inet import checksum, pseudo_sum
from .ipv4 import PROTO_UDP

HEADER = 8


def parse(src: bytes, dst: bytes, body: bytes, counters):
    if len(body) < HEADER:
        counters.drop("udp_truncated")
        return None
    sport, dport, length, sent_sum = struct.unpack("!HHHH", body[:8])
    if length < HEADER or length > len(body):
        counters.drop("udp_bad_length")
        return None
    datagram = body[:length]
    if sent_sum and checksum(datagram, pseudo_sum(src, dst, PROTO_UDP, length)):
        counters.drop("udp_bad_checksum")
        return None
    if dport == 0:
        counters.drop("udp_port_zero")
        return None
    counters.add("udp_in")
    return sport, dport, datagram[8:]


def build(src: bytes, dst: bytes, sport: int, dport: int, data: bytes) -> bytes:
    length = HEADER + len(data)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + data
    value = checksum(datagram, pseudo_sum(src, dst, PROTO_UDP, length)) or 0xFFFF
    return datagram[:6] + struct.pack("!H", value) + datagram[8:]
