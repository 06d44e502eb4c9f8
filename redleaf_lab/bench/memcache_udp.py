"""memcached over UDP for unchanged TCP clients: a `socket_module` for pymemcache.

pymemcache (4.0) speaks memcached's text protocol over TCP only, but lets the caller
give it a socket module. `UDP` is one: its sockets send each `sendall` as one datagram
behind memcached's 8-byte UDP frame header (request id, sequence 0, 1 datagram,
reserved 0; memcached protocol.txt, "UDP protocol"), and `recv` returns the body of the
reply datagram with the same request id, retransmitting the request after `timeout`
(UDP may lose either datagram) up to `retries` times. The client code is unchanged:
`pymemcache.Client((host, port), socket_module=UDP, default_noreply=False)`.

Run as a program (inside a network namespace, by the tests and `bench kv`):
`python -m redleaf_lab.bench.memcache_udp HOST PORT --keys N --key-size K --value-size V
[--batch B]` sets N keys with pymemcache (B per request: set_many/get_many), gets them
back, compares byte for byte and prints one JSON line: keys, batch, stored, verified,
mismatches, retransmits, seconds, requests_per_s.
Not thread safe (one client per thread).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from typing import Any


class _UdpAsStream:
    def __init__(self, family: int, timeout: float = 0.05, retries: int = 40) -> None:
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._timeout = timeout
        self._retries = retries
        self._request_id = 0
        self._last = b""
        self._buffer = b""
        self.retransmits = 0

    def setsockopt(self, *args: Any) -> None:  # TCP options: nothing to set on UDP
        return None

    def settimeout(self, value: float | None) -> None:
        return None  # retransmission has its own timeout

    def connect(self, address: Any) -> None:
        self._sock.connect(address)

    def sendall(self, data: bytes) -> None:
        self._request_id = (self._request_id + 1) & 0xFFFF
        self._last = struct.pack("!HHHH", self._request_id, 0, 1, 0) + bytes(data)
        self._buffer = b""
        self._sock.send(self._last)

    def recv(self, size: int) -> bytes:
        if not self._buffer:
            self._buffer = self._receive()
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _receive(self) -> bytes:
        self._sock.settimeout(self._timeout)
        for _ in range(self._retries):
            try:
                while True:
                    datagram = self._sock.recv(65536)
                    if len(datagram) >= 8 and struct.unpack("!H", datagram[:2])[0] == \
                            self._request_id:
                        return datagram[8:]
            except TimeoutError:
                self.retransmits += 1
                self._sock.send(self._last)
        raise TimeoutError(f"no reply to request {self._request_id} after "
                           f"{self._retries} tries")

    def close(self) -> None:
        self._sock.close()


class _UdpModule:
    """The parts of the socket module pymemcache uses, with UDP underneath."""

    AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX,
                                             socket.AF_UNSPEC)
    SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY = socket.SOCK_STREAM, socket.IPPROTO_TCP, 1
    SOL_SOCKET, SO_KEEPALIVE = socket.SOL_SOCKET, socket.SO_KEEPALIVE
    timeout, error = socket.timeout, socket.error

    def __init__(self) -> None:
        self.sockets: list[_UdpAsStream] = []

    def getaddrinfo(self, host: str, port: int, *args: Any) -> list[Any]:
        return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[:1]

    def socket(self, family: int, *args: Any) -> _UdpAsStream:
        sock = _UdpAsStream(family)
        self.sockets.append(sock)
        return sock


UDP = _UdpModule()


def value_for(i: int, size: int) -> bytes:
    """The test value of key i: `size` bytes, all byte values, different per key."""
    return bytes((i * 131 + j * 7) % 256 for j in range(size))


def key_for(i: int, size: int) -> str:
    return f"k{i:0{size - 1}d}"[-size:] if size > 1 else chr(33 + i % 90)


def round_trip(host: str, port: int, keys: int, key_size: int, value_size: int,
               batch: int = 1) -> dict[str, Any]:
    """Set `keys` keys and get them back, `batch` keys per request (set_many/get_many:
    several commands, or several keys, in one datagram), counting byte-exact matches."""
    from pymemcache.client.base import Client

    module = _UdpModule()
    client = Client((host, port), socket_module=module, default_noreply=False,
                    allow_unicode_keys=False)
    t0 = time.perf_counter()
    stored = verified = mismatches = 0
    for start in range(0, keys, batch):
        chunk = range(start, min(keys, start + batch))
        if batch == 1:
            stored += bool(client.set(key_for(start, key_size), value_for(start, value_size)))
        else:
            failed = client.set_many({key_for(i, key_size): value_for(i, value_size)
                                      for i in chunk})
            stored += len(chunk) - len(failed)
    for start in range(0, keys, batch):
        chunk = range(start, min(keys, start + batch))
        if batch == 1:
            found = {key_for(start, key_size): client.get(key_for(start, key_size))}
        else:
            found = client.get_many([key_for(i, key_size) for i in chunk])
        for i in chunk:
            if found.get(key_for(i, key_size)) == value_for(i, value_size):
                verified += 1
            else:
                mismatches += 1
    seconds = time.perf_counter() - t0
    client.close()
    return {"keys": keys, "batch": batch, "stored": stored, "verified": verified,
            "mismatches": mismatches,
            "retransmits": sum(s.retransmits for s in module.sockets),
            "seconds": round(seconds, 3),
            "requests_per_s": round(2 * -(-keys // batch) / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--key-size", type=int, default=8)
    parser.add_argument("--value-size", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1, help="keys per request (default 1)")
    args = parser.parse_args(argv)
    result = round_trip(args.host, args.port, args.keys, args.key_size, args.value_size,
                        max(1, args.batch))
    print(json.dumps(result))
    return 0 if result["verified"] == args.keys else 1


if __name__ == "__main__":
    sys.exit(main())
