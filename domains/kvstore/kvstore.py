"""The kvstore domain: blocks stored as RRefs it owns.

Everything it stores is owned by this domain on the shared heap, so when it
crashes the kernel reclaims all of it. Checksums come from the checksum
domain (a nested call); if that domain has crashed the store falls back to
computing them itself: a caller may handle RpcError and carry on.
"""

import zlib

from redleaf_lab.api import RpcError


class Store:
    def __init__(self, ctx, checksum) -> None:
        self._ctx = ctx
        self._checksum = checksum
        self._values = {}
        self._sums = {}
        self.fallbacks = 0

    def _crc(self, value) -> int:
        try:
            return self._checksum.crc32(value)
        except RpcError:
            self.fallbacks += 1
            return zlib.crc32(value.readonly())

    def put(self, key: int, value) -> int:
        crc = self._crc(value)
        old = self._values.pop(key, None)
        if old is not None:
            old.drop()
        self._values[key] = value
        self._sums[key] = crc
        return crc

    def get(self, key: int, into):
        value = self._values.get(key)
        if value is None:
            return (False, into)
        view = into.array()
        view[:] = value.readonly()
        if zlib.crc32(view) != self._sums[key]:
            raise ValueError(f"value of key {key} is corrupt")
        del view
        return (True, into)

    def delete(self, key: int) -> bool:
        value = self._values.pop(key, None)
        self._sums.pop(key, None)
        if value is None:
            return False
        value.drop()
        return True

    def keys(self) -> tuple:
        return tuple(sorted(self._values))

    def use_checksum(self, service) -> None:
        self._checksum = service


def init(ctx, checksum) -> Store:
    return Store(ctx, checksum)
