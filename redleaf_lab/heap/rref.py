"""RRef: an owned reference to an object on the shared heap.

An `RRef` is a Python handle on one registry entry (id + generation) of the
kernel's C heap. The registry, not the handle, says who owns the object; every
access compares the registry's owner with the domain the calling thread is
executing in (`kernel.context`). So after a move the old owner's handle fails
with `UseAfterMoveError`, and after a crash a reclaimed object's handle fails
with `StaleRefError` (the generation changed).

Views are borrows. `array()` and `readonly()` return zero-copy numpy views
made from a `ViewExporter` of the handle (one for writable views, one for
read-only views, which numpy will not make writable). Each live view holds a
reference to its exporter, so `_check_no_views()` can refuse a move or a free while any view is
alive: Rust's "cannot move out of `x` because it is borrowed", checked at run
time. `memoryview.release()` would not do: it succeeds while numpy arrays made
from it live.

Dropping: each handle owns a C drop token (`_core/csrc/handle.c`); when the
handle is garbage the token frees the object if it is still live (Rust's
drop). It is C, not a `__del__`, so the kernel's asynchronous unwinding can
never land in (and be swallowed by) a finalizer.

A cross-domain *borrow* gives the callee a `Borrow`: a read-only, call-scoped
handle. It dies when the call returns; views of it that outlive the call are
reported by the proxy as a callee bug.

Rule of one handle: an id has at most one live `RRef` handle. Moving an RRef
into a container (RRefDeque, RRefArray) invalidates the handle; taking it out
creates a new one. When the last reference to a live handle disappears, the
object is freed (Rust's drop), unless it has moved into a container.

Thread safety: registry operations are atomic C calls; a handle's own fields
are only changed under the GIL.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import GenericAlias
from typing import Any

import numpy as np

from .._core import ffi, lib
from .._core.heap import ESTALE, CoreHeap, check
from ..errors import (
    BorrowedError,
    BorrowWriteError,
    NotOwnerError,
    RpcError,
    SafetyError,
    StaleRefError,
    UseAfterMoveError,
)
from ..kernel.context import current_domain, current_owner_id
from ..sealed import Sealed
from .layout import Layout

_getrefcount = sys.getrefcount
_ffi_cast = ffi.cast
_rl_move = lib.rl_move
_rl_owner_of = lib.rl_owner_of
_disarm_token = lib.rl_handle_disarm_any
# Tokens and pins are built by one C call that also attaches their destructor (cffi's
# allocator; csrc/handle.h explains why): an asynchronous DomainUnwind landing between
# "make" and "attach the destructor" would leak them.
_prepare_token = lib.rl_handle_prepare
_alloc_token = ffi.new_allocator(alloc=lib.rl_handle_alloc_prepared, free=lib.rl_handle_free,
                                 should_clear_after_alloc=False)
_prepare_pin = lib.rl_view_pin_prepare
_alloc_pin = ffi.new_allocator(alloc=lib.rl_view_pin_alloc_prepared, free=lib.rl_view_pin_free,
                               should_clear_after_alloc=False)


def _new_token(heap_ptr: Any, obj_id: int) -> Any:
    """The drop token: frees the object when the handle is garbage (C, see handle.h)."""
    _prepare_token(heap_ptr, obj_id)
    return _alloc_token("char[]", 1)

_default_heaps: list[CoreHeap] = []  # booted kernels' heaps, newest last


def push_default_heap(heap: CoreHeap) -> None:
    """`boot()`: RRef.new in the root context allocates on this heap from now on."""
    _default_heaps.append(heap)


def remove_default_heap(heap: CoreHeap) -> None:
    """`shutdown()`: the previously booted kernel's heap (if any) is the default again."""
    for i in range(len(_default_heaps) - 1, -1, -1):
        if _default_heaps[i] is heap:
            del _default_heaps[i]
            return


