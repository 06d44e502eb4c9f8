"""Fixed-layout types: what may live on the shared heap.

A `Layout` is declared once, with a name and a numpy dtype, and gets a stable
numeric type id that the C registry records for every allocation (RedLeaf's
`TypeId`). Layouts are the analog of Rust's `RRefable` + `Copy` data: fixed
size, no pointers, so a whole object can change owner without a copy.

    Block = Layout.bytes("Block", 4096)                 # [u8; 4096]
    BlkReq = Layout.struct("BlkReq", [("data", "u1", 4096),
                                      ("data_len", "u4"), ("block", "u8")])

Container layouts (the storage behind RRefArray and RRefDeque) are created by
the heap module itself; users only declare element layouts.

Declaring the same name twice with the same dtype returns the same layout; a
different dtype is an error, so a type id always means one layout.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from ..errors import InterfaceError
from ..sealed import Sealed


class Layout(Sealed):
    """A named fixed-layout type with a registry type id."""

    _by_name: ClassVar[dict[str, Layout]] = {}
    _by_id: ClassVar[dict[int, Layout]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    __slots__ = ("_fields", "_unsigned", "dtype", "name", "size", "type_id")

    def __init__(self, name: str, dtype: Any) -> None:
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise InterfaceError(f"layout {name!r}: dtype {dt} holds Python objects")
        if dt.itemsize == 0:
            raise InterfaceError(f"layout {name!r}: zero-sized dtype")
        self.name = name
        self.dtype = dt
        self.size = int(dt.itemsize)
        self.type_id = 0
        self._fields: dict[str | None, tuple[np.dtype[Any], int]] = {None: (dt, 0)}
        self._unsigned: dict[str, tuple[int, int]] = {}

    def field(self, name: str | None) -> tuple[np.dtype[Any], int]:
        """(dtype, byte offset) of field `name` (the whole element for None); KeyError if
        the layout has no such field. Looked up once, then cached (the hot paths ask
        for the same fields on every batch)."""
        found = self._fields.get(name)
        if found is None:
            fields = self.dtype.fields
            if fields is None or name not in fields:
                raise KeyError(f"layout {self.name} has no field {name!r}")
            dtype, offset = fields[name][:2]
            found = self._fields[name] = (dtype, int(offset))
        return found

    def unsigned(self, name: str) -> tuple[int, int]:
        """(byte offset, width) of field `name`, which must be an unsigned integer of 1, 2,
        4 or 8 bytes (TypeError otherwise; KeyError if there is no such field). Cached."""
        found = self._unsigned.get(name)
        if found is None:
            dtype, offset = self.field(name)
            if dtype.kind != "u" or dtype.shape or dtype.itemsize not in (1, 2, 4, 8):
                raise TypeError(f"layout {self.name}: field {name!r} is {dtype}, not unsigned")
            found = self._unsigned[name] = (offset, dtype.itemsize)
        return found

    # -- declaration -------------------------------------------------------
    @classmethod
    def declare(cls, name: str, dtype: Any) -> Layout:
        """Declare (or look up) the layout `name` with the given dtype."""
        candidate = cls(name, dtype)
        with cls._lock:
            existing = cls._by_name.get(name)
            if existing is not None:
                if existing.dtype != candidate.dtype:
                    raise InterfaceError(
                        f"layout {name!r} already declared with dtype {existing.dtype}, "
                        f"not {candidate.dtype}"
                    )
                return existing
            candidate.type_id = len(cls._by_id) + 1
            cls._by_name[name] = candidate
            cls._by_id[candidate.type_id] = candidate
            return candidate

    @classmethod
    def bytes(cls, name: str, size: int) -> Layout:
        """A byte array `[u8; size]`, e.g. a 4096-byte block or a packet buffer."""
        if size <= 0:
            raise InterfaceError(f"layout {name!r}: size must be positive, got {size}")
        return cls.declare(name, np.dtype((np.uint8, (size,))))

    @classmethod
    def struct(cls, name: str, fields: list[tuple[Any, ...]]) -> Layout:
        """A C-like struct from numpy field specs: [(name, type), (name, type, shape)]."""
        return cls.declare(name, np.dtype(fields, align=True))

    @classmethod
    def scalar(cls, name: str, dtype: Any) -> Layout:
        return cls.declare(name, np.dtype(dtype))

    @classmethod
    def by_id(cls, type_id: int) -> Layout | None:
        return cls._by_id.get(type_id)

    @classmethod
    def all(cls) -> list[Layout]:
        return list(cls._by_id.values())

    def __repr__(self) -> str:
        return f"Layout({self.name}, {self.size} B, type {self.type_id})"


# The standard layouts, shared by interfaces and drivers.
BLOCK_SIZE = 4096
Block = Layout.bytes("Block", BLOCK_SIZE)
BlkReq = Layout.struct(
    "BlkReq", [("data", np.uint8, (BLOCK_SIZE,)), ("data_len", np.uint32), ("block", np.uint64)]
)
# Internal layouts for containers (their contents are child ids, u64 each).
CONTAINER_SLOTS = Layout.scalar("rref-slots", np.uint64)
VEC_STORAGE = Layout.scalar("rref-vec-storage", np.uint8)
