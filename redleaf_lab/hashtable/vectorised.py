"""VectorTable: the hash table on numpy arrays, one call for a whole batch of keys.

A packet batch (32 or 256 frames) gives 32 or 256 keys at once; each operation here
works on all of them with a fixed number of numpy calls per probe step, instead of a
Python loop per key. Layout: `keys` and `values` (uint64) and `used` (bool) arrays of
`capacity` slots, linear probing from `fnv1a64(key) & (capacity - 1)`, as in the other
styles, so all four agree on every result. A probing round looks at a window of 16
slots of every pending key at once (one gather), so at 75% load most keys end in the
first round and the long chains of a few keys cost few rounds.

Batch semantics are those of doing the batch's operations one after the other:
`set_many(keys, values)` leaves the value of a key's LAST occurrence; the statuses are
what sequential `set`s would return (INSERTED at a new key's first occurrence, UPDATED
after; when the free slots run out, the new keys that come first in the batch get
them and every occurrence of the others is FULL). Inserts claim slots in rounds: each
pending key looks at its next slot, the first key of the batch wanting a free slot
takes it, the others move on; a key never passes an empty slot, so a lookup that stops
at the first empty slot finds it. `get_many` returns (values, found); `delete_many`
deletes one key after another (backward shift, as the other styles).

Scalar `set`, `get`, `delete` wrap the batch calls (for tests and small callers).
Ownership: an instance belongs to one thread (no locking).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..sealed import Sealed
from .common import FNV_OFFSET, FNV_PRIME, FULL, INSERTED, UPDATED, check_capacity, check_word

U64 = np.uint64
_PRIME = np.uint64(FNV_PRIME)
_WINDOW = 16  # slots a pending key looks at per probing round


def fnv1a64_array(keys: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """FNV-1a 64 of each key's 8 little-endian bytes (common.fnv1a64, vectorised)."""
    column = np.ascontiguousarray(keys, dtype="<u8")
    octets = column.view(np.uint8).reshape(-1, 8)
    h = np.full(len(column), FNV_OFFSET, dtype=U64)
    for i in range(8):
        h ^= octets[:, i]
        h *= _PRIME
    return h


