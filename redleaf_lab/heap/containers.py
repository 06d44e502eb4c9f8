"""RRefArray and RRefDeque: shared-heap containers of RRefs.

RRefArray and RRefDeque hold other RRefs, as RedLeaf's `RRefArray<T, N>` and
`RRefDeque<T, N>` hold `Option<RRef<T>>` slots. The container is itself one
heap object whose memory is an array of u64 child ids. A child inside a
container is owned by the registry's NESTED owner (0) with `parent` set to the
container, so:

* moving the container across a proxy moves one registry entry, however many
  children it holds (RedLeaf's zero-copy batch);
* a crash reclaims the container and, through it, its children;
* pushing takes the child out of the pushing domain (its handle dies), and
  popping makes the popping domain the owner (a fresh handle).

Bulk forms (`push_many`, `pop_many`) do one registry call per batch.
`take_batch` / `put_batch` move a whole batch out and in without any per-item
handle: the items travel as one `RRefBatch` (heap/batch.py, where the
"handle-free ownership" rule is stated), for drivers' zero-Python-per-item paths.
A deque's owner can also work on its items in place and move them to another deque
with no batch at all (heap/deque_ops.py). The slot array itself is heap/slots.py.

RRefVec (heap/vec.py) is different: a growable vector of Copy elements.

Only the container's owner may push or pop. Container memory is never handed
to domain code as a view; the handle's internal slot view is trusted.

Interruption: these methods run in the calling domain's thread, so the
kernel's asynchronous unwinding can stop them between any two bytecodes. The
order of steps keeps every stopping point safe: a push writes the slot
*before* the registry attach (the C free of a container only follows slots
whose id's parent is the container, so an unattached id in a slot is
ignored, and the child stays its owner's, to be reclaimed with it); a pop
detaches *before* clearing the slot (a detached id left in a slot is
ignored the same way).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._core import ffi, lib
from .._core.heap import EFULL, CoreHeap, check
from ..errors import HeapError, StaleRefError
from ..kernel.context import current_owner_id
from .batch import RRefBatch
from .deque_ops import DequeItemOps
from .layout import Layout
from .rref import RRef
from .slots import _SlotContainer

_rl_batch_put = lib.rl_batch_put
_rl_batch_put_field = lib.rl_batch_put_field
_rl_deque_len = lib.rl_deque_len
_from_buffer = ffi.from_buffer
_new_index = ffi.new
_NULL = ffi.NULL

_U64 = np.dtype(np.uint64)


class RRefArray(_SlotContainer):
    """Fixed array of optional RRefs (RedLeaf's RRefArray<T, N>)."""

    __slots__ = ()
    kind = "rref-array"

    @classmethod
    def new(cls, element: Layout, capacity: int, heap: CoreHeap | None = None) -> RRefArray:
        arr: RRefArray = cls._allocate(element, capacity, heap)
        return arr

    def __len__(self) -> int:
        return self._capacity

    def put(self, index: int, ref: RRef) -> RRef | None:
        """Store `ref` at `index`; returns the previous occupant, if any."""
        me = self._require_owned()
        previous = self.take(index)
        self._place(index, ref, me)
        return previous

    def take(self, index: int) -> RRef | None:
        """Remove and return the RRef at `index` (None if empty)."""
        me = self._require_owned()
        if not -self._capacity <= index < self._capacity:
            raise IndexError(f"index {index} out of range for {self._capacity} slots")
        child = int(self._slots[index])
        if child == 0:
            return None
        self._slots[index] = 0
        return self._give_out(child, me)

    def occupied(self) -> int:
        self._require_owned()
        return int(np.count_nonzero(self._slots))


class RRefDeque(DequeItemOps):
    """Fixed-capacity ring of RRefs (RedLeaf's RRefDeque<T, N>).

    `push_back` on a full deque hands the item back instead of storing it.
    Header words: [head, length].
    """

    __slots__ = ()
    kind = "rref-deque"
    header_words = 2

    @classmethod
    def new(cls, element: Layout, capacity: int, heap: CoreHeap | None = None) -> RRefDeque:
        dq: RRefDeque = cls._allocate(element, capacity, heap)
        return dq

    def __len__(self) -> int:
        length: int = _rl_deque_len(self._hp, self._id, current_owner_id())
        if length < 0:
            self._require_owned()  # raises the clear error
            check(-length, self._id, self._heap, "len")
        return length

    def push_back(self, ref: RRef) -> RRef | None:
        me = self._require_owned()
        head, length = int(self._header[0]), int(self._header[1])
        if length == self._capacity:
            return ref
        self._place((head + length) % self._capacity, ref, me)
        self._header[1] = length + 1
        return None

    def pop_front(self) -> RRef | None:
        me = self._require_owned()
        head, length = int(self._header[0]), int(self._header[1])
        if length == 0:
            return None
        child = int(self._slots[head])
        self._slots[head] = 0
        self._header[0] = (head + 1) % self._capacity
        self._header[1] = length - 1
        return self._give_out(child, me)

    def push_many(self, refs: Iterable[RRef]) -> list[RRef]:
        """Push as many as fit with one registry call; returns those that did not fit."""
        me = self._require_owned()
        items = list(refs)
        head, length = int(self._header[0]), int(self._header[1])
        room = self._capacity - length
        taken, rest = items[:room], items[room:]
        if not taken:
            return rest
        for ref in taken:
            if not isinstance(ref, RRef) or ref._layout is not self._element:
                raise TypeError(f"RRefDeque[{self._element.name}] cannot hold {ref!r}")
            ref._require_id()
            ref._check_no_views("move into a container")
        ids = np.fromiter((r._id for r in taken), dtype=_U64, count=len(taken))
        self._attach_at(self._ring(head + length, len(taken)), ids, me)
        where = f"RRefDeque 0x{self._id:x}"
        for ref in taken:
            ref._disarm()
            ref._moved_to = where
        self._header[1] = length + len(taken)
        return rest

    def pop_many(self, limit: int | None = None) -> list[RRef]:
        """Pop up to `limit` items (all by default) with one registry call."""
        me = self._require_owned()
        head, length = int(self._header[0]), int(self._header[1])
        n = length if limit is None else max(0, min(limit, length))
        if n == 0:
            return []
        positions = (head + np.arange(n)) % self._capacity
        ids = self._slots[positions].copy()
        self._heap.detach_bulk(self._id, ids, me)
        self._slots[positions] = 0
        self._header[0] = (head + n) % self._capacity
        self._header[1] = length - n
        heap, element, size = self._heap, self._element, self._element.size
        return [RRef(heap, int(i), element, size) for i in ids]

    def _attach_at(self, positions: Any, ids: np.ndarray, me: int) -> None:
        """Write `ids` into `positions`, then attach them in one registry call, all or
        nothing: slots first, see "Interruption" in the module docstring."""
        self._slots[positions] = ids
        try:
            self._heap.attach_bulk(self._id, ids, me)
        except BaseException:
            self._slots[positions] = 0
            raise

    def take_batch(self, limit: int | None = None) -> RRefBatch:
        """Take up to `limit` items (all by default) out as ONE handle-free `RRefBatch`
        (heap/batch.py), owned by the calling domain: one registry call (csrc/deque.c
        reads the ring, detaches the items and advances the head at once), no handles."""
        return self._take(limit, None)[0]

    def take_batch_iovas(self, limit: int | None, field: str | None
                         ) -> tuple[RRefBatch, npt.NDArray[np.uint64]]:
        """`take_batch(limit)`, and the device address (IOVA) of `field` in each taken
        object, from the same registry call: the zero-copy DMA idiom (take free buffers,
        write their addresses into descriptors) without a second call."""
        batch, iovas = self._take(limit, field)
        assert iovas is not None
        return batch, iovas

    def _take(self, limit: int | None, iova_field: str | None
              ) -> tuple[RRefBatch, npt.NDArray[np.uint64] | None]:
        me = current_owner_id()
        cap = self._capacity
        n = cap if limit is None else max(0, min(limit, cap))
        try:
            return RRefBatch.take(self._heap, self._id, self._element, me, n, iova_field)
        except HeapError:
            self._require_owned()  # the clearer error: moved away, not ours, freed
            raise

    def put_batch(self, batch: RRefBatch, field: str | None = None,
                  values: npt.ArrayLike | None = None) -> None:
        """Append every item of `batch` (one registry call); the batch is then spent. All
        or nothing: if they do not all fit, raise ValueError and leave the batch live.
        With `field`, first write `values` into that field of every item (as
        `RRefBatch.set`), in the same call; if the put then fails, the field stays
        written (and the batch live)."""
        if not isinstance(batch, RRefBatch) or batch._layout is not self._element:
            raise TypeError(f"RRefDeque[{self._element.name}] cannot hold {batch!r}")
        if batch._spent is not None:  # (a container's truth is its length: test for None)
            raise StaleRefError(f"{batch!r} cannot be put again")
        if field is None:
            rc = _rl_batch_put(batch._token, self._id, current_owner_id(), _NULL)
        else:
            if values is None:
                raise TypeError(f"put_batch: field {field!r} needs values")
            dtype, offset = self._element.field(field)
            src = np.empty((len(batch), *dtype.shape), dtype=dtype.base)  # a private copy
            src[...] = values
            rc = _rl_batch_put_field(batch._token, self._id, current_owner_id(), offset,
                                     dtype.itemsize, _from_buffer(src), _NULL)
            if rc:  # the write or the put failed: do them apart, for the precise error
                batch.set(field, src)
                rc = _rl_batch_put(batch._token, self._id, current_owner_id(), _NULL)
        if rc:  # nothing changed: ask again, naming the bad item this time
            bad = _new_index("uint64_t *")
            rc = _rl_batch_put(batch._token, self._id, current_owner_id(), bad)
        if rc:
            self._require_owned()
            if rc == EFULL:
                free = self._capacity - int(self._header[1])
                raise ValueError(f"a batch of {len(batch)} does not fit in RRefDeque "
                                 f"0x{self._id:x} ({free} free slots)")
            self._heap._raise_bulk(rc, batch.ids(), bad[0], f"put_batch into 0x{self._id:x}",
                                   self._id)
        batch._spent = self  # disarmed in C: the deque holds the objects now

    def __iter__(self) -> Any:
        raise TypeError("iterate with pop_front()/pop_many(): items move out of the deque")
