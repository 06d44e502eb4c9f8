"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum (RFC 9293 3.1,
RFC 768).

Interface: `ones_sum(data)` is the 16-bit ones'-complement sum of `data` (big-endian
words, an odd last byte padded with zero); `checksum(data)` its complement, the value
that goes into a header; a received header or segment is intact when `checksum` over it
(checksum field included) is 0. `pseudo_sum(src, dst, proto, length)` is the sum of the
pseudo header that TCP and UDP prepend.

How: the ones'-complement sum of the 16-bit words of a number N equals N mod 0xFFFF
(2^16 = 1 mod 0xFFFF), with a non-zero N whose remainder is 0 summing to 0xFFFF. So
one `int.from_bytes` and one modulo do the whole frame in C: no per-word Python loop.
Pure functions, no state.
"""

MOD = 0xFFFF


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
    """The checksum field value for `data` (RFC 1071 section 1)."""
    return ~ones_sum(data, start) & 0xFFFF


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Sum of the IPv4 pseudo header: source, destination, zero, protocol, length."""
    return ones_sum(src + dst + bytes((0, proto, length >> 8, length & 0xFF)))
