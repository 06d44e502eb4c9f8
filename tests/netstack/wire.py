"""An in-process wire for the stack tests: frames in two queues, optional loss.

`Wire.inject(frame)` queues a frame for the stack to receive; `Wire.take()` returns
(and removes) every frame the stack transmitted. `drop_every=N` loses every Nth frame
the stack transmits (counted in `dropped`), to force retransmissions. The `wirenet`
test domain (tests/netstack/wirenet) is the Net driver over a Wire: a trusted test
object given to it as a capability. `Peer` runs a second sans-I/O Stack (the same
code, another instance) as the far end, for tests that need a whole client.
Single-threaded: the test drives everything.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from redleaf_lab.domains.netstack.sockets import Sockets
from redleaf_lab.domains.netstack.stack import Stack
from redleaf_lab.domains.netstack.tcp import TcpOptions

SERVER_MAC = bytes([0x02, 0x52, 0x4C, 0x00, 0x00, 0x01])
SERVER_IP = bytes([10, 9, 0, 2])
CLIENT_MAC = bytes([0x02, 0x52, 0x4C, 0x00, 0x00, 0x02])
CLIENT_IP = bytes([10, 9, 0, 1])
SERVER_NUMBER = int.from_bytes(SERVER_IP, "big")


class Wire:
    def __init__(self, mac: bytes = SERVER_MAC, drop_every: int = 0) -> None:
        self.mac = mac
        self.inbound: deque[bytes] = deque()
        self.outbound: deque[bytes] = deque()
        self.drop_every = drop_every
        self.sent = 0
        self.dropped = 0

    def inject(self, frame: bytes) -> None:
        self.inbound.append(bytes(frame))

    def receive(self, limit: int) -> list[bytes]:
        out = []
        while self.inbound and len(out) < limit:
            out.append(self.inbound.popleft())
        return out

    def transmit(self, frame: bytes) -> None:
        self.sent += 1
        if self.drop_every and self.sent % self.drop_every == 0:
            self.dropped += 1
            return
        self.outbound.append(frame)

    def take(self) -> list[bytes]:
        frames = list(self.outbound)
        self.outbound.clear()
        return frames


class Peer:
    """A client: a Stack plus Sockets on the far side of a Wire, with its own clock."""

    def __init__(self, wire: Wire, time_wait: float = 1.0, seed: int = 7) -> None:
        self.wire = wire
        self.stack = Stack(CLIENT_MAC, CLIENT_IP, options=TcpOptions(time_wait=time_wait), seed=seed)
        self.sockets = Sockets(self.stack)
        self.now = 0.0

    def exchange(self, advance: float = 0.0) -> int:
        """Deliver what the server sent, run timers, send what we produced."""
        self.now += advance
        frames = self.wire.take()
        for frame in frames:
            self.stack.input(frame, self.now)
        self.stack.tick(self.now)
        self.stack.flush_acks()
        out = self.stack.drain()
        for frame in out:
            self.wire.inject(frame)
        return len(frames) + len(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sockets, name)