def current_heap() -> CoreHeap:
    heap = getattr(current_domain(), "heap", None)
    if heap is None:
        if not _default_heaps:
            raise RuntimeError("no kernel is booted: call redleaf_lab.boot() first")
        heap = _default_heaps[-1]
    return heap


class ViewExporter(Sealed):
    """What every numpy view of a heap object hangs from: the views' `.base`.

    numpy builds the view from `__array_interface__` (address, size) and keeps this
    object as the view's base, so its reference count counts live views (a move or a
    free is refused while it is above its baseline). It also holds the object's drop
    token, so a view keeps the object alive even after its RRef handle is gone, and a
    view pin (csrc/handle.h), so the object's memory is not reused while a view lives
    even when the object is reclaimed under it (a crashed domain's thread that has not
    unwound yet): a view can never point at memory the heap has handed to someone else.
    """

    __slots__ = ("__array_interface__", "_pin", "_token")

    def __init__(self, address: int, size: int, token: Any, pin: Any,
                 readonly: bool = False, *, key: object = None) -> None:
        # Only the kernel can make one (`make_exporter`): a domain that got the class
        # through `type(view.base)` would otherwise turn any address into an array.
        if key is not _EXPORTER_KEY:
            raise SafetyError("<runtime>", 0, "numpy",
                              "creating a ViewExporter refused: views come only from the "
                              "kernel (RRef.array(), Borrow.array(), the Device capability)")
        self.__array_interface__ = {"data": (address, readonly), "shape": (size,),
                                    "typestr": "|u1", "version": 3}
        self._token = token
        self._pin = pin


_EXPORTER_KEY = object()


def new_exporter(address: int, size: int, token: Any, pin: Any,
                 readonly: bool = False) -> ViewExporter:
    """A ViewExporter (kernel code only: the key is private to this module)."""
    return ViewExporter(address, size, token, pin, readonly, key=_EXPORTER_KEY)


def pin_object(heap: CoreHeap, obj_id: int) -> Any:
    """A view pin on a live object (freed by cffi's gc when the last holder goes)."""
    _prepare_pin(heap.handle, obj_id)
    try:
        return _alloc_pin("char[]", 1)
    except MemoryError:  # rl_view_pin_new refused: a stale id (or out of memory)
        check(ESTALE, obj_id, heap.handle, "view")
        raise


def make_exporter(heap: CoreHeap, obj_id: int, size: int, token: Any,
                  readonly: bool = False) -> ViewExporter:
    address = int(_ffi_cast("uintptr_t", heap.ptr(obj_id)))
    return new_exporter(address, size, token, pin_object(heap, obj_id), readonly)


def layout_view(exporter: ViewExporter, layout: Layout, writable: bool = True) -> np.ndarray:
    """A zero-copy numpy view of one `layout` object, based on `exporter`."""
    raw = np.asarray(exporter)  # uint8[size], base = exporter
    sub = layout.dtype.subdtype  # e.g. Block = [u8; 4096]; else a struct or scalar: 0-d
    a = raw.view(sub[0]).reshape(sub[1]) if sub is not None else raw.view(layout.dtype).reshape(())
    if not writable:
        a.flags.writeable = False  # already so for a read-only exporter; numpy keeps it so
    return a