def as_words(what: str, values: Any) -> npt.NDArray[np.uint64]:
    """A 1-d uint64 array of `values` (ints of 0..2**64-1), else ValueError."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.dtype == U64:
        return array
    if array.size and (array.dtype.kind not in "iu" or int(array.min()) < 0):
        raise ValueError(f"{what} must be ints of 0..2**64-1")
    return array.astype(U64)


class VectorTable(Sealed):
    __slots__ = ("_count", "_keys", "_mask", "_used", "_values")

    def __init__(self, capacity: int) -> None:
        self._mask = check_capacity(capacity) - 1
        self._keys = np.zeros(capacity, dtype=U64)
        self._values = np.zeros(capacity, dtype=U64)
        self._used = np.zeros(capacity, dtype=bool)
        self._count = 0

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def __len__(self) -> int:
        return self._count

    # -- batches ------------------------------------------------------------------------
    def locate(self, keys: npt.NDArray[np.uint64],
               hashes: npt.NDArray[np.uint64] | None = None) -> npt.NDArray[np.int64]:
        """The slot of each key, -1 where it is absent (`hashes`: fnv1a64_array(keys),
        if the caller has it already)."""
        keys = as_words("keys", keys)
        if hashes is None:
            hashes = fnv1a64_array(keys)
        mask = self._mask
        out = np.full(len(keys), -1, dtype=np.int64)
        table_keys, used = self._keys, self._used
        # first the home slot alone (cheap, and enough for most keys below 50% load) ...
        starts = (hashes & U64(mask)).astype(np.int64)
        occupied = used[starts]
        hit = occupied & (table_keys[starts] == keys)
        out[hit] = starts[hit]
        go_on = occupied & ~hit
        pending = np.flatnonzero(go_on)
        if not len(pending):
            return out
        wanted = keys[go_on]
        starts = (starts[go_on] + 1) & mask
        window = _WINDOW if mask + 1 >= _WINDOW else mask + 1
        offsets = np.arange(window)
        for _ in range(0, mask + 1, window):  # ... then WINDOW slots per pending key a round
            if not len(pending):
                break
            slots = (starts[:, None] + offsets) & mask
            occupied = used[slots]
            stop = ~occupied | (table_keys[slots] == wanted[:, None])
            first = stop.argmax(axis=1)  # the first empty slot or match in the window
            rows = np.arange(len(pending))
            ended = stop[rows, first]
            slot = slots[rows, first]
            hit = ended & occupied[rows, first]
            out[pending[hit]] = slot[hit]
            go_on = ~ended
            pending, wanted = pending[go_on], wanted[go_on]
            starts = (starts[go_on] + window) & mask
        return out

    def get_many(self, keys: Any, hashes: npt.NDArray[np.uint64] | None = None
                 ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
        """(values, found) for each key; values are 0 where not found."""
        slots = self.locate(keys, hashes)
        found = slots >= 0
        values = np.where(found, self._values[np.maximum(slots, 0)], U64(0))
        return values, found

    def set_many(self, keys: Any, values: Any,
                 hashes: npt.NDArray[np.uint64] | None = None) -> npt.NDArray[np.int8]:
        """Store each (key, value); the statuses of sequential sets (see the docstring)."""
        keys = as_words("keys", keys)
        values = as_words("values", values)
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        status = np.empty(len(keys), dtype=np.int8)
        if not len(keys):
            return status
        if hashes is None:
            hashes = fnv1a64_array(keys)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(unique) == len(keys):  # no repeated key: each one's last is its first
            last = first
        else:
            last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
        final = values[last]
        slots = self.locate(unique, hashes[first])
        present = slots >= 0
        self._values[slots[present]] = final[present]
        new = np.flatnonzero(~present)
        new = new[np.argsort(first[new], kind="stable")]  # in order of first occurrence
        room = self.capacity - self._count
        accepted, rejected = new[:room], new[room:]
        if len(accepted):
            self._claim(unique[accepted], final[accepted], hashes[first[accepted]])
        outcome = np.full(len(unique), UPDATED, dtype=np.int8)
        outcome[rejected] = FULL
        status[:] = outcome[inverse]
        status[first[accepted]] = INSERTED
        return status

    def _claim(self, keys: npt.NDArray[np.uint64], values: npt.NDArray[np.uint64],
               hashes: npt.NDArray[np.uint64]) -> None:
        """Insert distinct absent keys (there is room for all): rounds of slot claiming."""
        mask = self._mask
        starts = (hashes & U64(mask)).astype(np.int64)
        used = self._used
        # first the home slots: a free one goes to the first key (batch order) wanting it
        free = np.flatnonzero(~used[starts])
        _, winners = np.unique(starts[free], return_index=True)
        take = free[winners]
        won = starts[take]
        used[won] = True
        self._keys[won] = keys[take]
        self._values[won] = values[take]
        self._count += len(take)
        stay = np.ones(len(keys), dtype=bool)
        stay[take] = False
        pending = np.flatnonzero(stay)
        starts = starts[stay]
        window = _WINDOW if mask + 1 >= _WINDOW else mask + 1
        offsets = np.arange(window)
        while len(pending):
            slots = (starts[:, None] + offsets) & mask
            free = ~used[slots]
            first = free.argmax(axis=1)
            rows = np.arange(len(pending))
            has_free = free[rows, first]
            starts = np.where(has_free, slots[rows, first], (starts + window) & mask)
            candidates = np.flatnonzero(has_free)
            # the first pending key (batch order) wanting each free slot takes it; the
            # others look again from that slot, now taken, in the next round
            _, winners = np.unique(starts[candidates], return_index=True)
            take = candidates[winners]
            won = starts[take]
            used[won] = True
            self._keys[won] = keys[pending[take]]
            self._values[won] = values[pending[take]]
            self._count += len(take)
            stay = np.ones(len(pending), dtype=bool)
            stay[take] = False
            pending = pending[stay]
            starts = starts[stay]

    def delete_many(self, keys: Any) -> npt.NDArray[np.bool_]:
        """Delete each key in turn; True where it was there."""
        keys = as_words("keys", keys)
        return np.array([self._delete_one(int(k)) for k in keys], dtype=bool)

    def _delete_one(self, key: int) -> bool:
        slot = int(self.locate(np.array([key], dtype=U64))[0])
        if slot < 0:
            return False
        mask = self._mask
        used, table_keys, values = self._used, self._keys, self._values
        used[slot] = False
        self._count -= 1
        gap = slot
        while True:  # backward shift deletion, as in idiomatic.py
            slot = (slot + 1) & mask
            if not used[slot]:
                return True
            home = int(fnv1a64_array(table_keys[slot:slot + 1])[0]) & mask
            if (slot - home) & mask >= (slot - gap) & mask:
                table_keys[gap] = table_keys[slot]
                values[gap] = values[slot]
                used[gap] = True
                used[slot] = False
                gap = slot

    # -- one key ------------------------------------------------------------------------
    def set(self, key: int, value: int) -> int:
        check_word("key", key)
        check_word("value", value)
        return int(self.set_many(np.array([key], dtype=U64), np.array([value], dtype=U64))[0])

    def get(self, key: int) -> int | None:
        if type(key) is not int or not 0 <= key < 1 << 64:
            return None
        values, found = self.get_many(np.array([key], dtype=U64))
        return int(values[0]) if found[0] else None

    def delete(self, key: int) -> bool:
        if type(key) is not int or not 0 <= key < 1 << 64:
            return False
        return self._delete_one(key)

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value), in slot order."""
        where = np.flatnonzero(self._used)
        return list(zip(self._keys[where].tolist(), self._values[where].tolist(), strict=True))
