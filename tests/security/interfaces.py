"""The interface every attack domain of the red-team suite provides."""

from __future__ import annotations

from redleaf_lab.heap import Block, RRef
from redleaf_lab.idl import Borrowed, Interface


class Attack(Interface):
    def attack(self) -> int:
        """Run the escape attempt; returning at all means the attempt got through."""
        ...

    def take(self, data: RRef[Block]) -> int:
        """Keep a block the test moves in (something owned to chew on)."""
        ...

    def lend(self, data: Borrowed[RRef[Block]]) -> int:
        """Keep the Borrow of a block the test lends (it must die with the call)."""
        ...
