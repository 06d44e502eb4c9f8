"""Echo: the interface `redleaf-lab bench calls` measures (RedLeaf's Table 1 calls).

Concurrency contract: any number of callers at once; the echo domain keeps no state.
"""

from __future__ import annotations

from ..heap import Block, RRef
from ..idl import Borrowed, Interface


class Echo(Interface):
    def ping(self, x: int) -> int:
        """Return x: the cost of the call mechanism alone."""
        ...

    def echo(self, data: RRef[Block]) -> RRef[Block]:
        """Take the block and hand it back: two ownership moves."""
        ...

    def peek(self, data: Borrowed[RRef[Block]]) -> int:
        """Borrow the block for the call; return its first byte."""
        ...
