"""Interfaces of the test domains (tests/support/domains)."""

from __future__ import annotations

from redleaf_lab.heap import BlkReq, Block, RRef, RRefDeque
from redleaf_lab.idl import Borrowed, Interface


class Spin(Interface):
    def ping(self, x: int) -> int: ...

    def spin(self, seconds: float) -> int:
        """Busy-loop in pure bytecode for up to `seconds`; returns iterations."""
        ...

    def nap(self, seconds: float) -> int:
        """Sleep with ctx.sleep (bounded slices)."""
        ...

    def spawn_spinners(self, n: int) -> int:
        """Start n domain threads that spin until unwound."""
        ...

    def hold(self, data: RRef[Block]) -> int:
        """Keep the block (it becomes this domain's)."""
        ...

    def peek_and_keep_view(self, data: Borrowed[RRef[Block]]) -> int:
        """A buggy method: keeps a view of a borrowed block after returning."""
        ...

    def write_borrowed(self, data: Borrowed[RRef[Block]]) -> int:
        """A buggy method: tries to write through a borrow."""
        ...

    def give(self) -> RRef[Block]:
        """Return a block this domain allocates."""
        ...

    def refuse(self, why: str) -> int:
        """Return an error value (InvalidRequest) instead of a result."""
        ...

    def give_foreign(self) -> RRef[Block]:
        """A buggy method: returns a block it no longer owns."""
        ...


class Chain(Interface):
    def call(self, crash_at_leaf: bool, handle: bool) -> int:
        """Call down the chain; the leaf panics if asked; `handle` catches RpcError."""
        ...

    def alive(self) -> int: ...


class Hoard(Interface):
    def put(self, data: RRef[Block]) -> int: ...

    def allocate(self, n: int) -> int: ...

    def churn(self, n: int) -> int:
        """Allocate and drop n blocks (work that can be interrupted anywhere)."""
        ...

    def count(self) -> int: ...


class Pair(Interface):
    def swap(self, a: RRefDeque[BlkReq, 4], b: RRefDeque[BlkReq, 4], mode: int
             ) -> tuple[int, RRefDeque[BlkReq, 4], RRefDeque[BlkReq, 4]]:
        """Return (len(a), b, a); buggy modes: 1 returns `a` twice, 2 returns a deque it
        gave back on an earlier call (no longer its own)."""
        ...
