"""IdiomaticTable: the hash table as a Python programmer would write it first.

Slots are a list of `Optional[tuple[int, int]]` (None: empty), probing walks them with
a generator of slot numbers, the hash is `common.fnv1a64`. Every entry is a tuple
object; every probe step is a generator resume. This is the style the lab measures
against the flat one (cstyle.py), as the paper's idiomatic Rust (Option<(K, V)>) is
measured against C-style Rust. Contract: see `common` (set -> INSERTED/UPDATED/FULL,
get -> value or None, delete -> bool).

Ownership: an instance belongs to one thread (no locking).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..sealed import Sealed
from .common import FULL, INSERTED, UPDATED, check_capacity, check_word, fnv1a64

Entry = tuple[int, int] | None  # Optional: None is an empty slot


class IdiomaticTable(Sealed):
    __slots__ = ("_count", "_mask", "_slots")

    def __init__(self, capacity: int) -> None:
        self._mask = check_capacity(capacity) - 1
        self._slots: list[Entry] = [None] * capacity
        self._count = 0

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def __len__(self) -> int:
        return self._count

    def _probe(self, key: int) -> Iterator[int]:
        """Slot numbers from the key's home slot on, each slot once."""
        home = fnv1a64(key) & self._mask
        for step in range(self._mask + 1):
            yield (home + step) & self._mask

    def _find(self, key: int) -> tuple[int, bool]:
        """(slot, found): the key's slot, or the empty slot where it would go (-1: full)."""
        for slot in self._probe(key):
            entry = self._slots[slot]
            if entry is None:
                return slot, False
            if entry[0] == key:
                return slot, True
        return -1, False

    def set(self, key: int, value: int) -> int:
        check_word("key", key)
        check_word("value", value)
        slot, found = self._find(key)
        if slot < 0:
            return FULL
        self._slots[slot] = (key, value)
        if found:
            return UPDATED
        self._count += 1
        return INSERTED

    def get(self, key: int) -> int | None:
        slot, found = self._find(key)
        entry = self._slots[slot] if found else None
        return entry[1] if entry is not None else None

    def delete(self, key: int) -> bool:
        slot, found = self._find(key)
        if not found:
            return False
        self._slots[slot] = None
        self._count -= 1
        self._close_gap(slot)
        return True

    def _close_gap(self, gap: int) -> None:
        """Backward shift deletion: move later entries of the chain into the gap when
        their home slot does not lie cyclically in (gap, their slot]."""
        mask = self._mask
        slot = gap
        while True:
            slot = (slot + 1) & mask
            entry = self._slots[slot]
            if entry is None:
                return
            home = fnv1a64(entry[0]) & mask
            if (slot - home) & mask >= (slot - gap) & mask:
                self._slots[gap] = entry
                self._slots[slot] = None
                gap = slot

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value), in slot order."""
        return [entry for entry in self._slots if entry is not None]
