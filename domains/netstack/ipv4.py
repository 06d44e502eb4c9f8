"""IPv4 (RFC 791): header validation on input, header construction on output.

Interface: `parse(payload, our_ip, counters)` returns (protocol, source, destination,
header bytes, body) for a datagram this host must process, else None after counting
why it was dropped; `build(src, dst, protocol, body, ident)` is a complete datagram.

Input rules (RFC 791 section 3.1, RFC 1122 section 3.2.1):
* version 4 and IHL 5 only: a header with options is dropped (`ip_options`), not
  silently accepted; IHL below 5 is a bad header;
* total length within the frame (Ethernet padding after it is trimmed);
* header checksum (RFC 1071) must verify;
* fragments (MF set or a non-zero offset) are dropped: this stack does not reassemble
  (it sets DF on everything it sends, and its MSS keeps segments within one frame);
* TTL 0 is never valid on arrival; a source that is broadcast or multicast is bogus;
* the destination must be our address or a broadcast.
Output: DF set, TTL 64, a per-stack identification counter, checksum filled in.
Pure functions; counters belong to the caller.
"""

import struct

from .inet import checksum

HEADER = 20
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
TTL = 64
LIMITED_BROADCAST = b"\xff\xff\xff\xff"


def parse(payload: bytes, our_ip: bytes, broadcast: bytes, counters):
    if len(payload) < HEADER:
        counters.drop("ip_truncated")
        return None
    first = payload[0]
    if first >> 4 != 4:
        counters.drop("ip_bad_version")
        return None
    ihl = (first & 0xF) * 4
    if ihl < HEADER:
        counters.drop("ip_bad_header")
        return None
    if ihl > HEADER:
        counters.drop("ip_options")
        return None
    total = (payload[2] << 8) | payload[3]
    if total < HEADER or total > len(payload):
        counters.drop("ip_bad_length")
        return None
    head = payload[:HEADER]
    if checksum(head):
        counters.drop("ip_bad_checksum")
        return None
    flags_offset = (payload[6] << 8) | payload[7]
    if flags_offset & 0x3FFF:  # MF or fragment offset (DF is fine)
        counters.drop("ip_fragment")
        return None
    if flags_offset & 0x8000:
        counters.drop("ip_bad_header")  # the reserved flag must be zero
        return None
    if payload[8] == 0:
        counters.drop("ip_ttl_zero")
        return None
    src, dst = payload[12:16], payload[16:20]
    if src[0] >= 224 or src in (LIMITED_BROADCAST, broadcast):
        counters.drop("ip_bad_source")
        return None
    if dst != our_ip and dst != LIMITED_BROADCAST and dst != broadcast:
        counters.drop("ip_not_ours")
        return None
    counters.add("ip_in")
    return payload[9], src, dst, head, payload[HEADER:total]


def build(src: bytes, dst: bytes, protocol: int, body: bytes, ident: int) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, HEADER + len(body), ident & 0xFFFF,
                       0x4000, TTL, protocol, 0, src, dst)
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + body
