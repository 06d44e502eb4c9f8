"""RRefVec: a growable vector of Copy elements on the shared heap (RedLeaf's `RRefVec<T>`).

Unlike RRefArray and RRefDeque (heap/containers.py), it holds no RRefs: the elements are
stored inline after a 64-byte header, and `array()` gives a numpy view of the live
prefix. Growing re-allocates, so it is refused while views are alive. Only the owner
may use it.
"""

from __future__ import annotations

from types import GenericAlias
from typing import Any

import numpy as np

from .._core.heap import CoreHeap
from ..kernel.context import current_owner_id
from .layout import VEC_STORAGE, Layout
from .rref import HeapObject, current_heap, make_exporter

_U64 = np.dtype(np.uint64)


class RRefVec(HeapObject):
    """A growable vector of Copy elements stored inline on the shared heap.

    Layout: 64-byte header (u64 length at offset 0), then the elements.
    Growing re-allocates, so it is refused while views are alive.
    """

    __slots__ = ("_capacity", "_element")
    kind = "rref-vec"
    HEADER = 64

    def __init__(
        self, heap: CoreHeap, obj_id: int, element: Layout, capacity: int, size: int
    ) -> None:
        super().__init__(heap, obj_id, VEC_STORAGE, size)
        self._element = element
        self._capacity = capacity

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        return GenericAlias(cls, item)

    @classmethod
    def new(cls, element: Layout, capacity: int = 16, heap: CoreHeap | None = None) -> RRefVec:
        heap = heap or current_heap()
        capacity = max(1, capacity)
        size = cls.HEADER + capacity * element.size
        obj_id, _ptr = heap.alloc(size, VEC_STORAGE.type_id, current_owner_id())
        return cls(heap, obj_id, element, capacity, size)

    @property
    def element(self) -> Layout:
        return self._element

    def _length_word(self) -> np.ndarray:
        return np.frombuffer(self._heap.buffer(self._id, 8), dtype=_U64)

    def __len__(self) -> int:
        self._require_owned()
        return int(self._length_word()[0])

    def array(self) -> np.ndarray:
        """Writable view of the live elements (the owner only)."""
        self._require_owned()
        if self._rw is None:
            self._rw = make_exporter(self._heap, self._id, self._size, self._token)
        n = int(self._length_word()[0])
        storage = np.asarray(self._rw)[self.HEADER:].view(self._element.dtype)
        return storage[:n]

    def append(self, value: Any) -> None:
        self.extend(np.asarray([value], dtype=self._element.dtype))

    def extend(self, values: Any) -> None:
        me = self._require_owned()
        vals = np.asarray(values, dtype=self._element.dtype)
        n = int(self._length_word()[0])
        if n + len(vals) > self._capacity:
            self._grow(max(2 * self._capacity, n + len(vals)), me)
        buf = self._heap.buffer(self._id, self._size)
        storage = np.frombuffer(buf, dtype=self._element.dtype, offset=self.HEADER)
        storage[n : n + len(vals)] = vals
        self._length_word()[0] = n + len(vals)

    def _grow(self, capacity: int, me: int) -> None:
        self._check_no_views("grow")
        size = self.HEADER + capacity * self._element.size
        new_id, _ptr = self._heap.alloc(size, VEC_STORAGE.type_id, me)
        old = self._heap.buffer(self._id, self._size)
        self._heap.buffer(new_id, size)[: self._size] = old[:]
        old_id = self._id
        self._rebind(new_id)
        self._size, self._capacity = size, capacity
        self._heap.free(old_id)
