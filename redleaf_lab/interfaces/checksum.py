"""Checksum: a tiny service interface used by the first lab and the demo.

Concurrency contract: any number of callers at once; `crc32` reads only the borrowed
block (its call counter is a statistic).
"""

from __future__ import annotations

from ..heap import Block, RRef
from ..idl import Borrowed, Interface


class Checksum(Interface):
    def crc32(self, data: Borrowed[RRef[Block]]) -> int:
        """CRC-32 of a borrowed block (the caller keeps ownership)."""
        ...
