"""The per-batch data path of Maglev: parse a batch's headers, look flows up, rewrite.

All of it works on the batch's first 64 frame bytes as one (n, 64) uint8 array (the
Packet's `frame64` field, read and written with one call each), with numpy calls per
batch, never a Python loop per frame:

1. accept IPv4 (IHL 5) UDP frames to the VIP (Ethernet type 0x0800, RFC 791 §3.1) that
   are not fragments and hold at least the UDP header;
2. the flow key: the 5-tuple packed into 64 bits (src+dst address as one word XOR the
   ports times an odd constant; protocol is always UDP here), hashed with FNV-1a
   (`fnv1a64_array`): the hash picks the flow table's slot and Maglev's table entry;
3. the flow table (a `VectorTable`, key -> backend index): a tracked flow keeps its
   backend if that is still healthy; other flows take the lookup table's entry, which
   is recorded;
4. rewrite destination MAC (bytes 0..5) and IPv4 destination (bytes 30..33) and update
   the IPv4 header checksum (RFC 791 §3.1) and the UDP checksum for the two changed
   address words (RFC 1624 eqn. 3; a zero UDP checksum, "none", stays 0, and a computed
   0 is sent as 0xFFFF, RFC 768).

Interface: `flow_keys(hdr)`, `accept(hdr, lengths, vip)`, `rewrite(hdr, macs, ips)`. Pure
functions over numpy arrays; the state lives in maglev.py.
"""

import numpy as np

U64 = np.uint64
KEY_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: a bijection on 64-bit port words


def accept(hdr, lengths, vip):
    """Mask of frames that are IPv4 (IHL 5) UDP to `vip` (4 uint8), not fragments (a
    later fragment has no ports: RFC 791 §3.1, MF and fragment offset 0) and long enough
    to hold the UDP header (`lengths`: frame lengths; a short frame's buffer holds stale
    bytes past its end)."""
    return ((hdr[:, 12] == 8) & (hdr[:, 13] == 0) & (hdr[:, 14] == 0x45)
            & (hdr[:, 23] == 17) & ((hdr[:, 20] & 0x3F) == 0) & (hdr[:, 21] == 0)
            & (lengths >= 42) & (hdr[:, 30:34] == vip).all(axis=1))


def flow_keys(hdr):
    """The 64-bit flow key of each frame's 5-tuple (see the module docstring)."""
    addresses = np.ascontiguousarray(hdr[:, 26:34]).view("<u8")[:, 0]
    ports = np.ascontiguousarray(hdr[:, 34:38]).view("<u4")[:, 0].astype(U64)
    return addresses ^ (ports * KEY_MIX)


def _fold(total):
    total = (total & 0xFFFF) + (total >> 16)
    return (total & 0xFFFF) + (total >> 16)


def rewrite(hdr, macs, ips) -> None:
    """Set each frame's destination MAC and IPv4 address (rows of `macs` (n, 6) and
    `ips` (n, 4)) and update both checksums for the two changed address words, in place
    (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'); the IPv4 header checksum and the UDP
    checksum, whose pseudo-header holds the destination, change by the same words).
    `hdr` is C-contiguous (n, 64) uint8, seen as 32 big-endian 16-bit words per frame:
    word 12 is the IPv4 checksum, 15 and 16 the destination, 20 the UDP checksum."""
    words = hdr.view(">u2")
    new = ips.view(">u2").astype(np.uint32)
    old = words[:, 15:17].astype(np.uint32)
    delta = (0xFFFF - old).sum(axis=1) + new.sum(axis=1)
    hdr[:, 0:6] = macs
    words[:, 15:17] = new
    words[:, 12] = ~_fold(0xFFFF - words[:, 12].astype(np.uint32) + delta) & 0xFFFF
    udp = words[:, 20].astype(np.uint32)
    fixed = ~_fold(0xFFFF - udp + delta) & 0xFFFF
    fixed[fixed == 0] = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    fixed[udp == 0] = 0  # no checksum stays no checksum
    words[:, 20] = fixed
