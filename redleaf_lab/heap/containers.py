"""RRefArray, RRefDeque and RRefVec: shared-heap containers.

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
from types import GenericAlias
from typing import Any

import numpy as np
import numpy.typing as npt

from .._core import ffi, lib
from .._core.heap import EFULL, EINVAL, CoreHeap, check
from ..errors import HeapError, StaleRefError
from ..kernel.context import current_owner_id
from .batch import RRefBatch
from .layout import CONTAINER_SLOTS, Layout
from .rref import HeapObject, RRef, current_heap, pin_object

_rl_batch_put = lib.rl_batch_put
_rl_batch_put_field = lib.rl_batch_put_field
_rl_deque_fields = lib.rl_deque_fields
_rl_deque_len = lib.rl_deque_len
_rl_deque_add = lib.rl_deque_add
_rl_deque_move = lib.rl_deque_move
_rl_deque_move_to_ring = lib.rl_deque_move_to_ring
_from_buffer = ffi.from_buffer
_new_index = ffi.new
_NULL = ffi.NULL

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
        *before* the registry attach: see "Interruption" in the module docstring."""
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


class RRefDeque(_SlotContainer):
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

    def _ring(self, start: int, n: int) -> Any:
        """Slots start, start + 1, ... (mod capacity): a slice unless they wrap around."""
        start %= self._capacity
        if start + n <= self._capacity:
            return slice(start, start + n)
        return (start + np.arange(n)) % self._capacity

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

    # -- deque to deque: no batch in between --------------------------------------------
    def move_to(self, dst: RRefDeque, limit: int | None = None) -> int:
        """Move up to `limit` items (all by default) from the front of this deque to the
        back of `dst`, as many as `dst` has room for; both must be the caller's. One
        registry call, no handle, no batch (the items stay nested: only their container
        changes). Returns how many moved."""
        limit = self._capacity if limit is None else max(0, limit)
        self._check_peer(dst)
        moved: int = _rl_deque_move(self._hp, self._id, dst._id, current_owner_id(), limit, 0,
                                    0, 0, _NULL, 0, 0, _NULL, 0, 0, _NULL)
        if moved < 0:
            self._move_error(-moved, dst, limit)
        return moved

    def move_exact(self, dst: RRefDeque, n: int, field: str | None = None,
                   values: npt.ArrayLike | None = None) -> None:
        """Move exactly `n` items to the back of `dst`, or none (ValueError if this deque
        holds fewer or `dst` lacks room). With `field`, first write `values` (broadcast
        to (n,) plus the field's shape) into that field of each, in the same call."""
        self._check_peer(dst)
        offset = width = 0
        src = _NULL
        if field is not None:
            if values is None:
                raise TypeError(f"move_exact: field {field!r} needs values")
            dtype, offset = self._element.field(field)
            width = dtype.itemsize
            copy = np.empty((n, *dtype.shape), dtype=dtype.base)  # a private copy
            copy[...] = values
            src = _from_buffer(copy)
        moved: int = _rl_deque_move(self._hp, self._id, dst._id, current_owner_id(), n, 1,
                                    offset, width, src, 0, 0, _NULL, 0, 0, _NULL)
        if moved < 0:
            self._move_error(-moved, dst, n)

    def move_with_iovas(self, dst: RRefDeque, limit: int, field: str | None,
                        get: str | None = None
                        ) -> tuple[int, npt.NDArray[np.uint64], np.ndarray | None]:
        """`move_to(dst, limit)`, and from the same call the device address (IOVA) of
        `field` in each moved item and, with `get`, a copy of that field of each: the
        zero-copy DMA idiom (lend free buffers, write their addresses into descriptors).
        Returns (moved, iovas, got or None), the arrays sized to what moved."""
        self._check_peer(dst)
        limit = max(0, min(limit, self._capacity))
        dtype, offset = self._element.field(field)
        iovas = np.empty(limit, dtype=np.uint64)
        got = None
        get_offset = get_width = 0
        get_buf = _NULL
        if get is not None:
            get_dtype, get_offset = self._element.field(get)
            get_width = get_dtype.itemsize
            got = np.empty(limit, dtype=get_dtype)
            get_buf = _from_buffer(got)
        moved: int = _rl_deque_move(self._hp, self._id, dst._id, current_owner_id(), limit, 0,
                                    0, 0, _NULL, offset, dtype.itemsize,
                                    _from_buffer("uint64_t[]", iovas), get_offset, get_width,
                                    get_buf)
        if moved < 0:
            self._move_error(-moved, dst, limit)
        if moved < limit:
            iovas = iovas[:moved]
            got = None if got is None else got[:moved]
        return moved, iovas, got

    def move_to_ring(self, dst: RRefDeque, limit: int, field: str | None,
                     ring: npt.NDArray[np.uint64], start: int,
                     words: npt.NDArray[np.uint64] | None = None, word: int = 0) -> int:
        """`move_to(dst, limit)`, writing in the same call one 16-byte DMA descriptor per
        moved item into `ring` (a C-contiguous uint64 array of shape (slots, 2), such as
        a descriptor ring's view): item i gets ring[(start + i) % slots] = (IOVA of its
        `field`, words[i] or `word`). The driver's "lend these buffers to the device"
        step with no per-item Python. Returns how many moved."""
        self._check_peer(dst)
        if (not isinstance(ring, np.ndarray) or ring.dtype != np.uint64 or ring.ndim != 2
                or ring.shape[1] != 2 or not ring.flags.c_contiguous or not ring.flags.writeable):
            raise TypeError("move_to_ring: ring must be a writable C-contiguous uint64 array "
                            "of shape (slots, 2)")
        slots = len(ring)
        if not 0 <= start < slots:
            raise ValueError(f"move_to_ring: start {start} outside the ring's {slots} slots")
        limit = max(0, min(limit, self._capacity, slots))
        words_buf = _NULL
        if words is not None:
            if words.dtype != np.uint64 or not words.flags.c_contiguous or len(words) < limit:
                raise TypeError(f"move_to_ring: words must be a contiguous uint64 array of at "
                                f"least {limit}")
            words_buf = _from_buffer("uint64_t[]", words)
        dtype, offset = self._element.field(field)
        moved: int = _rl_deque_move_to_ring(
            self._hp, self._id, dst._id, current_owner_id(), limit, offset, dtype.itemsize,
            _from_buffer("uint64_t[]", ring), slots, start, words_buf, word)
        if moved < 0:
            self._move_error(-moved, dst, limit)
        return moved

    def _check_peer(self, dst: RRefDeque) -> None:
        if not isinstance(dst, RRefDeque) or dst._element is not self._element:
            raise TypeError(f"RRefDeque[{self._element.name}] cannot move items into {dst!r}")

    def _move_error(self, rc: int, dst: RRefDeque, n: int) -> None:
        self._require_owned()  # the clearer errors: moved away, not ours, freed
        dst._require_owned()
        if rc == EFULL:
            free = dst._capacity - int(dst._header[1])
            raise ValueError(f"{n} items do not fit in RRefDeque 0x{dst._id:x} "
                             f"({free} free slots)")
        if rc == EINVAL and dst._id == self._id:
            raise ValueError("cannot move items from a deque into itself")
        if rc == EINVAL and n > int(self._header[1]):
            raise ValueError(f"RRefDeque 0x{self._id:x} holds {int(self._header[1])} "
                             f"items, not {n}")
        check(rc, self._id, self._heap, f"move from RRefDeque 0x{self._id:x} to 0x{dst._id:x}")

    # -- fields of the items, where they are -------------------------------------------
    def get(self, field: str | None = None) -> np.ndarray:
        """A new array holding `field` (the whole item if None) of every item, front
        first, read in place (no move): shape (len,) plus the field's shape. One registry
        call; the deque's owner only."""
        dtype, offset = self._element.field(field)
        out = np.empty(int(self._header[1]), dtype=dtype)
        self._fields(offset, dtype.itemsize, out, 0, f"get {field!r}")
        return out

    def set(self, field: str | None, values: npt.ArrayLike) -> None:
        """Write `values` (broadcast to (len,) plus the field's shape) into `field` of every
        item, in place. One registry call; nothing is written if an item is borrowed."""
        dtype, offset = self._element.field(field)
        src = np.empty((int(self._header[1]), *dtype.shape), dtype=dtype.base)
        src[...] = values  # a private copy: `values` may alias the items
        self._fields(offset, dtype.itemsize, src, 1, f"set {field!r}")

    def add(self, field: str, value: int) -> None:
        """Add `value` (an int, negative to subtract; modulo 2**bits) to the unsigned integer
        `field` of every item, in place: one registry call, no array (ixy-fwd's "touch one
        byte of every packet", a TTL decrement)."""
        dtype, offset = self._element.field(field)
        if dtype.kind != "u" or dtype.shape:
            raise TypeError(f"add: field {field!r} is {dtype}, not an unsigned integer")
        if type(value) is not int:
            raise TypeError(f"add: value must be an int, not {value!r}")
        n = int(self._header[1])
        rc = _rl_deque_add(self._hp, self._id, current_owner_id(), offset, dtype.itemsize,
                           value % (1 << 64), n, _NULL)
        if rc:
            bad = _new_index("uint64_t *")
            rc = _rl_deque_add(self._hp, self._id, current_owner_id(), offset, dtype.itemsize,
                               value % (1 << 64), n, bad)
            if rc:
                self._require_owned()
                self._raise_item(rc, n, bad[0], f"add to {field!r}")

    def _fields(self, offset: int, width: int, buf: np.ndarray, write: int, what: str) -> None:
        rc = _rl_deque_fields(self._hp, self._id, current_owner_id(), offset, width,
                              _from_buffer(buf), len(buf), write, _NULL)
        if rc:  # nothing changed: ask again, naming the bad item
            bad = _new_index("uint64_t *")
            rc = _rl_deque_fields(self._hp, self._id, current_owner_id(), offset, width,
                                  _from_buffer(buf), len(buf), write, bad)
            if rc:
                self._require_owned()
                self._raise_item(rc, len(buf), bad[0], what)

    def _raise_item(self, rc: int, n: int, bad: int, what: str) -> None:
        """Raise the error of a call on the deque's `n` items that names item `bad`."""
        positions = self._ring(int(self._header[0]), n)
        self._heap._raise_bulk(rc, self._slots[positions], bad,
                               f"RRefDeque 0x{self._id:x} {what}", self._id)

    def __iter__(self) -> Any:
        raise TypeError("iterate with pop_front()/pop_many(): items move out of the deque")
