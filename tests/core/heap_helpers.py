"""Helpers the C-heap tests share: a small heap, raw addresses, a container's slot words."""

from __future__ import annotations

import numpy as np

from redleaf_lab._core import heap as core
from redleaf_lab._core.heap import CoreHeap

ROOT = core.OWNER_ROOT
NESTED = core.OWNER_NESTED


def small_heap(arena_bytes: int = 64 << 20, max_objects: int = 1 << 16) -> CoreHeap:
    return CoreHeap(arena_bytes=arena_bytes, max_objects=max_objects)


def address(ptr: object) -> int:
    return int(core.ffi.cast("uintptr_t", ptr))


def slots_of(heap: CoreHeap, container: int) -> np.ndarray:
    """The u64 child-id slots of `container` (a live view of its memory)."""
    info = heap.lookup(container)
    words = np.frombuffer(heap.buffer(container, info.size), dtype=np.uint64)
    return words[info.child_offset // 8 :]
