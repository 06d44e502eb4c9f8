"""The leak check: every live heap object that no live handle reaches, whoever owns it.

Purpose: `find_leaks(heap)` is what `Kernel.shutdown()` reports. The registry knows every
live object and its owner, but not which objects a handle still reaches: drop tokens
(csrc/handle.c) are per handle and not listed anywhere. So the check asks the other side:
it lists the heap objects that live handles name, and every top-level object outside that
list is a leak. A handle is anything that can still free or use an object:

* an `RRef`-family handle (`HeapObject`, containers and vectors included) with an id;
* a `ViewExporter` holding a drop token (a numpy view outliving its handle keeps the
  object alive; the exporter names it by address);
* an armed `RRefBatch` (its token's ids);
* a `DmaBuffer`, or a `Device`'s list of live DMA buffers (freed by `dma_free`).

Objects nested in containers count through their container: reached if its top-level
container is, leaked (and counted, with their bytes) if it is leaked. A top-level object
owned by anyone but `keep_owner` (root, once every domain is stopped) is a leak whether or
not a handle names it: its domain is gone, and so should it be.

Handles are found with `gc.get_objects()` (every tracked Python object, garbage not yet
collected included: such a handle frees its object when collected, so it is not counted
as a leak). The scan runs only when some top-level object is held by `keep_owner`; it is
meant for shutdown, with no other thread changing the heap (objects created meanwhile
are not seen; objects moving meanwhile may be misreported).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from .._core import ffi, lib
from .._core.heap import OWNER_NESTED, OWNER_ROOT, CoreHeap, EntryInfo


@dataclass(frozen=True)
class LeakReport:
    """Leaked objects (nested ones counted), their bytes, and the top-level leaked ids."""

    objects: int
    bytes: int
    top_level: tuple[int, ...]


def _subclasses(cls: type) -> set[type]:
    found = {cls}
    subclasses: list[type] = type.__subclasses__(cls)
    for sub in subclasses:
        found |= _subclasses(sub)
    return found


def reached_ids(heap: CoreHeap, offsets: dict[int, int]) -> set[int]:
    """Ids of `heap` named by live handles; `offsets` maps an arena offset to the id of
    the top-level object starting there (for view exporters, which know addresses)."""
    from ..devices.device import Device, DmaBuffer
    from ..heap.batch import RRefBatch
    from ..heap.rref import HeapObject, ViewExporter

    handles = _subclasses(HeapObject)
    devices = _subclasses(Device)
    base = int(ffi.cast("uintptr_t", heap.base))
    reached: set[int] = set()
    for obj in gc.get_objects():
        kind = type(obj)
        if kind in handles:
            if obj._heap is heap and obj._id:
                reached.add(int(obj._id))
        elif kind is ViewExporter:
            if obj._token is not None:
                found = offsets.get(int(obj.__array_interface__["data"][0]) - base)
                if found is not None:
                    reached.add(found)
        elif kind is RRefBatch:
            if obj._heap is heap:
                n = int(lib.rl_batch_len(obj._token))
                if n:
                    reached.update(int(i) for i in ffi.unpack(lib.rl_batch_ids(obj._token), n))
        elif kind is DmaBuffer:
            reached.add(int(obj.handle))
        elif kind in devices and getattr(obj, "_heap", None) is heap:
            reached.update(int(i) for i in obj._dma)
    return reached


def _top_level(entry: EntryInfo, by_id: dict[int, EntryInfo]) -> int:
    """The id of the top-level container `entry` is nested in (its own id if top level)."""
    seen = 0
    while entry.owner == OWNER_NESTED and entry.parent in by_id and seen < len(by_id):
        entry = by_id[entry.parent]
        seen += 1
    return entry.id


def find_leaks(heap: CoreHeap, keep_owner: int = OWNER_ROOT) -> LeakReport:
    """The live objects of `heap` that no handle reaches, or whose top-level object is
    owned by someone other than `keep_owner`; see the module docstring."""
    entries = heap.entries()
    by_id = {e.id: e for e in entries}
    top = [e for e in entries if e.owner != OWNER_NESTED]
    leaked = {e.id for e in top if e.owner != keep_owner}
    kept = [e for e in top if e.owner == keep_owner]
    if kept:
        offsets = {e.iova - heap.iova_base: e.id for e in kept}
        reached = reached_ids(heap, offsets)
        leaked.update(e.id for e in kept if e.id not in reached)
    objects = nbytes = 0
    for entry in entries:
        if _top_level(entry, by_id) in leaked:
            objects += 1
            nbytes += entry.size
    return LeakReport(objects, nbytes, tuple(sorted(leaked)))

