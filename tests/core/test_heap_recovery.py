"""Tests of what crash recovery needs from the C heap: view pins and rescue.

Purpose: a numpy view that outlives its object (a crashed domain's thread still
running) pins the memory, so the heap never hands it to another object until the
view goes; and `rescue` gives a shadow back the requests a killed domain held, at
any depth in its containers, before the reclaim. Each test builds its own small
CoreHeap; deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from redleaf_lab.errors import DeadDomainError, HeapError, StaleRefError
from tests.core.heap_helpers import NESTED, ROOT, address, slots_of, small_heap


def test_a_view_pin_keeps_reclaimed_memory_out_of_reuse() -> None:
    """A crashed domain's thread may still hold a numpy view when its objects are
    reclaimed: the memory must not go to the next allocation until the view is gone."""
    from redleaf_lab.heap.rref import make_exporter

    heap = small_heap()
    victim, _ = heap.alloc(4096, 0, 2)
    exporter = make_exporter(heap, victim, 4096, None)
    view = np.asarray(exporter)
    heap.kill_domain(2)
    assert heap.reclaim(2) == (1, 4096, 0)  # gone from the registry at once
    assert not heap.is_live(victim) and heap.stats().held_objects == 1
    fresh = [heap.alloc(4096, 0, ROOT) for _ in range(8)]
    addresses = {address(ptr) for _, ptr in fresh}
    assert view.__array_interface__["data"][0] not in addresses  # never handed out again
    view[:] = 0xAB  # the late writer scribbles on its own, held memory only
    assert all(not np.frombuffer(heap.buffer(i, 4096), np.uint8).any() for i, _ in fresh)
    del view, exporter  # the last view goes: the memory returns to the arena
    assert heap.stats().held_objects == 0
    assert heap.stats().live_objects == 8
    with pytest.raises(StaleRefError):
        make_exporter(heap, victim, 4096, None)  # no pin on a stale id


def test_rescue_takes_back_what_the_dead_domain_holds_at_any_depth() -> None:
    heap = small_heap()
    held = [heap.alloc(16, 0, 2)[0] for _ in range(2)]  # top level, owned by the victim
    box, _ = heap.alloc_container(8 + 8 * 4, 0, 2, 8)  # the victim's container...
    nested = [heap.alloc(16, 0, 2)[0] for _ in range(2)]
    heap.attach_bulk(box, nested, 2)  # ...holding two more
    slots_of(heap, box)[:2] = nested
    someone_elses, _ = heap.alloc(16, 0, 3)
    gone, _ = heap.alloc(16, 0, 2)
    heap.free(gone)
    ids = [*held, *nested, someone_elses, gone]
    with pytest.raises(HeapError):
        heap.rescue(ids, 2, ROOT)  # only from a killed domain
    heap.kill_domain(2)
    with pytest.raises(DeadDomainError):
        heap.rescue(ids, 2, 2)  # never to a dead one
    assert heap.rescue(ids, 2, ROOT) == 4
    assert [heap.owner(i) for i in [*held, *nested]] == [ROOT] * 4
    assert heap.owner(someone_elses) == 3 and not heap.is_live(gone)
    assert heap.reclaim(2) == (1, 8 + 8 * 4, 0)  # only the box: its children left it
    assert all(heap.is_live(i) for i in [*held, *nested])
    assert heap.domain_stats(ROOT) == (4, 64) and heap.domain_stats(NESTED) == (0, 0)


def test_rescue_takes_only_objects_of_the_given_type() -> None:
    heap = small_heap()
    request, _ = heap.alloc(64, 7, 2)
    other, _ = heap.alloc(64, 8, 2)  # the dead domain's own object, of another type
    heap.kill_domain(2)
    assert heap.rescue([request, other], 2, ROOT, type_id=7) == 1
    assert heap.owner(request) == ROOT and heap.owner(other) == 2
    assert heap.reclaim(2) == (1, 64, 0)
