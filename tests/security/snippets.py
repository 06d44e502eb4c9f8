"""Pieces of attack source shared by several attempts (pasted into their sources)."""

from __future__ import annotations

import textwrap


def src(*parts: str) -> str:
    """An attempt's source: the parts (shared snippets, then its own code), each dedented."""
    return "\n".join(textwrap.dedent(p).strip("\n") + "\n" for p in parts)


# `scan(mem)`: given a writable byte view of the heap arena below the attacker's block,
# find the kvstore's secret value (bytes 0x5A) and flip one byte: kvstore then panics on
# its checksum, which the integrity check sees.
SCAN = """
import numpy as np


def arena_start(h, address):
    return address - (h.kept[0].iova() - 0x100000000)


def scan(mem):
    hits = np.flatnonzero(mem == 0x5A)
    mem[hits[0]] = 0
    return int(hits[0]) + 1


def my_address(h):
    view = h.kept[0].array()
    return int("{0.base.__array_interface__[data][0]}".format(view))
"""

# `Swallow`: a context manager whose __exit__ returns True (absorbs anything).
SWALLOW = """
class Swallow:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return True
"""

# `owner_is_me(h)`: False when this code runs as another domain than the attacker.
WHO = """
from redleaf_lab.api import Block, RRef


def running_as_someone_else(h):
    probe = RRef.new(Block)
    return probe.owner() != h.ctx.id
"""