class HeapObject(Sealed):
    """What every shared-heap handle has: heap, id, layout, exporters."""

    __slots__ = ("__weakref__", "_heap", "_hp", "_id", "_layout", "_moved_to", "_ro", "_rw",
                 "_size", "_token")

    kind = "object"

    def __init__(self, heap: CoreHeap, obj_id: int, layout: Layout, size: int) -> None:
        self._heap = heap
        self._hp = heap.handle
        self._id = obj_id
        self._layout = layout
        self._size = size
        self._rw: Any = None  # exporter of writable views
        self._ro: Any = None  # exporter of read-only views (numpy cannot make them writable)
        self._moved_to = ""
        self._token: Any = _new_token(self._hp, obj_id)

    # -- identity ------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._id

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def nbytes(self) -> int:
        return self._size

    @property
    def valid(self) -> bool:
        return self._id != 0 and self._heap.is_live(self._id)

    def owner(self) -> int:
        """The registry's owner of this object (a domain id, 1 = root)."""
        self._require_id()
        return self._heap.owner(self._id)

    def iova(self) -> int:
        """Device address of the object, for its owner only (a device pointed at an
        object the caller no longer owns would write into someone else's memory)."""
        self._require_owned()
        return self._heap.iova(self._id)

    def __repr__(self) -> str:
        state = f"id=0x{self._id:x}" if self._id else f"moved into {self._moved_to}"
        return f"<{type(self).__name__}[{self._layout.name}] {state}>"

    # -- checks --------------------------------------------------------------
    def _require_id(self) -> None:
        if self._id == 0:
            raise StaleRefError(f"{self!r}: this handle was moved into {self._moved_to}")

    def _require_owned(self) -> int:
        """Raise unless the current domain owns the object; return the owner id."""
        self._require_id()
        me = current_owner_id()
        owner = _rl_owner_of(self._hp, self._id)
        if owner != me:
            if owner < 0:
                check(-owner, self._id, self._heap)
            if self._moved_to:
                raise UseAfterMoveError(
                    f"{self!r} was moved to {self._moved_to}; this domain no longer owns it"
                )
            raise NotOwnerError(f"{self!r} is owned by domain {owner}, not by domain {me}")
        return me

    def live_views(self) -> int:
        """How many numpy/memoryview views of this handle are alive."""
        n = 0 if self._rw is None else _getrefcount(self._rw) - 2
        return n if self._ro is None else n + _getrefcount(self._ro) - 2

    def _check_no_views(self, action: str) -> None:
        if self._rw is not None or self._ro is not None:
            n = self.live_views()
            if n > 0:
                raise BorrowedError(
                    f"cannot {action} {self!r}: {n} view(s) of it are still alive "
                    "(delete them first: a view is a borrow)"
                )
            self._rw = self._ro = None

    # -- ownership transfer (used by proxies and containers) ----------------------
    def _move(self, src: int, dst: int, dst_name: str = "") -> None:
        if self._rw is not None or self._ro is not None:
            self._check_no_views("move")
        rc = _rl_move(self._hp, self._id, src, dst)
        if rc:
            self._move_failed(rc, src, dst_name)
        self._moved_to = dst_name

    def _move_failed(self, rc: int, src: int, dst_name: str = "") -> None:
        """Raise the error for a failed registry move/borrow of this handle."""
        if self._id == 0:
            self._require_id()
        if rc == 5 and dst_name:  # RL_EDEAD: the callee died after its gate let us in
            raise RpcError(dst_name, "crashed")
        if rc == 2 and self._moved_to:  # RL_ENOTOWNER after an earlier move
            raise UseAfterMoveError(
                f"{self!r} was moved to {self._moved_to}; it cannot be passed on again"
            )
        check(rc, self._id, self._heap)

    def _detach_handle(self, where: str) -> None:
        """The object now lives inside a container: this handle is dead."""
        self._check_no_views(f"move into {where}")
        self._disarm()
        self._moved_to = where

    def _disarm(self) -> None:
        """Forget the object: dropping this handle will free nothing."""
        self._id = 0
        _disarm_token(self._token)

    def _rebind(self, new_id: int) -> None:
        """Point the handle at another object (RRefVec growth)."""
        _disarm_token(self._token)
        self._id = new_id
        self._token = _new_token(self._hp, new_id)

    # -- drop ----------------------------------------------------------------
    def drop(self) -> None:
        """Free the object now (the owner only)."""
        self._require_owned()
        self._check_no_views("free")
        self._heap.free(self._id)
        self._disarm()
        self._moved_to = "the allocator (dropped)"


