"""Ethernet II framing (RFC 894, IEEE 802.3 clause 3.1.1): parse and build headers.

Interface: `parse(frame, our_mac, counters)` returns (ethertype, source MAC, payload)
for a frame addressed to us or to the broadcast address, else None after counting the
drop; `header(dst, src, ethertype)` is the 14-byte header of an outgoing frame. Frames
carry no FCS here (the NIC strips and adds it); short frames were padded to 60 bytes on
the wire, so the payload may end with padding: the IP layer trims it by its own length.

Pure functions; the counters belong to the caller's Stack.
"""

import struct

HEADER = 14
BROADCAST = b"\xff" * 6
TYPE_IPV4 = 0x0800
TYPE_ARP = 0x0806


def parse(frame: bytes, our_mac: bytes, counters):
    if len(frame) < HEADER:
        counters.drop("eth_runt")
        return None
    dst = frame[0:6]
    if dst != our_mac and dst != BROADCAST:
        counters.drop("eth_other_host")  # multicast and frames for other stations
        return None
    src = frame[6:12]
    if src[0] & 1:  # a group address can never be a source (IEEE 802.3 3.2.3)
        counters.drop("eth_bad_source")
        return None
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype != TYPE_IPV4 and ethertype != TYPE_ARP:
        counters.drop("eth_unknown_type")  # IPv6, VLAN tags, LLC lengths: not spoken here
        return None
    return ethertype, src, frame[HEADER:]


def header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    return dst + src + struct.pack("!H", ethertype)
