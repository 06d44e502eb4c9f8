"""Tests of the C shared heap through its typed wrapper (redleaf_lab._core.heap).

Purpose: checks the allocator (sizes, alignment, zeroing, exhaustion), the registry (ids,
generations, free reasons), ownership (move, bulk all-or-nothing, borrows), domains
(kill, reclaim, orphans), containers (attach/detach, recursive free that never touches
unrelated ids, cycles), IOVA translation, a seeded model-based run of 20,000 random
operations against a Python reference model, and two threads hammering one heap.

Interface: plain pytest; every test builds its own small CoreHeap, and all randomness
is seeded, so runs are deterministic (the thread test checks only interleaving-independent
totals).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from redleaf_lab._core import heap as core
from redleaf_lab._core.heap import CoreHeap, check
from redleaf_lab.errors import (
    BorrowedError,
    DeadDomainError,
    HeapError,
    HeapFullError,
    NotOwnerError,
    StaleRefError,
)
from tests.core.heap_helpers import NESTED, ROOT, address, slots_of, small_heap

# ---- allocator ----


@pytest.mark.parametrize("size", [1, 63, 64, 65, 100, 4095])
def test_small_objects_are_64_aligned(size: int) -> None:
    heap = small_heap()
    for _ in range(3):
        _, ptr = heap.alloc(size, 7, ROOT)
        assert address(ptr) % 64 == 0


@pytest.mark.parametrize("size", [4096, 5000, 65536, 70000, core.MAX_ALLOC])
def test_large_objects_are_page_aligned(size: int) -> None:
    heap = small_heap()
    heap.alloc(64, 0, ROOT)  # misalign the bump pointer first
    for _ in range(2):
        _, ptr = heap.alloc(size, 0, ROOT)
        assert address(ptr) % 4096 == 0


def test_alloc_is_zeroed_even_when_memory_is_reused() -> None:
    heap = small_heap()
    first, ptr = heap.alloc(300, 1, ROOT)
    heap.buffer(first, 300)[:] = b"\xab" * 300
    heap.free(first)
    second, ptr2 = heap.alloc(300, 1, ROOT)
    assert address(ptr2) == address(ptr)  # same size class: the block is reused
    assert bytes(heap.buffer(second, 300)) == bytes(300)


@pytest.mark.parametrize("size", [0, core.MAX_ALLOC + 1])
def test_bad_sizes_are_invalid(size: int) -> None:
    heap = small_heap()
    with pytest.raises(HeapError) as caught:
        heap.alloc(size, 0, ROOT)
    assert type(caught.value) is HeapError


def test_bad_owner_and_bad_heap_arguments() -> None:
    heap = small_heap()
    with pytest.raises(HeapError):
        heap.alloc(8, 0, NESTED)
    with pytest.raises(HeapError):
        heap.alloc(8, 0, core.MAX_OWNERS)
    with pytest.raises(HeapError):
        CoreHeap(arena_bytes=1 << 20, max_objects=16, iova_base=0x1234)


def test_arena_exhaustion_raises_heap_full() -> None:
    heap = small_heap(arena_bytes=64 << 10)
    ids = [heap.alloc(4096, 0, ROOT)[0] for _ in range(16)]
    with pytest.raises(HeapFullError, match="arena"):
        heap.alloc(4096, 0, ROOT)
    heap.free(ids[3])
    heap.alloc(4096, 0, ROOT)  # the freed block is reused
    assert heap.stats().arena_used == 64 << 10


def test_registry_full_raises_heap_full() -> None:
    heap = small_heap(max_objects=4)
    ids = [heap.alloc(8, 0, ROOT)[0] for _ in range(4)]
    with pytest.raises(HeapFullError, match="registry"):
        heap.alloc(8, 0, ROOT)
    heap.free(ids[0])
    heap.alloc(8, 0, ROOT)


# ---- ids, generations, free reasons ----


def test_stale_id_after_free_reports_reason() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(16, 0, ROOT)
    heap.free(obj)
    assert heap.free_reason(obj) == core.FREED_BY_OWNER
    assert not heap.is_live(obj)
    with pytest.raises(StaleRefError, match="freed by its owner"):
        heap.free(obj)
    with pytest.raises(StaleRefError):
        heap.lookup(obj)
    with pytest.raises(StaleRefError):
        heap.ptr(obj)
    with pytest.raises(StaleRefError):
        heap.iova(obj)
    with pytest.raises(StaleRefError):
        heap.move(obj, ROOT, 2)
    for bogus in (0, 1 << 40, 0xFFFF_FFFF):
        with pytest.raises(StaleRefError):
            heap.owner(bogus)


def test_slot_reuse_bumps_generation() -> None:
    heap = small_heap(max_objects=2)
    old, _ = heap.alloc(8, 0, ROOT)
    heap.alloc(8, 0, ROOT)
    heap.free(old)
    new, _ = heap.alloc(8, 0, ROOT)  # no fresh slot left: reuses old's slot
    assert new & 0xFFFF_FFFF == old & 0xFFFF_FFFF
    assert new >> 32 == (old >> 32) + 1
    assert heap.owner(new) == ROOT
    assert heap.free_reason(old) == 0  # the slot was reused: the reason is gone
    with pytest.raises(StaleRefError, match="not a live heap object"):
        heap.owner(old)


def test_freed_slots_are_quarantined_before_reuse() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(8, 0, ROOT)
    heap.free(obj)
    for _ in range(100):
        other, _ = heap.alloc(8, 0, ROOT)
        assert other & 0xFFFF_FFFF != obj & 0xFFFF_FFFF
    assert heap.free_reason(obj) == core.FREED_BY_OWNER


def test_lookup_entries_and_stats() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(100, 42, 3)
    info = heap.lookup(obj)
    assert (info.id, info.size, info.type_id, info.owner, info.borrows) == (obj, 100, 42, 3, 0)
    assert (info.parent, info.is_container, info.is_nested) == (0, False, False)
    assert info.iova == heap.iova(obj)
    assert [entry.id for entry in heap.entries()] == [obj]
    stats = heap.stats()
    assert (stats.live_objects, stats.live_bytes, stats.total_allocs) == (1, 100, 1)
    assert heap.domain_stats(3) == (1, 100)
    assert heap.domain_stats(4) == (0, 0)


# ---- ownership ----


def test_move_changes_owner_and_domain_stats() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(10, 0, 2)
    heap.move(obj, 2, 3)
    assert heap.owner(obj) == 3
    assert heap.domain_stats(2) == (0, 0)
    assert heap.domain_stats(3) == (1, 10)
    with pytest.raises(NotOwnerError):
        heap.move(obj, 2, 4)
    with pytest.raises(HeapError):
        heap.move(obj, 3, NESTED)


def test_move_bulk_is_all_or_nothing() -> None:
    heap = small_heap()
    ids = [heap.alloc(8, 0, 2)[0] for _ in range(5)]
    stale, _ = heap.alloc(8, 0, 2)
    heap.free(stale)
    batch = np.array([*ids[:2], stale, *ids[2:]], dtype=np.uint64)
    with pytest.raises(StaleRefError, match=r"ids\[2\]"):
        heap.move_bulk(batch, 2, 3)
    assert [heap.owner(i) for i in ids] == [2] * 5
    heap.borrow(ids[4], 2)
    with pytest.raises(BorrowedError, match=r"ids\[4\]"):
        heap.move_bulk(np.array(ids, dtype=np.uint64), 2, 3)
    heap.unborrow(ids[4])
    with pytest.raises(HeapError, match=r"ids\[1\]"):  # duplicate id
        heap.move_bulk([ids[0], ids[0]], 2, 3)
    assert [heap.owner(i) for i in ids] == [2] * 5
    heap.move_bulk(np.array(ids, dtype=np.uint64), 2, 3)
    assert [heap.owner(i) for i in ids] == [3] * 5
    assert heap.domain_stats(3) == (5, 40)
    heap.move_bulk(np.array([], dtype=np.uint64), 3, 2)


def test_borrow_blocks_move_and_free() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(8, 0, 2)
    with pytest.raises(NotOwnerError):
        heap.borrow(obj, 3)
    heap.borrow(obj, 2)
    heap.borrow(obj, 2)
    assert heap.lookup(obj).borrows == 2
    with pytest.raises(BorrowedError):
        heap.move(obj, 2, 3)
    with pytest.raises(BorrowedError):
        heap.free(obj)
    heap.unborrow(obj)
    heap.unborrow(obj)
    with pytest.raises(HeapError):
        heap.unborrow(obj)
    heap.move(obj, 2, 3)
    heap.free(obj)


def test_free_if_live_defers_while_borrowed() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(8, 0, 2)
    heap.borrow(obj, 2)
    heap.free_if_live(obj)
    info = heap.lookup(obj)
    assert info.flags & core.FLAG_FREE_PENDING
    assert heap.stats().pending_objects == 1
    with pytest.raises(StaleRefError):
        heap.borrow(obj, 2)
    heap.unborrow(obj)
    assert not heap.is_live(obj)
    assert heap.free_reason(obj) == core.FREED_BY_OWNER
    assert heap.stats().pending_objects == 0
    heap.free_if_live(obj)  # stale: silently nothing
    heap.free_if_live(0)


# ---- domains ----


def test_dead_domain_refuses_alloc_and_incoming_moves() -> None:
    heap = small_heap()
    obj, _ = heap.alloc(8, 0, 2)
    box, _ = heap.alloc_container(64, 0, 2, 0)
    heap.attach(box, obj, 2)
    heap.kill_domain(5)
    assert heap.domain_dead(5)
    assert not heap.domain_dead(2)
    with pytest.raises(DeadDomainError):
        heap.alloc(8, 0, 5)
    with pytest.raises(DeadDomainError):
        heap.move(box, 2, 5)
    with pytest.raises(DeadDomainError):
        heap.detach(box, obj, 5)
    with pytest.raises(HeapError):
        heap.kill_domain(ROOT)


def test_reclaim_frees_exactly_the_owners_objects_and_children() -> None:
    heap = small_heap()
    mine = [heap.alloc(100, 0, 2)[0] for _ in range(3)]
    box, _ = heap.alloc_container(8 + 8 * 4, 0, 2, 8)
    children = [heap.alloc(10, 0, 2)[0] for _ in range(2)]
    heap.attach_bulk(box, children, 2)
    slots_of(heap, box)[:2] = children
    others = [heap.alloc(50, 0, 3)[0] for _ in range(2)]
    root_obj, _ = heap.alloc(7, 0, ROOT)
    heap.kill_domain(2)
    objects, nbytes, deferred = heap.reclaim(2)
    assert (objects, nbytes, deferred) == (6, 300 + 40 + 20, 0)
    assert not any(heap.is_live(i) for i in [*mine, box, *children])
    assert all(heap.is_live(i) for i in [*others, root_obj])
    assert heap.free_reason(mine[0]) == core.RECLAIMED
    assert heap.free_reason(children[0]) == core.FREED_WITH_CONTAINER
    with pytest.raises(StaleRefError, match="reclaimed when its owner domain crashed"):
        heap.owner(mine[1])
    with pytest.raises(StaleRefError, match="freed together with its container"):
        heap.owner(children[1])
    stats = heap.stats()
    assert (stats.live_objects, stats.live_bytes) == (3, 107)
    assert (stats.reclaimed_objects, stats.reclaimed_bytes) == (6, 360)
    assert heap.domain_stats(2) == (0, 0)
    assert heap.domain_stats(NESTED) == (0, 0)
    assert heap.domain_stats(3) == (2, 100)


def test_unborrow_frees_orphans_after_reclaim() -> None:
    heap = small_heap()
    lent, _ = heap.alloc(32, 0, 2)
    heap.borrow(lent, 2)
    heap.kill_domain(2)
    assert heap.reclaim(2) == (0, 0, 1)
    info = heap.lookup(lent)
    assert info.flags & core.FLAG_ORPHANED
    assert heap.stats().pending_objects == 1
    with pytest.raises(DeadDomainError):
        heap.borrow(lent, 2)
    heap.unborrow(lent)
    assert heap.free_reason(lent) == core.RECLAIMED
    stats = heap.stats()
    assert (stats.live_objects, stats.pending_objects, stats.reclaimed_objects) == (0, 0, 1)


# ---- containers ----


def test_attach_and_detach() -> None:
    heap = small_heap()
    box, _ = heap.alloc_container(64, 0, 2, 0)
    child, _ = heap.alloc(8, 0, 2)
    foreign, _ = heap.alloc(8, 0, 3)
    heap.attach(box, child, 2)
    info = heap.lookup(child)
    assert (info.owner, info.parent, info.is_nested) == (NESTED, box, True)
    assert heap.domain_stats(NESTED) == (1, 8)
    with pytest.raises(HeapError, match="inside a container"):
        heap.free(child)
    with pytest.raises(HeapError):
        heap.move(child, 2, 3)
    with pytest.raises(NotOwnerError):
        heap.attach(box, foreign, 2)
    with pytest.raises(NotOwnerError, match="container"):
        heap.attach(box, foreign, 3)
    with pytest.raises(HeapError, match="not a child"):
        heap.detach(box, foreign, 2)
    heap.free_if_live(child)  # nested: the finalizer must leave it alone
    heap.detach(box, child, 2)
    assert (heap.owner(child), heap.lookup(child).parent) == (2, 0)
    lent, _ = heap.alloc(8, 0, 2)
    heap.borrow(lent, 2)
    with pytest.raises(BorrowedError):
        heap.attach(box, lent, 2)
    plain, _ = heap.alloc(64, 0, 2)
    with pytest.raises(HeapError):
        heap.attach(plain, child, 2)  # not a container


def test_bulk_attach_detach_all_or_nothing() -> None:
    heap = small_heap()
    box, _ = heap.alloc_container(128, 0, 2, 0)
    kids = [heap.alloc(8, 0, 2)[0] for _ in range(4)]
    foreign, _ = heap.alloc(8, 0, 3)
    with pytest.raises(NotOwnerError, match=r"ids\[2\]"):
        heap.attach_bulk(box, [kids[0], kids[1], foreign, kids[2]], 2)
    assert [heap.owner(k) for k in kids] == [2] * 4
    heap.attach_bulk(box, np.array(kids, dtype=np.uint64), 2)
    assert [heap.owner(k) for k in kids] == [NESTED] * 4
    with pytest.raises(HeapError, match=r"ids\[3\]"):
        heap.detach_bulk(box, [kids[0], kids[1], kids[2], foreign], 2)
    assert [heap.owner(k) for k in kids] == [NESTED] * 4
    heap.move(box, 2, 3)  # moving a container moves only the container
    assert [heap.lookup(k).parent for k in kids] == [box] * 4
    with pytest.raises(NotOwnerError):
        heap.detach_bulk(box, kids, 2)
    heap.detach_bulk(box, kids, 3)
    assert [heap.owner(k) for k in kids] == [3] * 4


def test_container_free_never_frees_unrelated_ids_in_slots() -> None:
    heap = small_heap()
    box, _ = heap.alloc_container(8 * 8, 0, 2, 0)
    other_box, _ = heap.alloc_container(16, 0, 2, 0)
    child, _ = heap.alloc(8, 0, 2)
    unrelated, _ = heap.alloc(8, 0, 2)
    other_child, _ = heap.alloc(8, 0, 2)
    stale, _ = heap.alloc(8, 0, 2)
    heap.free(stale)
    heap.attach(box, child, 2)
    heap.attach(other_box, other_child, 2)
    slots_of(heap, other_box)[0] = other_child
    slots = slots_of(heap, box)
    slots[:] = [unrelated, other_child, child, stale, box, 0xDEAD_BEEF, 2**64 - 1, other_box]
    heap.free(box)
    assert not heap.is_live(child)
    assert all(heap.is_live(i) for i in (unrelated, other_child, other_box))
    assert heap.lookup(other_child).parent == other_box


def test_nested_containers_free_recursively_without_recursion_limits() -> None:
    heap = small_heap()
    depth = 20_000
    leaf, _ = heap.alloc(8, 0, 2)
    inner = leaf
    for _ in range(depth + 1):  # built bottom-up: only a top-level container accepts children
        outer, _ = heap.alloc_container(16, 0, 2, 8)
        heap.attach(outer, inner, 2)
        slots_of(heap, outer)[0] = inner
        inner = outer
    assert heap.stats().live_objects == depth + 2
    heap.free(outer)
    assert heap.stats().live_objects == 0
    assert heap.free_reason(leaf) == core.FREED_WITH_CONTAINER


def test_cycles_are_refused() -> None:
    heap = small_heap()
    first, _ = heap.alloc_container(16, 0, 2, 0)
    second, _ = heap.alloc_container(16, 0, 2, 0)
    with pytest.raises(HeapError):
        heap.attach(first, first, 2)
    heap.attach(first, second, 2)
    with pytest.raises(HeapError, match="inside a container"):  # second is nested now
        heap.attach(second, first, 2)
    assert heap.owner(first) == 2
    assert heap.lookup(second).parent == first


def test_container_arguments() -> None:
    heap = small_heap()
    with pytest.raises(HeapError):
        heap.alloc_container(16, 0, 2, 12)  # not a multiple of 8
    with pytest.raises(HeapError):
        heap.alloc_container(16, 0, 2, 24)  # past the end
    box, _ = heap.alloc_container(16, 0, 2, 16)  # no slots at all is fine
    assert heap.lookup(box).is_container


# ---- addressing ----


def test_iova_round_trip() -> None:
    heap = CoreHeap(arena_bytes=1 << 20, max_objects=64, iova_base=0x8000_0000)
    assert heap.iova_base == 0x8000_0000
    assert heap.size == 1 << 20
    obj, ptr = heap.alloc(256, 0, ROOT)
    iova = heap.iova(obj)
    assert iova == heap.iova_base + address(ptr) - address(heap.base)
    assert address(heap.iova_to_ptr(iova, 256)) == address(ptr)
    heap.buffer(obj, 4, offset=10)[:] = b"RLAB"
    device_view = core.ffi.buffer(heap.iova_to_ptr(iova + 10, 4), 4)
    assert bytes(device_view) == b"RLAB"
    with pytest.raises(HeapError):
        heap.iova_to_ptr(heap.iova_base - 1, 1)
    with pytest.raises(HeapError):
        heap.iova_to_ptr(heap.iova_base + heap.size - 8, 16)
    with pytest.raises(HeapError, match="outside"):
        heap.buffer(obj, 257)


def test_check_maps_codes() -> None:
    check(core.OK)
    for rc, cls in [
        (core.ESTALE, StaleRefError), (core.ENOTOWNER, NotOwnerError),
        (core.EBORROWED, BorrowedError), (core.ENOMEM, HeapFullError),
        (core.EDEAD, DeadDomainError), (core.EINVAL, HeapError), (core.ENESTED, HeapError),
        (core.EFULL, HeapFullError), (99, HeapError),
    ]:  # fmt: skip
        with pytest.raises(cls) as caught:
            check(rc, 0x1234)
        assert type(caught.value) is cls


# ---- concurrency ----


def test_two_threads_alloc_move_free_concurrently() -> None:
    heap = small_heap()
    rounds = 3000
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(domain: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                obj, _ = heap.alloc(64 + i % 200, 0, domain)
                heap.move(obj, domain, ROOT)
                heap.move(obj, ROOT, domain)
                if i % 10 == 0:
                    batch = np.array([heap.alloc(16, 0, domain)[0] for _ in range(4)], np.uint64)
                    heap.move_bulk(batch, domain, ROOT)
                    for other in batch:
                        heap.free(int(other))
                heap.free(obj)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stats = heap.stats()
    expected_allocs = 2 * (rounds + 4 * (rounds // 10))
    assert (stats.live_objects, stats.live_bytes) == (0, 0)
    assert stats.total_allocs == stats.total_frees == expected_allocs
    assert heap.domain_stats(2) == heap.domain_stats(3) == heap.domain_stats(ROOT) == (0, 0)
