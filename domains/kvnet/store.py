"""The key-value store behind kvnet: records in preallocated arrays, found through the
C-style hash table (redleaf_lab.hashtable.cstyle: 8-byte keys and values).

A memcached key is up to `key_max` bytes, so the table's 8-byte key is the key's
FNV-1a 64 digest and its 8-byte value the record's slot in the record arrays (key
bytes, value bytes, lengths, flags). A lookup compares the stored key bytes with the
asked ones: two keys with the same digest (chance ~2**-64 per pair) cannot both be
stored; the second gets NOT_STORED, never the other's value.

Interface: `Store(capacity, key_max, value_max)`; `get(key) -> (flags, value) | None`;
`set(key, flags, value) -> bool` (False: full, or a digest collision); `delete(key) ->
bool`; `len()`. Keys and values are bytes, already checked by the protocol layer.
Ownership: one instance per kvnet incarnation, used by its one serving thread.
"""

import numpy as np

from redleaf_lab.hashtable.common import FULL, INSERTED
from redleaf_lab.hashtable.cstyle import CStyleTable

from .digest import fnv1a_bytes


class Store:
    def __init__(self, capacity: int, key_max: int, value_max: int) -> None:
        self.key_max = key_max
        self.value_max = value_max
        self._table = CStyleTable(capacity)
        self._keys = np.zeros((capacity, key_max), dtype=np.uint8)
        self._values = np.zeros((capacity, value_max), dtype=np.uint8)
        self._key_len = [0] * capacity
        self._value_len = [0] * capacity
        self._flags = [0] * capacity
        self._free = list(range(capacity - 1, -1, -1))

    def __len__(self) -> int:
        return len(self._table)

    def _slot(self, key: bytes, digest: int):
        slot = self._table.get(digest)
        if slot is None:
            return None
        n = self._key_len[slot]
        if n != len(key) or self._keys[slot, :n].tobytes() != key:
            return -1  # another key with the same digest
        return slot

    def get(self, key: bytes):
        slot = self._slot(key, fnv1a_bytes(key))
        if slot is None or slot < 0:
            return None
        return self._flags[slot], self._values[slot, :self._value_len[slot]].tobytes()

    def set(self, key: bytes, flags: int, value: bytes) -> bool:
        digest = fnv1a_bytes(key)
        slot = self._slot(key, digest)
        if slot is not None and slot < 0:
            return False
        if slot is None:
            if not self._free:
                return False
            slot = self._free[-1]
            status = self._table.set(digest, slot)
            if status == FULL:
                return False
            if status == INSERTED:
                self._free.pop()
            self._keys[slot, :len(key)] = np.fromiter(key, dtype=np.uint8, count=len(key))
            self._key_len[slot] = len(key)
        self._values[slot, :len(value)] = np.fromiter(value, dtype=np.uint8, count=len(value))
        self._value_len[slot] = len(value)
        self._flags[slot] = flags
        return True

    def delete(self, key: bytes) -> bool:
        digest = fnv1a_bytes(key)
        slot = self._slot(key, digest)
        if slot is None or slot < 0:
            return False
        self._table.delete(digest)
        self._free.append(slot)
        return True
