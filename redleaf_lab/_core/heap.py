"""Typed Python wrapper of the C shared heap (csrc/heap.h): `CoreHeap`.

Purpose: one `CoreHeap` per kernel owns one `rl_heap` (an mmap'd arena plus the registry
of every allocation). Each method is a single C call plus an error check that maps the
RL_* code to an exception from `redleaf_lab.errors` (see `check`). Ids are plain ints
(generation << 32 | slot + 1); pointers are cffi `void *` cdata into the arena.

Interface: alloc/alloc_container/free/free_if_live, move/move_bulk, borrow/unborrow,
attach/detach (+ _bulk), gather/scatter/iova_bulk/free_owned_bulk (one field of each of
a batch of objects, csrc/bulk.c), reclaim/kill_domain, queries (owner, lookup, stats,
domain_stats, entries), addressing (ptr, buffer, iova, iova_to_ptr, base/size/iova_base).
Bulk methods take numpy uint64 arrays (anything array-like is converted).

Locking/ownership: the C heap takes its own mutex, and calls into this module keep the
GIL (see build.py), so each operation is atomic for Python threads; any Python thread
(and C device threads) may use one CoreHeap concurrently.
Domain-level rules (who may call what) are the caller's job. Pointers and buffers are
only valid while this CoreHeap or a handle token is alive (the arena is unmapped when
the last of them is collected),
and an object's memory is only the caller's while its id is live.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from redleaf_lab._core import ffi, lib
from redleaf_lab.errors import (
    BorrowedError,
    DeadDomainError,
    HeapError,
    HeapFullError,
    NotOwnerError,
    StaleRefError,
)

OK: Final[int] = lib.RL_OK
ESTALE: Final[int] = lib.RL_ESTALE
ENOTOWNER: Final[int] = lib.RL_ENOTOWNER
EBORROWED: Final[int] = lib.RL_EBORROWED
ENOMEM: Final[int] = lib.RL_ENOMEM
EDEAD: Final[int] = lib.RL_EDEAD
EINVAL: Final[int] = lib.RL_EINVAL
ENESTED: Final[int] = lib.RL_ENESTED
EFULL: Final[int] = lib.RL_EFULL

OWNER_NESTED: Final[int] = lib.RL_OWNER_NESTED
OWNER_ROOT: Final[int] = lib.RL_OWNER_ROOT
MAX_OWNERS: Final[int] = lib.RL_MAX_OWNERS
MAX_ALLOC: Final[int] = lib.RL_MAX_ALLOC

FLAG_CONTAINER: Final[int] = lib.RL_FLAG_CONTAINER
FLAG_ORPHANED: Final[int] = lib.RL_FLAG_ORPHANED
FLAG_FREE_PENDING: Final[int] = lib.RL_FLAG_FREE_PENDING

FREED_BY_OWNER: Final[int] = lib.RL_FREED_BY_OWNER
RECLAIMED: Final[int] = lib.RL_RECLAIMED
FREED_WITH_CONTAINER: Final[int] = lib.RL_FREED_WITH_CONTAINER

_NO_INDEX: Final[int] = lib.RL_NO_INDEX

_STALE_REASONS: Final[dict[int, str]] = {
    FREED_BY_OWNER: "was freed by its owner",
    RECLAIMED: "was reclaimed when its owner domain crashed",
    FREED_WITH_CONTAINER: "was freed together with its container",
}

_ERRORS: Final[dict[int, tuple[type[HeapError], str]]] = {
    ESTALE: (StaleRefError, "is not a live heap object (already freed, or never a valid id)"),
    ENOTOWNER: (NotOwnerError, "is not owned by the domain given"),
    EBORROWED: (BorrowedError, "is borrowed, so it cannot be moved, nested or freed"),
    ENOMEM: (HeapFullError, "the shared-heap arena is exhausted"),
    EDEAD: (DeadDomainError, "a domain involved (the destination or the owner) is dead"),
    EINVAL: (HeapError, "invalid argument"),
    ENESTED: (HeapError, "is inside a container (or is not a child of the container given)"),
    EFULL: (HeapFullError, "the shared-heap registry table is full"),
}

IdArray = npt.NDArray[np.uint64]


def describe(rc: int, id: int = 0, heap: Any = None) -> str:
    """Human-readable text for error code `rc` about object `id` (0: no object)."""
    text = _ERRORS[rc][1] if rc in _ERRORS else f"unknown heap error code {rc}"
    if rc == ESTALE and heap is not None and id:
        handle = heap.handle if isinstance(heap, CoreHeap) else heap
        text = _STALE_REASONS.get(lib.rl_free_reason(handle, id), text)
    about_object = text.startswith(("is ", "was "))
    if not id:
        return f"the object {text}" if about_object else text
    return f"object {id:#x} {text}" if about_object else f"object {id:#x}: {text}"


def error_for(rc: int, id: int = 0, heap: Any = None, operation: str = "") -> HeapError:
    """The exception for error code `rc` (never call with rc == OK)."""
    cls = _ERRORS[rc][0] if rc in _ERRORS else HeapError
    prefix = f"{operation}: " if operation else ""
    return cls(prefix + describe(rc, id, heap))


def check(rc: int, id: int = 0, heap: Any = None, operation: str = "") -> None:
    """Raise the error for `rc` unless it is OK. Pass the heap (a CoreHeap or its `rl_heap *`)
    so a StaleRefError can say why the object went away (freed, reclaimed, with container)."""
    if rc != OK:
        raise error_for(rc, id, heap, operation)


def as_id_array(ids: npt.ArrayLike) -> IdArray:
    """`ids` as a contiguous uint64 array (no copy when it already is one)."""
    return np.ascontiguousarray(ids, dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """One registry entry (a snapshot: it goes stale as soon as the heap changes)."""

    id: int
    size: int
    type_id: int
    owner: int
    borrows: int
    generation: int
    flags: int
    child_offset: int
    parent: int
    iova: int

    @property
    def is_container(self) -> bool:
        return bool(self.flags & FLAG_CONTAINER)

    @property
    def is_nested(self) -> bool:
        return self.owner == OWNER_NESTED

    @classmethod
    def from_cdata(cls, entry: Any) -> EntryInfo:
        return cls(
            entry.id, entry.size, entry.type_id, entry.owner, entry.borrows, entry.generation,
            entry.flags, entry.child_offset, entry.parent, entry.iova,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeapStats:
    """Heap-wide counters; bytes are requested sizes, arena_used is the bump high-water."""

    live_objects: int
    live_bytes: int
    total_allocs: int
    total_frees: int
    reclaimed_objects: int
    reclaimed_bytes: int
    arena_bytes: int
    arena_used: int
    free_list_bytes: int
    pending_objects: int
    max_objects: int
    held_objects: int  # freed objects whose memory waits for their last numpy view


_STATS_FIELDS: Final[tuple[str, ...]] = tuple(field.name for field in fields(HeapStats))


class CoreHeap:
    """One shared heap: arena + registry. See the module docstring for the rules."""

    __slots__ = ("__weakref__", "_base", "_heap", "_iova_base", "_size")

    def __init__(
        self, arena_bytes: int = 1 << 30, max_objects: int = 1 << 20,
        iova_base: int = 0x1_0000_0000,
    ) -> None:  # fmt: skip
        raw = lib.rl_heap_create(arena_bytes, max_objects, iova_base)
        if raw == ffi.NULL:
            raise HeapError(
                f"cannot create heap (arena {arena_bytes} bytes, {max_objects} objects, "
                f"iova base {iova_base:#x}; the iova base must be 4096-aligned)"
            )
        # rl_heap_destroy drops the creator's reference; RRef handles' drop tokens
        # (csrc/handle.c) hold their own, so the arena outlives every handle.
        self._heap: Any = ffi.gc(raw, lib.rl_heap_destroy)
        self._base: Any = lib.rl_heap_base(raw)
        self._size: int = lib.rl_heap_size(raw)
        self._iova_base: int = lib.rl_heap_iova_base(raw)

    # ---- allocation ----

    def alloc(self, size: int, type_id: int, owner: int) -> tuple[int, Any]:
        """Allocate `size` zeroed bytes owned by `owner`; returns (id, void * pointer)."""
        id_out = ffi.new("uint64_t *")
        ptr_out = ffi.new("void **")
        rc = lib.rl_alloc(self._heap, size, type_id, owner, 0, id_out, ptr_out)
        if rc and self._collect_held(rc):
            rc = lib.rl_alloc(self._heap, size, type_id, owner, 0, id_out, ptr_out)
        if rc:
            check(rc, 0, None, f"alloc({size} bytes, owner {owner})")
        return id_out[0], ptr_out[0]

    def alloc_container(
        self, size: int, type_id: int, owner: int, child_offset: int
    ) -> tuple[int, Any]:
        """Like alloc; bytes [child_offset, size) hold child ids (uint64, written by Python)."""
        id_out = ffi.new("uint64_t *")
        ptr_out = ffi.new("void **")
        rc = lib.rl_alloc_container(self._heap, size, type_id, owner, child_offset, id_out, ptr_out)
        if rc and self._collect_held(rc):
            rc = lib.rl_alloc_container(self._heap, size, type_id, owner, child_offset, id_out,
                                        ptr_out)
        if rc:
            check(rc, 0, None, f"alloc_container({size} bytes, owner {owner})")
        return id_out[0], ptr_out[0]

    def rescue(self, ids: npt.ArrayLike, dead: int, to: int, type_id: int = 0) -> int:
        """Before reclaiming the killed domain `dead`: give `to` those of `ids` that `dead`
        holds (top level, or nested in its containers), of type `type_id` (0: any), as
        top-level objects; returns how many. Shadows use it to take back the requests of
        a call the crash interrupted."""
        array = as_id_array(ids)
        out = ffi.new("uint64_t *")
        rc = lib.rl_rescue(self._heap, ffi.from_buffer("uint64_t[]", array), len(array), dead,
                           to, type_id, out)
        if rc:
            check(rc, 0, None, f"rescue from {dead} to {to}")
        return int(out[0])

    def _collect_held(self, rc: int) -> bool:
        """The heap is full but freed objects are held by views (view pins) that may be
        garbage in reference cycles (a crashed domain's state, exception frames): collect
        them and say whether a retry is worth it."""
        if rc not in (ENOMEM, EFULL) or not self.stats().held_objects:
            return False
        gc.collect()
        return True

    def free(self, id: int) -> None:
        """Free a top-level, unborrowed object (and every child nested in it)."""
        rc = lib.rl_free(self._heap, id)
        if rc:
            check(rc, id, self._heap, "free")

    def free_if_live(self, id: int) -> None:
        """Finalizer-friendly free: no-op if stale or nested, deferred if borrowed."""
        rc = lib.rl_free_if_live(self._heap, id)
        if rc:
            check(rc, id, self._heap, "free_if_live")

    # ---- ownership ----

    def move(self, id: int, src: int, dst: int) -> None:
        rc = lib.rl_move(self._heap, id, src, dst)
        if rc:
            check(rc, id, self._heap, f"move {src} -> {dst}")

    def move_bulk(self, ids: npt.ArrayLike, src: int, dst: int) -> None:
        """Move every id, or (on any error) none of them."""
        array = as_id_array(ids)
        bad = ffi.new("uint64_t *")
        rc = lib.rl_move_bulk(
            self._heap, ffi.from_buffer("uint64_t[]", array), len(array), src, dst, bad
        )
        if rc:
            self._raise_bulk(rc, array, bad[0], f"move_bulk {src} -> {dst}")

    def borrow(self, id: int, owner: int) -> None:
        """Count one borrow; `owner` (the lender) must own the object."""
        rc = lib.rl_borrow(self._heap, id, owner)
        if rc:
            check(rc, id, self._heap, "borrow")

    def unborrow(self, id: int) -> None:
        """Drop one borrow; the last one frees an orphaned or free-pending object."""
        rc = lib.rl_unborrow(self._heap, id)
        if rc:
            check(rc, id, self._heap, "unborrow")

    # ---- containers ----

    def attach(self, container: int, child: int, src: int) -> None:
        """Nest `child` (owned by `src`) in `container` (owned by `src` too)."""
        rc = lib.rl_attach(self._heap, container, child, src)
        if rc:
            self._raise_container(rc, container, child, "attach", src)

    def detach(self, container: int, child: int, dst: int) -> None:
        """Take `child` out of `container` (owned by `dst`); `dst` then owns it."""
        rc = lib.rl_detach(self._heap, container, child, dst)
        if rc:
            self._raise_container(rc, container, child, "detach", dst)

    def attach_bulk(self, container: int, ids: npt.ArrayLike, src: int) -> None:
        array = as_id_array(ids)
        bad = ffi.new("uint64_t *")
        rc = lib.rl_attach_bulk(
            self._heap, container, ffi.from_buffer("uint64_t[]", array), len(array), src, bad
        )
        if rc:
            self._raise_bulk(rc, array, bad[0], f"attach_bulk to {container:#x}", container)

    def detach_bulk(self, container: int, ids: npt.ArrayLike, dst: int) -> None:
        array = as_id_array(ids)
        bad = ffi.new("uint64_t *")
        rc = lib.rl_detach_bulk(
            self._heap, container, ffi.from_buffer("uint64_t[]", array), len(array), dst, bad
        )
        if rc:
            self._raise_bulk(rc, array, bad[0], f"detach_bulk from {container:#x}", container)

    # ---- batches of fields (csrc/bulk.c) ----

    def gather(self, ids: npt.ArrayLike, offset: int, out: np.ndarray, owner: int) -> None:
        """Copy bytes [offset, offset + width) of each object into row i of `out` (a
        C-contiguous array of len(ids) rows of `width` bytes); all ids owned by `owner`."""
        array = as_id_array(ids)
        width = self._row_width(out, len(array))
        bad = ffi.new("uint64_t *")
        rc = lib.rl_gather(self._heap, ffi.from_buffer("uint64_t[]", array), len(array), offset,
                           width, owner, ffi.from_buffer(out, require_writable=True), bad)
        if rc:
            self._raise_bulk(rc, array, bad[0], f"gather of bytes [{offset}, {offset + width})")

    def scatter(self, ids: npt.ArrayLike, offset: int, src: np.ndarray, owner: int) -> None:
        """Copy row i of `src` into bytes [offset, offset + width) of each object."""
        array = as_id_array(ids)
        width = self._row_width(src, len(array))
        bad = ffi.new("uint64_t *")
        rc = lib.rl_scatter(self._heap, ffi.from_buffer("uint64_t[]", array), len(array), offset,
                            width, owner, ffi.from_buffer(src), bad)
        if rc:
            self._raise_bulk(rc, array, bad[0], f"scatter to bytes [{offset}, {offset + width})")

    def iova_bulk(self, ids: npt.ArrayLike, offset: int, width: int, owner: int) -> IdArray:
        """The IOVA of bytes [offset, offset + width) of each object (checked to lie inside)."""
        array = as_id_array(ids)
        out = np.empty(len(array), dtype=np.uint64)
        bad = ffi.new("uint64_t *")
        rc = lib.rl_iova_bulk(self._heap, ffi.from_buffer("uint64_t[]", array), len(array),
                              offset, width, owner, ffi.from_buffer("uint64_t[]", out), bad)
        if rc:
            self._raise_bulk(rc, array, bad[0], f"iova_bulk of bytes [{offset}, {offset + width})")
        return out

    def free_owned_bulk(self, ids: npt.ArrayLike, owner: int) -> int:
        """Free the ids `owner` owns at top level, skip the others; returns how many."""
        array = as_id_array(ids)
        return int(lib.rl_free_owned_bulk(self._heap, ffi.from_buffer("uint64_t[]", array),
                                          len(array), owner))

    @staticmethod
    def _row_width(buffer: np.ndarray, rows: int) -> int:
        if not isinstance(buffer, np.ndarray) or not buffer.flags.c_contiguous:
            raise ValueError("the buffer must be a C-contiguous numpy array")
        if len(buffer) != rows:
            raise ValueError(f"the buffer has {len(buffer)} rows for {rows} ids")
        return int(buffer.nbytes // rows) if rows else 0

    # ---- domains ----

    def kill_domain(self, owner: int) -> None:
        """Mark `owner` dead: no allocation for it, nothing may move to it any more."""
        rc = lib.rl_kill_domain(self._heap, owner)
        if rc:
            check(rc, 0, None, f"kill_domain({owner})")

    def domain_dead(self, owner: int) -> bool:
        return bool(lib.rl_domain_dead(self._heap, owner))

    def reclaim(self, owner: int) -> tuple[int, int, int]:
        """Free everything `owner` owns; returns (objects, bytes, deferred-while-borrowed)."""
        out = ffi.new("uint64_t[3]")
        rc = lib.rl_reclaim(self._heap, owner, out, out + 1, out + 2)
        if rc:
            check(rc, 0, None, f"reclaim({owner})")
        return out[0], out[1], out[2]

    # ---- queries ----

    def owner(self, id: int) -> int:
        """The owning domain id, or OWNER_NESTED if the object lives in a container."""
        owner_out = ffi.new("uint32_t *")
        rc = lib.rl_owner(self._heap, id, owner_out)
        if rc:
            check(rc, id, self._heap, "owner")
        return int(owner_out[0])

    def free_reason(self, id: int) -> int:
        """Why a stale id went away (FREED_BY_OWNER, ...), or 0 if unknown or live."""
        return int(lib.rl_free_reason(self._heap, id))

    def lookup(self, id: int) -> EntryInfo:
        entry = ffi.new("rl_entry_info *")
        rc = lib.rl_lookup(self._heap, id, entry)
        if rc:
            check(rc, id, self._heap, "lookup")
        return EntryInfo.from_cdata(entry)

    def stats(self) -> HeapStats:
        out = ffi.new("rl_heap_stats *")
        lib.rl_stats(self._heap, out)
        return HeapStats(*(getattr(out, name) for name in _STATS_FIELDS))

    def domain_stats(self, owner: int) -> tuple[int, int]:
        """(live objects, live bytes) owned by `owner` (OWNER_NESTED: all nested objects)."""
        out = ffi.new("uint64_t[2]")
        rc = lib.rl_domain_stats(self._heap, owner, out, out + 1)
        if rc:
            check(rc, 0, None, f"domain_stats({owner})")
        return out[0], out[1]

    def entries(self) -> list[EntryInfo]:
        """Snapshot of every live registry entry, in slot order."""
        capacity = lib.rl_list(self._heap, ffi.NULL, 0)
        out = ffi.new("rl_entry_info[]", capacity)
        found = lib.rl_list(self._heap, out, capacity)
        return [EntryInfo.from_cdata(out[i]) for i in range(min(found, capacity))]

    def is_live(self, id: int) -> bool:
        """Whether `id` names a live object (top-level or nested)."""
        return bool(lib.rl_ptr(self._heap, id) != ffi.NULL)

    # ---- addressing ----

    @property
    def handle(self) -> Any:
        """The `rl_heap *` cdata, for callers that make C calls directly on hot paths."""
        return self._heap

    @property
    def base(self) -> Any:
        """`void *` to the start of the arena."""
        return self._base

    @property
    def size(self) -> int:
        return self._size

    @property
    def iova_base(self) -> int:
        return self._iova_base

    def ptr(self, id: int) -> Any:
        ptr = lib.rl_ptr(self._heap, id)
        if ptr == ffi.NULL:
            check(ESTALE, id, self._heap, "ptr")
        return ptr

    def buffer(self, id: int, size: int, offset: int = 0) -> Any:
        """A writable `ffi.buffer` over bytes [offset, offset + size) of a live object."""
        ptr = lib.rl_ptr_range(self._heap, id, offset, size)
        if ptr == ffi.NULL:
            self.ptr(id)  # raises StaleRefError if the id is the problem
            raise HeapError(f"buffer: bytes [{offset}, {offset + size}) lie outside {id:#x}")
        return ffi.buffer(ptr, size)

    def iova(self, id: int) -> int:
        iova = lib.rl_iova(self._heap, id)
        if not iova:
            check(ESTALE, id, self._heap, "iova")
        return int(iova)

    def iova_to_ptr(self, iova: int, length: int) -> Any:
        """`void *` for an IOVA range; HeapError if any of it lies outside the arena."""
        ptr = lib.rl_iova_to_ptr(self._heap, iova, length)
        if ptr == ffi.NULL:
            raise HeapError(f"iova range [{iova:#x}, +{length}) lies outside the arena")
        return ptr

    # ---- error helpers (cold paths) ----

    def _raise_container(
        self, rc: int, container: int, child: int, operation: str, owner: int
    ) -> None:
        """Raise for a failed attach/detach, blaming the container when it is at fault."""
        entry = ffi.new("rl_entry_info *")
        if lib.rl_lookup(self._heap, container, entry) != OK:
            check(rc, container, self._heap, f"{operation}: container")
        container_at_fault = (
            (rc == EINVAL and not entry.flags & FLAG_CONTAINER)
            or (rc == ENOTOWNER and entry.owner != owner)
            or (rc == ENESTED and entry.owner == OWNER_NESTED)
            or (rc == ESTALE and entry.flags & (FLAG_ORPHANED | FLAG_FREE_PENDING))
        )
        if container_at_fault:
            check(rc, container, self._heap, f"{operation}: container")
        check(rc, child, self._heap, f"{operation}: child of container {container:#x}")

    def _raise_bulk(
        self, rc: int, array: IdArray, bad_index: int, operation: str, container: int = 0
    ) -> None:
        """Raise for a failed bulk call (which changed nothing), naming the bad index."""
        if bad_index == _NO_INDEX or bad_index >= len(array):
            check(rc, container, self._heap, f"{operation}; nothing changed")
        bad_id = int(array[bad_index])
        check(rc, bad_id, self._heap, f"{operation}: ids[{bad_index}]; nothing changed")
