"""The slot array that RRefArray and RRefDeque share: a container heap object whose
memory is a header of u64 words and then u64 child ids (heap/containers.py says how
children are owned). The handle keeps numpy views of the header and the slots for life,
with the memory pinned (a late write from a crashed domain's thread never lands in
memory reused by another object). Container memory is never handed to domain code.
"""

from __future__ import annotations

from types import GenericAlias
from typing import Any

import numpy as np

from .._core.heap import CoreHeap
from ..kernel.context import current_owner_id
from .layout import CONTAINER_SLOTS, Layout
from .rref import HeapObject, RRef, current_heap, pin_object

_U64 = np.dtype(np.uint64)


class _SlotContainer(HeapObject):
    """Common part of RRefArray and RRefDeque: a u64 slot array on the heap."""

    __slots__ = ("_capacity", "_element", "_header", "_pin", "_slots")
    header_words = 0

    def __init__(
        self, heap: CoreHeap, obj_id: int, element: Layout, capacity: int, size: int
    ) -> None:
        super().__init__(heap, obj_id, CONTAINER_SLOTS, size)
        self._element = element
        self._capacity = capacity
        words = np.frombuffer(heap.buffer(obj_id, size), dtype=_U64)
        # the handle keeps these views for life: pin the memory, so a late write by a
        # thread of a crashed domain never lands in memory reused by another object
        self._pin = pin_object(heap, obj_id)
        self._header = words[: self.header_words]
        self._slots = words[self.header_words :]

    @classmethod
    def _allocate(cls, element: Layout, capacity: int, heap: CoreHeap | None) -> Any:
        if not isinstance(element, Layout):
            raise TypeError(f"{cls.__name__} element must be a Layout, not {element!r}")
        if capacity <= 0:
            raise ValueError(f"{cls.__name__} capacity must be positive, got {capacity}")
        heap = heap or current_heap()
        size = 8 * (cls.header_words + capacity)
        obj_id, _ptr = heap.alloc_container(
            size, CONTAINER_SLOTS.type_id, current_owner_id(), 8 * cls.header_words
        )
        return cls(heap, obj_id, element, capacity, size)

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        return GenericAlias(cls, item)

    @property
    def element(self) -> Layout:
        return self._element

    @property
    def capacity(self) -> int:
        return self._capacity

    def live_views(self) -> int:
        return 0  # container memory is never exposed; the slot view is internal

    def _check_no_views(self, action: str) -> None:
        return None

    def _place(self, slot: int, ref: RRef, me: int) -> None:
        """Move `ref` into `slot` as a child; its handle dies. The id goes into the slot
        *before* the registry attach: see "Interruption" in heap/containers.py."""
        if not isinstance(ref, RRef):
            raise TypeError(f"{type(self).__name__} holds RRefs, not {type(ref).__name__}")
        if ref._layout is not self._element:
            raise TypeError(
                f"{type(self).__name__}[{self._element.name}] cannot hold RRef[{ref._layout.name}]"
            )
        ref._require_id()
        ref._check_no_views("move into a container")
        self._slots[slot] = ref._id
        try:
            self._heap.attach(self._id, ref._id, me)
        except BaseException:
            self._slots[slot] = 0
            raise
        ref._detach_handle(f"{type(self).__name__} 0x{self._id:x}")

    def _give_out(self, child: int, me: int) -> RRef:
        self._heap.detach(self._id, child, me)
        return RRef(self._heap, child, self._element, self._element.size)