class RRef(HeapObject):
    """An owned, movable reference to one fixed-layout object on the shared heap."""

    __slots__ = ()
    kind = "rref"

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        return GenericAlias(cls, item)

    @classmethod
    def new(cls, layout: Layout, init: Any = None, heap: CoreHeap | None = None) -> RRef:
        """Allocate a zeroed `layout` object owned by the current domain."""
        heap = heap or current_heap()
        obj_id, _ptr = heap.alloc(layout.size, layout.type_id, current_owner_id())
        ref = cls(heap, obj_id, layout, layout.size)
        if init is not None:
            ref.array()[...] = init
        return ref

    def array(self) -> np.ndarray:
        """Writable zero-copy view (the owner only). Holding it blocks moves."""
        self._require_owned()
        if self._rw is None:
            self._rw = make_exporter(self._heap, self._id, self._size, self._token)
        return layout_view(self._rw, self._layout)

    def readonly(self) -> np.ndarray:
        """Read-only zero-copy view (the owner only). Holding it blocks moves."""
        self._require_owned()
        if self._ro is None:
            self._ro = make_exporter(self._heap, self._id, self._size, self._token, readonly=True)
        return layout_view(self._ro, self._layout, writable=False)

    def tobytes(self) -> bytes:
        self._require_owned()
        return bytes(self._heap.buffer(self._id, self._size))

    def write(self, data: bytes, offset: int = 0) -> None:
        """Copy `data` into the object at `offset` (the owner only)."""
        self._require_owned()
        if offset < 0 or offset + len(data) > self._size:
            raise ValueError(f"write of {len(data)} bytes at {offset} exceeds {self._size}")
        self._heap.buffer(self._id, self._size)[offset : offset + len(data)] = data


class Borrow(Sealed):
    """A call-scoped immutable view of an RRef lent across a proxy."""

    __slots__ = ("_lender", "_live", "_ro", "_target")
    kind = "borrow"

    def __init__(self, target: HeapObject, lender: int) -> None:
        self._target = target
        self._lender = lender
        self._live = True
        self._ro: Any = None

    @property
    def id(self) -> int:
        return self._target._id

    @property
    def layout(self) -> Layout:
        return self._target._layout

    def _require_live(self) -> None:
        if not self._live:
            raise StaleRefError("this borrow ended when the call that lent it returned")

    def array(self) -> np.ndarray:
        """Read-only zero-copy view, valid for the duration of the call."""
        self._require_live()
        if self._ro is None:
            t = self._target
            self._ro = make_exporter(t._heap, t._id, t._size, t._token, readonly=True)
        return layout_view(self._ro, self._target._layout, writable=False)

    readonly = array

    def iova(self) -> int:
        """Device address of the lent object, valid until the call returns. For devices
        that only READ it (an NVMe write's source buffer): a borrow is immutable, so a
        driver must never point a device that writes memory at it."""
        self._require_live()
        return self._target._heap.iova(self._target._id)

    def tobytes(self) -> bytes:
        self._require_live()
        t = self._target
        return bytes(t._heap.buffer(t._id, t._size))

    def write(self, data: bytes, offset: int = 0) -> None:
        raise BorrowWriteError("cannot write through an immutable borrow")

    def _end(self) -> int:
        """Called by the proxy when the call returns; returns escaped views."""
        self._live = False
        escaped = 0 if self._ro is None else _getrefcount(self._ro) - 2
        self._ro = None
        return escaped

    def __repr__(self) -> str:
        state = "live" if self._live else "ended"
        return f"<Borrow of {self._target!r} ({state})>"


def iter_handles(values: Any) -> Iterator[HeapObject]:
    """Every heap handle inside a value (used when checking arguments)."""
    if isinstance(values, HeapObject):
        yield values
    elif isinstance(values, tuple):
        for v in values:
            yield from iter_handles(v)
