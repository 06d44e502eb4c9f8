"""memcached UDP request frames for `bench kv` and the tests: what a client at
10.78.0.1 sends kvnet at 10.78.0.2:11211, as whole Ethernet frames (valid IPv4 header
and UDP checksums, RFC 791 / RFC 768), for the model generator's replay mode.

`request_frames(dst_mac, keys, key_size, value_size)` -> (sets, gets): one `set` and
one `get` frame per key; `zipf_weights(n, s)`; `key_bytes(i, size)`,
`value_bytes(i, size)` (the bytes a check expects back). Pure functions.
"""

from __future__ import annotations

import struct

import numpy as np

CLIENT_MAC = bytes([0x02, 0x52, 0x4C, 0x00, 0x00, 0x77])
CLIENT_IP = bytes([10, 78, 0, 1])
SERVER_IP = bytes([10, 78, 0, 2])
PORT = 11211


def inet_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def key_bytes(i: int, size: int) -> bytes:
    text = f"k{i:0{size - 1}d}" if size > 1 else chr(33 + i % 90)
    return text[-size:].encode()


def value_bytes(i: int, size: int) -> bytes:
    return bytes(33 + (i * 31 + j * 7) % 90 for j in range(size))


def frame(dst_mac: bytes, message: bytes, request_id: int, src_port: int) -> bytes:
    body = struct.pack("!HHHH", request_id & 0xFFFF, 0, 1, 0) + message
    udp = struct.pack("!HHHH", src_port, PORT, 8 + len(body), 0) + body
    pseudo = CLIENT_IP + SERVER_IP + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", (~inet_sum(pseudo + udp) & 0xFFFF) or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, CLIENT_IP,
                     SERVER_IP)
    ip = ip[:10] + struct.pack("!H", ~inet_sum(ip) & 0xFFFF) + ip[12:]
    out = dst_mac + CLIENT_MAC + b"\x08\x00" + ip + udp
    return out + bytes(max(0, 60 - len(out)))


def request_frames(dst_mac: bytes, keys: int, key_size: int,
                   value_size: int) -> tuple[list[bytes], list[bytes]]:
    sets, gets = [], []
    for i in range(keys):
        k, v = key_bytes(i, key_size), value_bytes(i, value_size)
        sets.append(frame(dst_mac, b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v), i,
                          20000 + i % 40000))
        gets.append(frame(dst_mac, b"get %s\r\n" % k, i, 20000 + i % 40000))
    return sets, gets


def zipf_weights(n: int, s: float = 0.99) -> np.ndarray:
    """P(rank r) proportional to 1 / r**s, r = 1..n."""
    return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
