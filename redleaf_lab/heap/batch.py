"""RRefBatch: a batch of heap objects held without per-object handles.

Purpose: the batched fast path for drivers (DESIGN: work in batches, one registry call per
batch, zero copy). `RRefDeque.take_batch(limit)` moves up to `limit` objects out of a deque
into the calling domain with one registry call and returns them as ONE `RRefBatch`
instead of one `RRef` handle (a Python object plus a C drop token) per object. A batch
reads or writes one field of every object with one call, and `put_batch` moves the whole
batch into a deque with one call:

    batch = submit.take_batch(room)          # detach: the domain owns the objects
    blocks = batch.get("block")              # uint64[n], one registry call
    prp1 = batch.iovas("data")               # IOVA of each 4096-byte data field
    batch.set("data_len", 4096)              # scatter (scalars broadcast)
    collect.put_batch(batch)                 # attach: the batch is spent

Handle-free ownership (the rule of one handle, extended): the objects of a live batch are
owned by the domain that took them (the registry says so) and have no `RRef` handle; the
batch is their only handle. They leave the domain in exactly one of three ways:

* `put_batch` into a deque (the batch is then spent: using it raises StaleRefError);
* the batch is dropped (garbage): its C drop token frees those objects the domain still
  owns, as dropping a `Vec<RRef<T>>` would;
* the domain crashes: reclaim frees them with everything else it owns (the token's drop
  later skips them: their ids are stale). Nothing leaks, whatever point a crash stops at.

Safety: every call names the objects by id and the C registry checks each one (live,
owned by the calling domain, the field's bytes inside the object; writes: not borrowed)
before copying anything; a failed call changes nothing and names the bad index. Fields
are named by the element layout, so a caller never supplies an offset or a size. Batches
are not exchangeable: they cannot cross a proxy (move a deque instead).

Thread safety: as for RRef (registry calls are atomic; the batch's fields are changed
only under the GIL). Not meant to be shared between threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._core import ffi, lib
from .._core.heap import CoreHeap, IdArray, check
from ..errors import StaleRefError
from ..kernel.context import current_owner_id
from ..sealed import Sealed
from .layout import Layout

_new_bad = ffi.new
_from_buffer = ffi.from_buffer
_rl_gather = lib.rl_gather
_rl_scatter = lib.rl_scatter
_rl_iova_bulk = lib.rl_iova_bulk
# A token is built by one C call that also attaches its destructor (cffi's allocator,
# csrc/handle.h): an asynchronous unwind between "make" and "attach" would leak the token
# and, for a token armed with ids, the objects it was to free.
_prepare_batch = lib.rl_batch_prepare
_alloc_batch = ffi.new_allocator(alloc=lib.rl_batch_alloc_prepared, free=lib.rl_batch_free,
                                 should_clear_after_alloc=False)
_as_batch = ffi.cast
_rl_batch_take = lib.rl_batch_take
_rl_batch_take_iovas = lib.rl_batch_take_iovas
_NULL = ffi.NULL
_rl_batch_len = lib.rl_batch_len


def _new_token(size: int) -> Any:
    """The prepared token, owned by the returned cdata (its destructor attached)."""
    try:
        return _alloc_batch("char[]", 1)
    except MemoryError:
        raise MemoryError(f"cannot allocate a drop token for a batch of {size}") from None


class RRefBatch(Sealed):
    """Objects of one layout, taken out of a container as a whole; see the module docstring."""

    __slots__ = ("_cids", "_heap", "_hp", "_layout", "_n", "_owned", "_spent", "_token")

    kind = "rref-batch"

    def __init__(self, heap: CoreHeap, ids: IdArray, layout: Layout, owner: int) -> None:
        """Arm a drop token for `ids` (trusted callers: shadows adopting rescued objects).
        Arm it before the objects move to `owner`: a drop in between skips ids that
        `owner` does not own."""
        self._heap = heap
        self._hp = heap.handle
        self._layout = layout
        self._spent: Any = None  # the container it was put into
        self._n = len(ids)
        ids_buffer = _from_buffer("uint64_t[]", ids)  # alive until the token copied it
        _prepare_batch(self._hp, ids_buffer, len(ids), owner)
        self._owned: Any = _new_token(len(ids))
        self._token: Any = _as_batch("rl_batch *", self._owned)
        self._cids: Any = lib.rl_batch_ids(self._token)  # the token's copy: lives with it

    @classmethod
    def take(cls, heap: CoreHeap, deque_id: int, layout: Layout, owner: int,
             limit: int, iova_field: str | None = None
             ) -> tuple[RRefBatch, npt.NDArray[np.uint64] | None]:
        """Up to `limit` objects from the front of deque `deque_id` (trusted callers:
        RRefDeque.take_batch): an empty drop token is armed first, then one registry call
        (csrc/deque.c) moves the objects out and records them in it. With `iova_field`,
        the same call also gives the IOVA of that field of each object (else None)."""
        self = cls.__new__(cls)
        _prepare_batch(heap.handle, _NULL, limit, owner)
        self._owned = _new_token(limit)
        raw = self._token = _as_batch("rl_batch *", self._owned)
        self._heap = heap
        self._hp = heap.handle
        self._layout = layout
        self._spent = None
        self._n = 0
        iovas = None
        if iova_field is None:
            rc = _rl_batch_take(raw, deque_id, limit)
        else:
            dtype, offset = layout.field(iova_field)
            iovas = np.empty(limit, dtype=np.uint64)
            rc = _rl_batch_take_iovas(raw, deque_id, limit, offset, dtype.itemsize,
                                      _from_buffer("uint64_t[]", iovas))
        if rc:
            check(rc, deque_id, heap, "take_batch")
        n = self._n = int(_rl_batch_len(raw))
        self._cids = lib.rl_batch_ids(raw)
        if iovas is not None and n < limit:
            iovas = iovas[:n]
        return self, iovas

    # -- identity ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def _ids(self) -> npt.NDArray[np.uint64]:
        """The ids, as a view of the token's copy (valid while the batch lives)."""
        return np.frombuffer(ffi.buffer(self._cids, 8 * self._n), dtype=np.uint64)

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def live(self) -> bool:
        """False once the batch was put into a container."""
        return self._spent is None

    def ids(self) -> npt.NDArray[np.uint64]:
        """The objects' registry ids (a read-only copy, for diagnostics)."""
        ids = self._ids.copy()
        ids.flags.writeable = False
        return ids

    def __repr__(self) -> str:
        state = "live" if self._spent is None else f"put into {self._where()}"
        return f"<RRefBatch[{self._layout.name}] {self._n} objects, {state}>"

    # -- fields ----------------------------------------------------------------------
    def get(self, field: str | None = None) -> np.ndarray:
        """A new array holding `field` (the whole object if None) of every object: shape
        (n,) plus the field's own shape. One registry call."""
        dtype, offset = self._field(field)
        out = np.empty(self._n, dtype=dtype)
        rc = _rl_gather(self._hp, self._cids, self._n, offset, dtype.itemsize,
                        current_owner_id(), _from_buffer(out), _NULL)
        if rc:
            self._fail(_rl_gather, offset, dtype.itemsize, _from_buffer(out), f"batch get {field!r}")
        return out

    def set(self, field: str | None, values: npt.ArrayLike) -> None:
        """Write `values` (broadcast to (n,) plus the field's shape) into `field` of every
        object. One registry call; nothing is written if any object fails the checks."""
        dtype, offset = self._field(field)
        n = self._n
        src = np.empty((n, *dtype.shape), dtype=dtype.base)  # a private copy: no aliasing
        src[...] = values
        rc = _rl_scatter(self._hp, self._cids, n, offset, dtype.itemsize, current_owner_id(),
                         _from_buffer(src), _NULL)
        if rc:
            self._fail(_rl_scatter, offset, dtype.itemsize, _from_buffer(src), f"batch set {field!r}")

    def iovas(self, field: str | None = None) -> npt.NDArray[np.uint64]:
        """The device address (IOVA) of `field` (the whole object if None) in every object;
        the registry checks the whole field lies inside each object. One registry call."""
        dtype, offset = self._field(field)
        out = np.empty(self._n, dtype=np.uint64)
        rc = _rl_iova_bulk(self._hp, self._cids, self._n, offset, dtype.itemsize,
                           current_owner_id(), _from_buffer("uint64_t[]", out), _NULL)
        if rc:
            self._fail(_rl_iova_bulk, offset, dtype.itemsize,
                       _from_buffer("uint64_t[]", out), f"batch iovas {field!r}")
        return out

    # -- internals (containers) ----------------------------------------------------------
    def _field(self, field: str | None) -> tuple[np.dtype[Any], int]:
        if self._spent is not None:
            raise StaleRefError(f"{self!r}: this batch was put into {self._where()}")
        return self._layout.field(field)

    def _fail(self, call: Any, offset: int, width: int, cbuf: Any, what: str) -> None:
        """A bulk call failed (and changed nothing): call it again with an error cell, so
        the error names the bad object (the fast path passes none), and raise. (If the
        second call succeeds, a garbage collection in between released a borrow: it did
        the work, and there is nothing to raise.)"""
        bad = _new_bad("uint64_t *")
        rc = call(self._hp, self._cids, self._n, offset, width, current_owner_id(),
                  cbuf, bad)
        if rc:
            self._heap._raise_bulk(rc, self._ids, bad[0], what)

    def _where(self) -> str:
        """Where the batch went: the container handle, named by kind and id."""
        return f"{type(self._spent).__name__} 0x{self._spent._id:x}"
