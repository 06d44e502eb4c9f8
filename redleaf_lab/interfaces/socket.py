"""Socket: a Berkeley-like socket interface (domains/netstack provides it), `SockBuf`
buffers, and `Service`, the interface of a server domain over sockets (httpd).

Calls and their error values (every misuse is a negative errno value, never a panic;
all sockets are non-blocking and `poll` is how a caller waits):

    socket(kind) -> fd                      kind STREAM (TCP) or DGRAM (UDP)
    bind(fd, port) -> 0                     EADDRINUSE, EINVAL (bound already; port 0 = any)
    listen(fd, backlog) -> 0                EINVAL (not bound, connected), EOPNOTSUPP (UDP)
    accept(fd) -> (fd, peer ip, peer port)  EAGAIN (nobody waiting), EINVAL (not listening)
    connect(fd, ip, port) -> -EINPROGRESS   poll for POLLOUT; UDP: 0 (default peer)
    send(fd, buf) -> bytes taken            EAGAIN (buffer full), EPIPE (closed), ENOTCONN
    recv(fd, buf) -> (bytes, buf)           0 = end of stream; EAGAIN; ECONNRESET
    sendto(fd, buf, ip, port) -> bytes      EMSGSIZE (> 1472 bytes)
    recvfrom(fd, buf) -> (bytes, ip, port, buf)
    close(fd) -> 0                          EBADF for every call on a closed descriptor
    abort(fd) -> 0                          close with a RST (a crashed holder's sockets)
    send_block(fd, buf, count), recv_block(fd, buf, count), sendto_block(fd, buf, count,
        ip, port), recvfrom_block(fd, buf, count): the same with a 4 KiB RRef[Block] and
        a byte count (Rv6's read/write buffers, lent or moved straight through)
    poll(fds, events, timeout_ms) -> revents, one per fd (POLLIN, POLLOUT, POLLERR,
                                    POLLHUP, POLLNVAL), waiting at most timeout_ms
    setsockopt(fd, SO_KEEPALIVE, idle_seconds) -> 0
IPv4 addresses cross as 32-bit numbers (`ip_number`/`ip_text` convert).

Buffers are RRefs (zero copy across the proxy): `send`/`sendto` borrow a SockBuf for
the call (the stack copies the `len` bytes of `data` into its TCP send buffer or a
datagram); `recv`/`recvfrom` take one by move, fill `len` and `data`, and hand it back.
The `_block` variants take Rv6's `RRef[Block]` (no header; the count is an argument),
so the Rv6 core passes a program's buffer through without a copy.
`fill(buf, data)` and `contents(buf)` are the caller-side helpers (they run in the
calling domain, which owns the buffer).

Concurrency contract: the provider serializes calls with its own lock; any number of
threads may call. Descriptors are per provider incarnation: after the stack domain
restarts they are gone (EBADF / POLLNVAL), and the peers of its TCP connections get a
RST at their next segment.
"""

from __future__ import annotations

import struct

import numpy as np

from ..heap import Block, Layout, RRef
from ..idl import Borrowed, Interface

STREAM, DGRAM = 1, 2
POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x001, 0x004, 0x008, 0x010, 0x020
SO_KEEPALIVE = 1
BUF_BYTES = 16384
BUF_HEADER = 8
BUF_DATA = BUF_BYTES - BUF_HEADER

SockBuf = Layout.declare("SockBuf", np.dtype({
    "names": ["len", "flags", "data"],
    "formats": ["<u4", "<u4", (np.uint8, (BUF_DATA,))],
    "offsets": [0, 4, BUF_HEADER],
    "itemsize": BUF_BYTES,
}))


class Socket(Interface):
    def socket(self, kind: int) -> int: ...

    def bind(self, fd: int, port: int) -> int: ...

    def listen(self, fd: int, backlog: int) -> int: ...

    def accept(self, fd: int) -> tuple[int, int, int]: ...

    def connect(self, fd: int, ip: int, port: int) -> int: ...

    def send(self, fd: int, buf: Borrowed[RRef[SockBuf]]) -> int: ...

    def recv(self, fd: int, buf: RRef[SockBuf]) -> tuple[int, RRef[SockBuf]]: ...

    def sendto(self, fd: int, buf: Borrowed[RRef[SockBuf]], ip: int, port: int) -> int: ...

    def recvfrom(self, fd: int, buf: RRef[SockBuf]) -> tuple[int, int, int, RRef[SockBuf]]: ...

    def close(self, fd: int) -> int: ...

    def abort(self, fd: int) -> int:
        """Close with a RST for a TCP connection (unaccepted ones of a listener too)."""
        ...

    def send_block(self, fd: int, buf: Borrowed[RRef[Block]], count: int) -> int: ...

    def recv_block(self, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...

    def sendto_block(self, fd: int, buf: Borrowed[RRef[Block]], count: int, ip: int,
                     port: int) -> int: ...

    def recvfrom_block(self, fd: int, buf: RRef[Block],
                       count: int) -> tuple[int, int, int, RRef[Block]]: ...

    def poll(self, fds: tuple[int, ...], events: tuple[int, ...], timeout_ms: int) -> tuple[int, ...]:
        """Run the stack (receive, timers, transmit) until one of `fds` is ready or
        `timeout_ms` passed; revents per fd."""
        ...

    def setsockopt(self, fd: int, option: int, value: int) -> int: ...

    def counters(self) -> tuple[tuple[str, int], ...]:
        """Every counter of the stack: events, and `drop_<reason>` for each drop reason."""
        ...

    def census(self) -> tuple[tuple[str, int], ...]:
        """Open descriptors (`sockets`), TCP connections per state, UDP endpoints, ARP
        entries: what a leak check compares."""
        ...

    def trace(self, on: bool) -> tuple[tuple[float, int, bytes], ...]:
        """Start (on) or stop recording frames; returns, and forgets, those recorded
        since the last call: (monotonic time, 0 received / 1 sent, first 96 bytes), at
        most 1,024 (older ones are dropped). For the lab's packet log. Only a stack
        loaded with the ("trace", True) option records: a trace shows every
        connection's bytes to whoever holds the capability; elsewhere this returns ()."""
        ...

    def pump(self, rounds: int) -> int:
        """Run the stack `rounds` times without waiting; returns frames received."""
        ...


class Service(Interface):
    """A server domain over a Socket capability (httpd)."""

    def run(self, rounds: int, timeout_ms: int) -> tuple[int, int, int]:
        """Serve for `rounds` poll rounds (each waiting at most timeout_ms); returns
        (requests answered, bad requests, connections accepted) over this incarnation."""
        ...

    def stats(self) -> tuple[tuple[str, int], ...]: ...


def ip_number(text: str) -> int:
    parts = [int(p) for p in text.split(".")]
    if len(parts) != 4 or any(not 0 <= p <= 255 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int.from_bytes(bytes(parts), "big")


def ip_text(number: int) -> str:
    return ".".join(str(b) for b in number.to_bytes(4, "big"))


def fill(buf: RRef, data: bytes) -> int:
    """Put up to BUF_DATA bytes of `data` into `buf` (one copy); returns how many."""
    part = data[:BUF_DATA]
    buf.write(struct.pack("<II", len(part), 0) + part)
    return len(part)


def contents(buf: RRef, count: int | None = None) -> bytes:
    """The first `count` (default: `len`) data bytes of `buf`."""
    raw = buf.tobytes()
    n = struct.unpack_from("<I", raw)[0] if count is None else count
    return raw[BUF_HEADER:BUF_HEADER + min(n, BUF_DATA)]
