"""Deliberately broken hash tables: the property tests must tell them from the real ones."""

from __future__ import annotations

from redleaf_lab.hashtable.common import INSERTED
from redleaf_lab.hashtable.cstyle import CStyleTable


class NoBackshiftTable:
    """Deletes by emptying the slot only: keys later in the chain become unreachable."""

    def __init__(self, capacity: int) -> None:
        self._keys: list = [None] * capacity
        self._values = [0] * capacity
        self._mask = capacity - 1

    def _home(self, key: int) -> int:
        from redleaf_lab.hashtable.common import fnv1a64
        return fnv1a64(key) & self._mask

    def set(self, key, value):
        slot = self._home(key)
        for _ in range(self._mask + 1):
            if self._keys[slot] is None or self._keys[slot] == key:
                new = self._keys[slot] is None
                self._keys[slot], self._values[slot] = key, value
                return INSERTED if new else 0
            slot = (slot + 1) & self._mask
        return -1

    def get(self, key):
        slot = self._home(key)
        for _ in range(self._mask + 1):
            if self._keys[slot] is None:
                return None
            if self._keys[slot] == key:
                return self._values[slot]
            slot = (slot + 1) & self._mask
        return None

    def delete(self, key):
        slot = self._home(key)
        for _ in range(self._mask + 1):
            if self._keys[slot] is None:
                return False
            if self._keys[slot] == key:
                self._keys[slot] = None
                return True
            slot = (slot + 1) & self._mask
        return False


class WrongFullTable:
    """Reports a full table as an update, dropping the new key silently."""

    def __init__(self, capacity: int) -> None:
        self._inner = CStyleTable(capacity)

    def set(self, key, value):
        status = self._inner.set(key, value)
        return 0 if status == -1 else status

    def get(self, key):
        return self._inner.get(key)

    def delete(self, key):
        return self._inner.delete(key)
