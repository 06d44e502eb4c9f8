"""What a deque's owner does with its items without taking them out: fields read,
written or incremented in place, and moves from one deque to another (RRefDeque's
per-batch fast path; heap/containers.py has the rest of RRefDeque).

Each operation is one registry call (csrc/deque.c) that checks every item before it
changes anything (owner of the deque or deques, item nested in it, field inside the
item, not borrowed for a write), so a forged or stale id can only produce an error, and
a refusal changes nothing. Moved items stay nested: only their container changes, so a
move costs no per-owner accounting, and no handle or batch object is made. The moves
can also write a field (`move_exact`), write a 16-byte DMA descriptor per item into a
descriptor ring (`move_to_ring`), or set a field from each item's descriptor writeback
(`move_from_ring`): a driver lends buffers to its device, or hands received frames on,
with no per-item Python.

Thread safety: as for RRefDeque (the owner's thread; registry calls are atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._core import ffi, lib
from .._core.heap import EFULL, EINVAL, check
from ..kernel.context import current_owner_id
from ..sealed import Sealed
from .slots import _SlotContainer

_rl_deque_fields = lib.rl_deque_fields
_rl_deque_add = lib.rl_deque_add
_rl_deque_move = lib.rl_deque_move
_rl_deque_move_to_ring = lib.rl_deque_move_to_ring
_rl_deque_move_from_ring = lib.rl_deque_move_from_ring
_from_buffer = ffi.from_buffer
_new_index = ffi.new
_NULL = ffi.NULL
_U64 = np.dtype(np.uint64)


class DescriptorRing(Sealed):
    """A ring of 16-byte DMA descriptors for `move_to_ring`: a writable C-contiguous uint64
    array of shape (slots, 2), such as a numpy view of a descriptor ring's DMA memory,
    and optionally `word_table`, the second descriptor word for each value of an item's
    key field (0: no valid word; e.g. a TX ring's word for each frame length). Checked
    once here, not on every batch; holding it keeps the arrays, and so the memory, alive.
    Its fields are read-only: C code writes `slots` descriptors into the array it holds."""

    __slots__ = ("_array", "_cdata", "_slots", "_table", "_table_len", "_word_table")

    def __init__(self, array: npt.NDArray[np.uint64],
                 word_table: npt.NDArray[np.uint64] | None = None) -> None:
        if not _is_u64_array(array, 2) or array.shape[1] != 2 or not array.flags.writeable \
                or len(array) == 0:
            raise TypeError("a descriptor ring must be a writable C-contiguous uint64 array "
                            "of shape (slots, 2), slots >= 1")
        self._array = array
        self._slots = len(array)
        self._cdata = _from_buffer("uint64_t[]", array)
        self._word_table = word_table
        self._table_len = 0
        self._table = _NULL
        if word_table is not None:
            if not _is_u64_array(word_table, 1):
                raise TypeError("a word table must be a C-contiguous 1-d uint64 array")
            self._table_len = len(word_table)
            self._table = _from_buffer("uint64_t[]", word_table)

    @property
    def array(self) -> npt.NDArray[np.uint64]:
        return self._array

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def word_table(self) -> npt.NDArray[np.uint64] | None:
        return self._word_table


@dataclass(frozen=True)
class WritebackField(Sealed):
    """A value in the writeback of a 16-byte DMA descriptor, for `move_from_ring`: it sits
    in 64-bit word `word` (0 or 1) at bit `shift`, `mask` wide, and may be at most
    `limit`; the descriptor is complete when (that word & check_mask) == check_want. E.g.
    the 82599's advanced RX writeback (datasheet §7.1.6.2): the length is bits 32..47 of
    word 1, and DD | EOP are bits 0..1."""

    word: int
    shift: int
    mask: int
    check_mask: int
    check_want: int
    limit: int = (1 << 64) - 1

    def __post_init__(self) -> None:
        if self.word not in (0, 1) or not 0 <= self.shift < 64:
            raise ValueError(f"{self}: word must be 0 or 1 and shift 0..63")
        for name in ("mask", "check_mask", "check_want", "limit"):
            if not 0 <= getattr(self, name) < 1 << 64:
                raise ValueError(f"{self}: {name} must fit 64 bits")


def _is_u64_array(array: Any, ndim: int) -> bool:
    return (isinstance(array, np.ndarray) and array.dtype == _U64 and array.ndim == ndim
            and array.flags.c_contiguous)


class DequeItemOps(_SlotContainer):
    """RRefDeque's in-place field operations and deque-to-deque moves."""

    __slots__ = ()

    # -- deque to deque: no batch in between --------------------------------------------
    def move_to(self, dst: DequeItemOps, limit: int | None = None) -> int:
        """Move up to `limit` items (all by default) from the front of this deque to the
        back of `dst`, as many as `dst` has room for; both must be the caller's. One
        registry call, no handle, no batch (the items stay nested: only their container
        changes). Returns how many moved."""
        limit = self._capacity if limit is None else max(0, limit)
        self._check_peer(dst)
        moved: int = _rl_deque_move(self._hp, self._id, dst._id, current_owner_id(), limit, 0,
                                    0, 0, _NULL)
        if moved < 0:
            self._move_error(-moved, dst, limit)
        return moved

    def move_exact(self, dst: DequeItemOps, n: int, field: str | None = None,
                   values: npt.ArrayLike | None = None) -> None:
        """Move exactly `n` items to the back of `dst`, or none (ValueError if this deque
        holds fewer or `dst` lacks room). With `field`, first write `values` (broadcast
        to (n,) plus the field's shape) into that field of each, in the same call."""
        self._check_peer(dst)
        if type(n) is not int or n < 0:
            raise ValueError(f"move_exact: n must be an int >= 0, not {n!r}")
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
                                    offset, width, src)
        if moved < 0:
            self._move_error(-moved, dst, n, exact=True)

    def move_to_ring(self, dst: DequeItemOps, limit: int, field: str | None,
                     ring: DescriptorRing, start: int,
                     words: npt.NDArray[np.uint64] | None = None, word: int = 0,
                     key: str | None = None) -> int:
        """`move_to(dst, limit)`, writing in the same call one 16-byte DMA descriptor per
        moved item into `ring`: item i gets slot (start + i) % ring.slots = (IOVA of its
        `field`, its word). The word is ring.word_table[item's unsigned `key` field] when
        `key` is given (an item whose key has no word, past the table or 0, is refused:
        ValueError naming it, and nothing moves), else words[i], else `word`. At most
        ring.slots items move. The driver's "lend these buffers to the device" step with
        no per-item Python. Returns how many moved."""
        if (type(dst) is not type(self) and not isinstance(dst, DequeItemOps)) \
                or dst._element is not self._element:
            self._check_peer(dst)
        if limit < 0:
            limit = 0
        dtype, offset = self._element.field(field)
        key_offset = key_width = 0
        table = _NULL
        if key is not None:
            key_offset, key_width = self._element.unsigned(key)
            table = ring._table
            if table is _NULL:
                raise TypeError("move_to_ring: a key needs a ring with a word table")
        words_buf = _NULL
        if words is not None:
            if ((words.dtype is not _U64 and words.dtype != _U64)
                    or not words.flags.c_contiguous or len(words) < min(limit, ring._slots)):
                raise TypeError(f"move_to_ring: words must be a contiguous uint64 array of at "
                                f"least {min(limit, ring._slots)}")
            words_buf = _from_buffer("uint64_t[]", words)
        args = (self._hp, self._id, dst._id, current_owner_id(), limit, offset, dtype.itemsize,
                ring._cdata, ring._slots, start, words_buf, word, table, ring._table_len,
                key_offset, key_width)
        moved: int = _rl_deque_move_to_ring(*args, _NULL)
        if moved < 0:
            moved = self._ring_move_failed(_rl_deque_move_to_ring, args, dst, limit, ring,
                                           start, key)
        return moved

    def move_from_ring(self, dst: DequeItemOps, limit: int, ring: DescriptorRing, start: int,
                       field: str, writeback: WritebackField) -> int:
        """Move up to `limit` items (as many as `dst` has room for, at most ring.slots) to
        the back of `dst`, item i's unsigned `field` set from its descriptor's writeback,
        read back from slot (start + i) % ring.slots (`writeback` says where the value is
        and what a complete descriptor looks like). A descriptor that is not complete
        refuses the move: ValueError naming it, and nothing moves. The driver's "hand
        received frames on" step, one registry call. Returns how many moved."""
        if (type(dst) is not type(self) and not isinstance(dst, DequeItemOps)) \
                or dst._element is not self._element:
            self._check_peer(dst)
        if limit < 0:
            limit = 0
        offset, width = self._element.unsigned(field)
        args = (self._hp, self._id, dst._id, current_owner_id(), limit, ring._cdata, ring._slots,
                start, writeback.word, writeback.check_mask, writeback.check_want,
                writeback.shift, writeback.mask, writeback.limit, offset, width)
        moved: int = _rl_deque_move_from_ring(*args, _NULL)
        if moved < 0:
            moved = self._ring_move_failed(_rl_deque_move_from_ring, args, dst, limit, ring,
                                           start, None, writeback)
        return moved

    def _ring_move_failed(self, call: Any, args: tuple[Any, ...], dst: DequeItemOps, n: int,
                          ring: DescriptorRing, start: int, key: str | None,
                          writeback: WritebackField | None = None) -> int:
        """A ring move refused (and changed nothing): raise the precise error. The call is
        made again with an error cell, to name the refused item; if that one goes through
        (a garbage collection in between changed something), return what it moved."""
        if not 0 <= start < ring.slots:
            raise ValueError(f"start {start} is outside the ring's {ring.slots} slots")
        bad = _new_index("uint64_t *")
        rc: int = call(*args, bad)
        if rc >= 0:
            return rc
        index = bad[0]
        if -rc == EINVAL and key is not None and index < n:
            value = int(self.get(key)[index])
            raise ValueError(f"item {index} of RRefDeque 0x{self._id:x}: its {key!r} "
                             f"({value}) has no descriptor word; nothing moved")
        if -rc == EINVAL and writeback is not None and index < n:
            slot = (start + index) % ring.slots
            word = int(ring.array[slot, writeback.word])
            value = (word >> writeback.shift) & writeback.mask
            why = ("not a complete writeback" if word & writeback.check_mask != writeback.check_want
                   else f"its value {value} is past the limit {writeback.limit}")
            raise ValueError(f"descriptor {slot} (item {index}) has word {writeback.word} = "
                             f"{word:#x}: {why}; nothing moved")
        self._move_error(-rc, dst, n)
        return rc  # not reached: _move_error raises

    def _check_peer(self, dst: DequeItemOps) -> None:
        if (type(dst) is not type(self) and not isinstance(dst, DequeItemOps)) \
                or dst._element is not self._element:
            raise TypeError(f"RRefDeque[{self._element.name}] cannot move items into {dst!r}")

    def _move_error(self, rc: int, dst: DequeItemOps, n: int, exact: bool = False) -> None:
        """Raise the error of a refused move of `n` items (`exact`: all or none)."""
        self._require_owned()  # the clearer errors: moved away, not ours, freed
        dst._require_owned()
        if rc == EFULL:
            free = dst._capacity - int(dst._header[1])
            raise ValueError(f"{n} items do not fit in RRefDeque 0x{dst._id:x} "
                             f"({free} free slots)")
        if rc == EINVAL and dst._id == self._id:
            raise ValueError("cannot move items from a deque into itself")
        if rc == EINVAL and exact and n > int(self._header[1]):
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
        offset, width = self._element.unsigned(field)  # TypeError unless unsigned
        if type(value) is not int:
            raise TypeError(f"add: value must be an int, not {value!r}")
        n = int(self._header[1])
        addend = value & 0xFFFF_FFFF_FFFF_FFFF
        rc = _rl_deque_add(self._hp, self._id, current_owner_id(), offset, width, addend, n,
                           _NULL)
        if rc:
            bad = _new_index("uint64_t *")
            rc = _rl_deque_add(self._hp, self._id, current_owner_id(), offset, width, addend,
                               n, bad)
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

    def _ring(self, start: int, n: int) -> Any:
        """Slots start, start + 1, ... (mod capacity): a slice unless they wrap around."""
        start %= self._capacity
        if start + n <= self._capacity:
            return slice(start, start + n)
        return (start + np.arange(n)) % self._capacity
