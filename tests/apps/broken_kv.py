"""A deliberately broken kvnet store: keeps only the first 100 bytes of a value."""

from __future__ import annotations

from redleaf_lab.domains.kvnet.store import Store


class TruncatingStore(Store):
    def set(self, key: bytes, flags: int, value: bytes) -> bool:
        return super().set(key, flags, value[:100])
