"""Handle-free batches: RRefDeque.take_batch/put_batch, RRefBatch field access, the batch
drop token, and the C registry checks behind them (csrc/bulk.c): ownership, ranges,
borrows, all-or-nothing failures that name the bad index, and reclaim after a crash."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from redleaf_lab import BlkReq, Block, RRef, RRefDeque
from redleaf_lab.errors import (
    BorrowedError,
    DeadDomainError,
    HeapError,
    NotOwnerError,
    StaleRefError,
)
from redleaf_lab.heap import RRefBatch


def requests(blocks: list[int], capacity: int | None = None) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, capacity or len(blocks))
    refs = []
    for block in blocks:
        ref = RRef.new(BlkReq)
        view = ref.array()
        view["block"] = block
        view["data"][:2] = [block & 0xFF, 7]
        del view
        refs.append(ref)
    assert dq.push_many(refs) == []
    return dq


def test_take_get_set_put_round_trip(kernel):
    dq = requests([10, 11, 12, 13, 14], capacity=6)
    batch = dq.take_batch(3)
    assert isinstance(batch, RRefBatch) and len(batch) == 3 and len(dq) == 2
    assert batch.get("block").tolist() == [10, 11, 12]
    assert batch.get("block").dtype == np.uint64
    ids = batch.ids()
    assert all(kernel.heap.owner(int(i)) == 1 for i in ids)  # the taker owns them now
    iovas = batch.iovas("data")
    assert iovas.tolist() == [kernel.heap.iova(int(i)) for i in ids]  # data is at offset 0
    assert batch.iovas("block").tolist() == (iovas + 4104).tolist()
    data = batch.get("data")
    assert data.shape == (3, 4096) and data[:, :2].tolist() == [[10, 7], [11, 7], [12, 7]]
    batch.set("data_len", 4096)
    batch.set("data", np.arange(3, dtype=np.uint8)[:, None])  # broadcast per object
    dq.put_batch(batch)
    assert not batch.live and len(dq) == 5
    out = dq.pop_many()
    assert [int(r.readonly()["block"]) for r in out] == [13, 14, 10, 11, 12]  # wrapped ring
    assert [int(r.readonly()["data_len"]) for r in out] == [0, 0, 4096, 4096, 4096]
    assert [int(r.readonly()["data"][4095]) for r in out[2:]] == [0, 1, 2]


def test_spent_batch_refuses_use_and_its_drop_frees_nothing(kernel):
    dq = requests([1, 2])
    batch = dq.take_batch()
    dq.put_batch(batch)
    live = kernel.heap.stats().live_objects
    with pytest.raises(StaleRefError, match="put into RRefDeque"):
        batch.get("block")
    with pytest.raises(StaleRefError, match="cannot be put again"):
        dq.put_batch(batch)
    del batch
    gc.collect()
    assert kernel.heap.stats().live_objects == live and len(dq) == 2


def test_dropping_a_live_batch_frees_its_objects(kernel):
    dq = requests([1, 2, 3])
    live = kernel.heap.stats().live_objects
    batch = dq.take_batch(2)
    ids = batch.ids()
    del batch
    assert kernel.heap.stats().live_objects == live - 2
    assert not any(kernel.heap.is_live(int(i)) for i in ids) and len(dq) == 1


def test_an_adopting_batch_frees_what_it_was_armed_with(kernel):
    """The trusted constructor (shadows adopting rescued requests) arms its drop token
    with the ids in the same C call that attaches the token's destructor; dropping the
    batch frees exactly the armed objects its owner holds, and nothing twice."""
    dq = requests([4, 5, 6])
    refs = dq.pop_many()
    ids = np.array([r.id for r in refs], dtype=np.uint64)
    live = kernel.heap.stats().live_objects
    batch = RRefBatch(kernel.heap, ids, BlkReq, owner=1)
    assert len(batch) == 3 and batch.get("block").tolist() == [4, 5, 6]
    del batch
    gc.collect()
    assert kernel.heap.stats().live_objects == live - 3
    assert not any(kernel.heap.is_live(int(i)) for i in ids)
    del refs  # their own tokens find the objects gone: no double free
    gc.collect()
    assert kernel.heap.stats().live_objects == live - 3


def test_put_is_all_or_nothing_and_checks_the_layout(kernel):
    full = requests([1, 2])
    batch = requests([3, 4, 5]).take_batch()
    with pytest.raises(ValueError, match="does not fit"):
        full.put_batch(batch)
    assert batch.live and len(full) == 2 and batch.get("block").tolist() == [3, 4, 5]
    with pytest.raises(TypeError, match="cannot hold"):
        RRefDeque.new(Block, 8).put_batch(batch)
    with pytest.raises(KeyError, match="no field 'lba'"):
        batch.get("lba")
    empty = full.take_batch(0)
    assert len(empty) == 0 and empty.get("block").shape == (0,)
    full.put_batch(empty)
    assert len(full) == 2


def test_registry_checks_every_id_and_names_the_bad_one(kernel):
    batch = requests([1, 2, 3]).take_batch()
    ids = batch.ids()
    kernel.heap.move(int(ids[1]), 1, 7)  # another domain owns the middle one now
    with pytest.raises(NotOwnerError, match=r"ids\[1\]; nothing changed"):
        batch.get("block")
    with pytest.raises(NotOwnerError, match=r"ids\[1\]"):
        batch.set("data_len", 99)
    kernel.heap.move(int(ids[1]), 7, 1)
    assert batch.get("data_len").tolist() == [0, 0, 0]  # nothing was written
    kernel.heap.free(int(ids[2]))
    with pytest.raises(StaleRefError, match=r"ids\[2\].*freed by its owner"):
        batch.iovas("data")


def test_core_bulk_calls_check_ranges_borrows_and_owners(kernel):
    heap = kernel.heap
    a, _ = heap.alloc(64, 1, 1)
    b, _ = heap.alloc(16, 1, 1)
    ids = np.array([a, b], dtype=np.uint64)
    with pytest.raises(HeapError, match=r"bytes \[8, 24\): ids\[1\].*invalid"):
        heap.gather(ids, 8, np.zeros((2, 16), np.uint8), 1)  # b has 16 bytes, not 24
    with pytest.raises(HeapError, match=r"ids\[1\]"):
        heap.iova_bulk(ids, 0, 32, 1)
    heap.scatter(ids, 8, np.array([5, 6], dtype=np.uint64), 1)
    out = np.zeros(2, np.uint64)
    heap.gather(ids, 8, out, 1)
    assert out.tolist() == [5, 6]
    heap.borrow(b, 1)
    with pytest.raises(BorrowedError, match=r"ids\[1\]"):
        heap.scatter(ids, 0, np.zeros(2, np.uint32), 1)
    heap.gather(ids, 0, np.zeros(2, np.uint32), 1)  # reading a lent object is fine
    heap.unborrow(b)
    with pytest.raises(HeapError, match="invalid argument"):
        heap.gather(ids, 0, np.zeros(2, np.uint32), 0)  # owner 0 is "nested", not a domain
    assert heap.free_owned_bulk(ids, 7) == 0 and heap.is_live(a)  # not 7's: skipped
    assert heap.free_owned_bulk(ids, 1) == 2 and not heap.is_live(a)


def test_a_crashed_owner_loses_the_batch_to_reclaim(kernel):
    """Crash between take and put: reclaim frees the objects; the token skips them later."""
    heap = kernel.heap
    dq = requests([1, 2, 3, 4])
    live = heap.stats().live_objects
    batch = dq.take_batch(3)
    ids = batch.ids()
    heap.move_bulk(ids, 1, 9)  # as if domain 9 had taken them
    heap.kill_domain(9)
    with pytest.raises(DeadDomainError):
        heap.gather(ids, 0, np.zeros(3, np.uint32), 9)
    objects, _bytes, _deferred = heap.reclaim(9)
    assert objects == 3 and heap.stats().live_objects == live - 3
    assert all(heap.free_reason(int(i)) == 2 for i in ids)  # RL_RECLAIMED
    keep = RRef.new(Block)
    del batch
    gc.collect()
    assert heap.stats().live_objects == live - 3 + 1 and keep.valid and len(dq) == 1


def test_a_batch_put_into_a_deque_that_is_now_empty_is_still_spent(kernel):
    """Being spent must not depend on where the batch went (an empty deque is falsy)."""
    dq = requests([1, 2])
    batch = dq.take_batch()
    other = RRefDeque.new(BlkReq, 4)
    other.put_batch(batch)
    again = other.take_batch()  # `other` is empty now
    assert not batch.live and len(other) == 0
    with pytest.raises(StaleRefError, match="put into RRefDeque"):
        dq.put_batch(batch)
    with pytest.raises(StaleRefError):
        batch.get("block")
    dq.put_batch(again)
    assert len(dq) == 2
