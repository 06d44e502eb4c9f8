"""CStyleTable: the hash table written the way C is: flat preallocated arrays, integer
arithmetic only, no per-entry objects, no helper generators, the hash inlined.

Keys and values sit in two Python lists of ints, occupancy in a bytearray. Each
operation is one loop over slot numbers. Contract: see `common` (set ->
INSERTED/UPDATED/FULL, get -> value or None, delete -> bool).

Ownership: an instance belongs to one thread (no locking).
"""

from __future__ import annotations

from ..sealed import Sealed
from .common import FNV_OFFSET, FNV_PRIME, FULL, INSERTED, MASK64, UPDATED, check_capacity


class CStyleTable(Sealed):
    __slots__ = ("_count", "_keys", "_mask", "_used", "_values")

    def __init__(self, capacity: int) -> None:
        self._mask = check_capacity(capacity) - 1
        self._keys = [0] * capacity
        self._values = [0] * capacity
        self._used = bytearray(capacity)
        self._count = 0

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def __len__(self) -> int:
        return self._count

    def set(self, key: int, value: int) -> int:
        if type(key) is not int or type(value) is not int or not 0 <= key <= MASK64 \
                or not 0 <= value <= MASK64:
            raise ValueError(f"key and value must be ints of 0..2**64-1, got {key!r}, {value!r}")
        h = FNV_OFFSET
        h = ((h ^ (key & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 8) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 16) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 24) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 32) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 40) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 48) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ (key >> 56)) * FNV_PRIME) & MASK64
        mask = self._mask
        keys = self._keys
        used = self._used
        slot = h & mask
        for _ in range(mask + 1):
            if not used[slot]:
                used[slot] = 1
                keys[slot] = key
                self._values[slot] = value
                self._count += 1
                return INSERTED
            if keys[slot] == key:
                self._values[slot] = value
                return UPDATED
            slot = (slot + 1) & mask
        return FULL

    def get(self, key: int) -> int | None:
        h = FNV_OFFSET
        h = ((h ^ (key & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 8) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 16) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 24) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 32) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 40) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 48) & 0xFF)) * FNV_PRIME) & MASK64
        h = ((h ^ ((key >> 56) & 0xFF)) * FNV_PRIME) & MASK64
        mask = self._mask
        keys = self._keys
        used = self._used
        slot = h & mask
        for _ in range(mask + 1):
            if not used[slot]:
                return None
            if keys[slot] == key:
                return self._values[slot]
            slot = (slot + 1) & mask
        return None

    def _slot_of(self, key: int) -> int:
        h = FNV_OFFSET
        for shift in (0, 8, 16, 24, 32, 40, 48, 56):
            h = ((h ^ ((key >> shift) & 0xFF)) * FNV_PRIME) & MASK64
        return h & self._mask

    def delete(self, key: int) -> bool:
        mask = self._mask
        keys = self._keys
        used = self._used
        values = self._values
        slot = self._slot_of(key)
        for _ in range(mask + 1):
            if not used[slot]:
                return False
            if keys[slot] == key:
                break
            slot = (slot + 1) & mask
        else:
            return False
        used[slot] = 0
        self._count -= 1
        gap = slot  # backward shift deletion, as in idiomatic.py
        while True:
            slot = (slot + 1) & mask
            if not used[slot]:
                return True
            home = self._slot_of(keys[slot])
            if (slot - home) & mask >= (slot - gap) & mask:
                keys[gap] = keys[slot]
                values[gap] = values[slot]
                used[gap] = 1
                used[slot] = 0
                gap = slot

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value), in slot order."""
        return [(self._keys[i], self._values[i]) for i in range(self._mask + 1) if self._used[i]]
