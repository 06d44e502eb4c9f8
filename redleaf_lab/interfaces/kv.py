"""KV: a key-value store of 4 KiB blocks, for the first lab and the demo.

Values move into the store with `put` (zero copy: the block changes owner)
and are copied out into a buffer the caller lends by moving it in `get`.
Errors are values, as in RedLeaf: `get` returns (found, buffer).

Concurrency contract: one caller at a time. The kvstore domain keeps its values and
checksums in two dicts without a lock: two concurrent `put`s of one key could leave a
value without its checksum (a later `get` panics) or drop an old value unfreed until
the domain stops. Callers sharing a KV among threads serialize their calls.
"""

from __future__ import annotations

from ..heap import Block, RRef
from ..idl import Interface
from .checksum import Checksum


class KV(Interface):
    def put(self, key: int, value: RRef[Block]) -> int:
        """Store the block under key (it moves into the store); returns its CRC-32."""
        ...

    def get(self, key: int, into: RRef[Block]) -> tuple[bool, RRef[Block]]:
        """Copy the value into `into` and hand it back, with whether the key exists."""
        ...

    def delete(self, key: int) -> bool:
        ...

    def keys(self) -> tuple[int, ...]:
        ...

    def use_checksum(self, service: Checksum) -> None:
        """Replace the checksum capability (e.g. after it was restarted)."""
        ...
