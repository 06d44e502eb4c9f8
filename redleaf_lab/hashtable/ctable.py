"""CTable: the C reference hash table (`_core/csrc/hashtable.c`) behind the common
contract, for the benchmark, the property tests and the lab. Not reachable from
domains: it holds the cffi `lib` (raw C calls).

`bench_set(keys, values)` / `bench_get(keys)` run the whole loop in C and return the
elapsed ns, so the benchmark measures the table, not the cost of crossing cffi.

Ownership: an instance owns its C table (freed with it); one thread at a time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .._core import ffi, lib
from .common import check_capacity, check_word


class CTable:
    def __init__(self, capacity: int) -> None:
        log2 = check_capacity(capacity).bit_length() - 1
        raw = lib.rl_ht_create(log2)
        if raw == ffi.NULL:
            raise MemoryError(f"cannot allocate a C hash table of {capacity} slots")
        self._table = ffi.gc(raw, lib.rl_ht_destroy)
        self._out = ffi.new("uint64_t *")

    @property
    def capacity(self) -> int:
        return int(lib.rl_ht_capacity(self._table))

    def __len__(self) -> int:
        return int(lib.rl_ht_count(self._table))

    def set(self, key: int, value: int) -> int:
        check_word("key", key)
        check_word("value", value)
        return int(lib.rl_ht_set(self._table, key, value))

    def get(self, key: int) -> int | None:
        if type(key) is not int or not 0 <= key < 1 << 64:
            return None
        return int(self._out[0]) if lib.rl_ht_get(self._table, key, self._out) else None

    def delete(self, key: int) -> bool:
        if type(key) is not int or not 0 <= key < 1 << 64:
            return False
        return bool(lib.rl_ht_delete(self._table, key))

    def bench_set(self, keys: npt.NDArray[np.uint64], values: npt.NDArray[np.uint64]
                  ) -> tuple[int, int]:
        """(ns, sum of statuses) of setting every (key, value) in C."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        values = np.ascontiguousarray(values, dtype=np.uint64)
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        inserted = ffi.new("int64_t *")
        ns = lib.rl_ht_bench_set(self._table, ffi.from_buffer("uint64_t[]", keys),
                                 ffi.from_buffer("uint64_t[]", values), len(keys), inserted)
        return int(ns), int(inserted[0])

    def bench_get(self, keys: npt.NDArray[np.uint64]) -> tuple[int, int, int]:
        """(ns, sum of the values found, hits) of getting every key in C."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        checksum = ffi.new("uint64_t *")
        found = ffi.new("uint64_t *")
        ns = lib.rl_ht_bench_get(self._table, ffi.from_buffer("uint64_t[]", keys), len(keys),
                                 checksum, found)
        return int(ns), int(checksum[0]), int(found[0])
