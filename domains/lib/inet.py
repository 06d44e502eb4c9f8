"""Domain library `inet`: the Internet checksum (RFC 1071) and ARP replies (RFC 826).

Linked into every domain whose manifest says `libraries = ["inet"]` (kernel/loader.py):
each incarnation runs its own copy, so domains share this text, never its state.

Interface:
- `ones_sum(data, start=0)`: the 16-bit ones'-complement sum of `data` (big-endian
  words, an odd last byte padded with zero), plus `start` (another such sum);
- `checksum(data, start=0)`: its complement, the value that goes into a header; a
  received header or segment is intact when `checksum` over it (checksum field
  included) is 0;
- `pseudo_sum(src, dst, proto, length)`: the sum of the IPv4 pseudo header that TCP
  (RFC 9293 §3.1) and UDP (RFC 768) put in front of their checksum;
- `arp_reply(frame, mac, ip)`: the Ethernet frame answering an ARP request (Ethernet,
  IPv4) for `ip` from the host `mac`, or None when `frame` is not such a request.

How: the ones'-complement sum of the 16-bit words of a number N equals N mod 0xFFFF
(2**16 = 1 mod 0xFFFF, RFC 1071 §2(B)), except that a non-zero N whose remainder is 0
sums to 0xFFFF. So one `int.from_bytes` and one modulo do a whole frame in C, with no
loop over words. Pure functions, no state.
"""

import struct

MOD = 0xFFFF
ETH_ARP = b"\x08\x06"
ARP_REQUEST_HEAD = (1, 0x0800, 6, 4, 1)  # Ethernet, IPv4, address sizes, op 1 (request)


def ones_sum(data: bytes, start: int = 0) -> int:
    """Ones'-complement sum of `data` (plus `start`, another such sum)."""
    if len(data) & 1:
        data = data + b"\x00"
    number = int.from_bytes(data, "big") + start
    if number == 0:
        return 0
    rest = number % MOD
    return rest if rest else MOD


def checksum(data: bytes, start: int = 0) -> int:
    """The checksum field value for `data` (RFC 1071 §1)."""
    return ~ones_sum(data, start) & 0xFFFF


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Sum of the IPv4 pseudo header: source, destination, zero, protocol, length."""
    return ones_sum(src + dst + bytes((0, proto, length >> 8, length & 0xFF)))


def arp_reply(frame: bytes, mac: bytes, ip: bytes):
    """RFC 826: the reply frame to an ARP request for `ip` (Ethernet/IPv4 only), else None."""
    if len(frame) < 42 or frame[12:14] != ETH_ARP:
        return None
    if struct.unpack("!HHBBH", frame[14:22]) != ARP_REQUEST_HEAD or frame[38:42] != ip:
        return None
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + sender_mac + sender_ip
    return sender_mac + mac + ETH_ARP + arp
