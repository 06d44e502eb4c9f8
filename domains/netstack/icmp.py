"""ICMP (RFC 792): echo replies and destination-unreachable messages.

Interface: `input(body, counters)` returns the ICMP body of an echo reply for an echo
request (None for everything else, counted); `unreachable(code, ip_header, ip_body)` is
the body of a destination-unreachable message quoting the offending datagram's header
and first 8 bytes of its data (RFC 792 page 4). Codes used: 2 protocol unreachable,
3 port unreachable (what Linux sends for UDP to a closed port, RFC 1122 3.2.2.1).
The Stack decides when not to send one (never about a broadcast or an ICMP error,
RFC 1122 3.2.2). Pure functions.
"""

import struct

from .inet import checksum

ECHO_REPLY, UNREACHABLE, ECHO_REQUEST = 0, 3, 8
PROTOCOL_UNREACHABLE, PORT_UNREACHABLE = 2, 3
ERROR_TYPES = (3, 4, 5, 11, 12)


def input(body: bytes, counters):
    if len(body) < 8:
        counters.drop("icmp_truncated")
        return None
    if checksum(body):
        counters.drop("icmp_bad_checksum")
        return None
    kind = body[0]
    if kind == ECHO_REQUEST:
        counters.add("icmp_echo_requests")
        reply = b"\x00\x00\x00\x00" + body[4:]
        return reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
    if kind == UNREACHABLE:
        counters.add("icmp_unreachable_in")
    else:
        counters.add("icmp_ignored")
    return None


def unreachable(code: int, ip_header: bytes, ip_body: bytes) -> bytes:
    message = struct.pack("!BBHI", UNREACHABLE, code, 0, 0) + ip_header + ip_body[:8]
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]
