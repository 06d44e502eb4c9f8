"""The fused deque calls of the drivers' per-batch path: `move_to`, `move_exact`,
`move_to_ring` and `move_from_ring` (deque to deque, with field work), `take_batch_iovas`
(take and the DMA addresses in one registry call), `put_batch(batch, field, values)`
(write a field and append in one call), `RRefDeque.get`/`set` (a field of every item, in place, no move),
and `len` (one owner-checked call). Each is checked for the same refusals as the slow
path: not the owner, a moved deque, a borrowed item, a bad field; and for "nothing
changed" when it refuses. (A borrowed item cannot be in a deque: attach refuses it.)
The per-owner counters must stay exact across batch moves."""

from __future__ import annotations

import numpy as np
import pytest

from redleaf_lab import BlkReq, Block, RRef, RRefDeque
from redleaf_lab.errors import NotOwnerError, StaleRefError
from redleaf_lab.heap import DescriptorRing, WritebackField


def requests(blocks: list[int], capacity: int | None = None) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, capacity or len(blocks))
    refs = []
    for block in blocks:
        ref = RRef.new(BlkReq)
        ref.array()["block"] = block
        refs.append(ref)
    assert dq.push_many(refs) == []
    return dq


def wrapped(blocks: list[int], capacity: int) -> RRefDeque:
    """A deque whose items wrap around the end of its ring."""
    dq = requests([0] * (capacity - 1) + blocks[:1], capacity)
    dq.take_batch(capacity - 1)  # dropped: freed
    rest = requests(blocks[1:])
    dq.put_batch(rest.take_batch())
    return dq


def test_take_batch_iovas_gives_the_batch_and_its_addresses(kernel):
    dq = wrapped([10, 11, 12, 13], capacity=6)
    batch, iovas = dq.take_batch_iovas(3, "data")
    assert len(batch) == 3 and len(dq) == 1
    assert batch.get("block").tolist() == [10, 11, 12]  # front first, across the wrap
    assert iovas.dtype == np.uint64 and iovas.tolist() == batch.iovas("data").tolist()
    _, block_iovas = dq.take_batch_iovas(8, "block")  # fewer than asked: sized to what came
    assert len(block_iovas) == 1 and len(dq) == 0
    empty, none = dq.take_batch_iovas(4, "data")
    assert len(empty) == 0 and none.shape == (0,)


def test_take_batch_iovas_refuses_before_anything_moves(kernel):
    dq = requests([1, 2])
    with pytest.raises(KeyError, match="no field 'lba'"):
        dq.take_batch_iovas(2, "lba")
    assert len(dq) == 2
    kernel.heap.move(dq._id, 1, 5)  # another domain's deque now
    with pytest.raises(NotOwnerError):
        dq.take_batch_iovas(2, "data")
    kernel.heap.move(dq._id, 5, 1)
    assert len(dq) == 2 and dq.get("block").tolist() == [1, 2]


def test_put_batch_with_a_field_writes_it_and_appends_in_one_call(kernel):
    src = requests([1, 2, 3])
    dst = requests([9], capacity=4)
    batch = src.take_batch()
    dst.put_batch(batch, "data_len", np.array([100, 200, 300]))
    assert not batch.live and len(dst) == 4
    assert dst.get("data_len").tolist() == [0, 100, 200, 300]
    assert dst.get("block").tolist() == [9, 1, 2, 3]
    with pytest.raises(StaleRefError, match="cannot be put again"):
        src.put_batch(batch, "data_len", 1)


def test_put_batch_with_a_field_that_does_not_fit_leaves_the_batch_live(kernel):
    full = requests([1, 2])
    batch = requests([3, 4, 5]).take_batch()
    with pytest.raises(ValueError, match="does not fit"):
        full.put_batch(batch, "data_len", 7)
    assert batch.live and len(full) == 2
    assert batch.get("data_len").tolist() == [7, 7, 7]  # documented: the field stays written
    with pytest.raises(KeyError):
        full.put_batch(batch, "lba", 7)
    with pytest.raises(TypeError, match="needs values"):
        full.put_batch(batch, "data_len")
    ids = batch.ids()
    kernel.heap.move(int(ids[2]), 1, 6)  # no longer ours: the write is refused, nothing changes
    roomy = RRefDeque.new(BlkReq, 8)
    with pytest.raises(NotOwnerError, match=r"ids\[2\]"):
        roomy.put_batch(batch, "data_len", 99)
    kernel.heap.move(int(ids[2]), 6, 1)
    assert batch.get("data_len").tolist() == [7, 7, 7] and len(roomy) == 0


def test_deque_get_and_set_work_in_place_across_the_wrap(kernel):
    dq = wrapped([5, 6, 7, 8], capacity=5)
    assert dq.get("block").tolist() == [5, 6, 7, 8]
    dq.set("data_len", np.array([1, 2, 3, 4]))
    dq.set("block", dq.get("block") + 100)
    out = dq.pop_many()
    assert [int(r.readonly()["block"]) for r in out] == [105, 106, 107, 108]
    assert [int(r.readonly()["data_len"]) for r in out] == [1, 2, 3, 4]
    assert dq.get("block").shape == (0,)
    dq.set("block", 1)  # an empty deque: nothing to write, no error


def test_deque_fields_and_len_are_for_the_owner_only(kernel):
    dq = requests([1, 2])
    kernel.heap.move(dq._id, 1, 4)
    with pytest.raises(NotOwnerError):
        len(dq)
    with pytest.raises(NotOwnerError):
        dq.get("block")
    with pytest.raises(NotOwnerError):
        dq.set("block", 1)
    kernel.heap.move(dq._id, 4, 1)
    assert len(dq) == 2
    with pytest.raises(KeyError):
        dq.get("lba")


def test_batch_moves_keep_the_per_owner_counters_exact(kernel):
    heap = kernel.heap
    before = heap.domain_stats(1)
    dq = requests([1, 2, 3, 4])
    after_alloc = heap.domain_stats(1)
    assert after_alloc[0] == before[0] + 1  # the deque; its items are nested
    nested = heap.domain_stats(0)
    batch = dq.take_batch(3)
    assert heap.domain_stats(1) == (after_alloc[0] + 3, after_alloc[1] + 3 * BlkReq.size)
    assert heap.domain_stats(0) == (nested[0] - 3, nested[1] - 3 * BlkReq.size)
    heap.move_bulk(batch.ids(), 1, 3)
    assert heap.domain_stats(3) == (3, 3 * BlkReq.size)
    heap.move_bulk(batch.ids(), 3, 1)
    dq.put_batch(batch)
    assert heap.domain_stats(1) == after_alloc and heap.domain_stats(3) == (0, 0)
    assert heap.domain_stats(0) == nested


def test_move_to_moves_what_fits_and_keeps_the_items_nested(kernel):
    heap = kernel.heap
    src = wrapped([1, 2, 3, 4, 5], capacity=6)
    dst = requests([9], capacity=4)
    nested = heap.domain_stats(0)
    assert src.move_to(dst) == 3  # dst had room for 3
    assert dst.get("block").tolist() == [9, 1, 2, 3] and src.get("block").tolist() == [4, 5]
    assert heap.domain_stats(0) == nested  # still nested: no counter moved
    assert src.move_to(dst, 5) == 0
    assert dst.move_to(src, 1) == 1 and src.get("block").tolist() == [4, 5, 9]
    with pytest.raises(ValueError, match="into itself"):
        src.move_to(src)
    with pytest.raises(TypeError, match="cannot move"):
        src.move_to(RRefDeque.new(Block, 4))


def test_move_exact_is_all_or_nothing_and_can_write_a_field(kernel):
    src = requests([1, 2, 3], capacity=4)
    dst = RRefDeque.new(BlkReq, 2)
    with pytest.raises(ValueError, match="holds 3 items, not 4"):
        src.move_exact(dst, 4)
    with pytest.raises(ValueError, match="do not fit"):
        src.move_exact(dst, 3, "data_len", 5)
    assert len(src) == 3 and len(dst) == 0 and src.get("data_len").tolist() == [0, 0, 0]
    src.move_exact(dst, 2, "data_len", np.array([10, 20]))
    assert dst.get("data_len").tolist() == [10, 20] and src.get("block").tolist() == [3]
    with pytest.raises(TypeError, match="needs values"):
        src.move_exact(dst, 1, "data_len")
    with pytest.raises(ValueError, match="n must be"):
        src.move_exact(dst, -1)


def test_moves_are_for_the_owner_of_both_deques(kernel):
    src = requests([1, 2])
    dst = RRefDeque.new(BlkReq, 4)
    kernel.heap.move(dst._id, 1, 4)  # not ours now
    with pytest.raises(NotOwnerError):
        src.move_to(dst)
    with pytest.raises(NotOwnerError):
        src.move_to_ring(dst, 2, "data", DescriptorRing(np.zeros((4, 2), np.uint64)), 0)
    kernel.heap.move(dst._id, 4, 1)
    assert src.move_to(dst) == 2


def test_add_changes_an_unsigned_field_in_place_and_wraps(kernel):
    dq = wrapped([1, 2, 0xFFFF_FFFF_FFFF_FFFF], capacity=4)
    dq.add("block", 5)
    assert dq.get("block").tolist() == [6, 7, 4]  # the last one wrapped
    dq.add("data_len", -1)  # u32: minus one is 2**32 - 1
    assert dq.get("data_len").tolist() == [0xFFFF_FFFF] * 3
    with pytest.raises(TypeError, match="not unsigned"):
        dq.add("data", 1)
    with pytest.raises(TypeError, match="must be an int"):
        dq.add("block", 1.5)
    RRefDeque.new(BlkReq, 2).add("block", 1)  # empty: nothing to do
    kernel.heap.move(dq._id, 1, 4)
    with pytest.raises(NotOwnerError):
        dq.add("block", 1)


def test_move_to_ring_writes_one_descriptor_per_item_and_wraps(kernel):
    src = requests([1, 2, 3])
    dst = RRefDeque.new(BlkReq, 8)
    ring = np.zeros((4, 2), dtype=np.uint64)
    descriptors = DescriptorRing(ring)
    assert src.move_to_ring(dst, 3, "data", descriptors, 2, word=7) == 3
    taken, iovas = dst.take_batch_iovas(3, "data")
    assert len(taken) == 3
    assert ring[[2, 3, 0], 0].tolist() == iovas.tolist() and ring[1].tolist() == [0, 0]
    assert ring[[2, 3, 0], 1].tolist() == [7, 7, 7]
    dst.put_batch(taken)
    words = np.array([11, 22], dtype=np.uint64)
    assert dst.move_to_ring(src, 2, "block", descriptors, 3, words) == 2
    assert ring[[3, 0], 1].tolist() == [11, 22]
    assert src.get("block").tolist() == [1, 2]


def test_move_to_ring_refuses_bad_rings_and_moves_nothing(kernel):
    src = requests([1, 2, 3])
    dst = RRefDeque.new(BlkReq, 8)
    for bad in (np.zeros((4, 3), dtype=np.uint64), np.zeros((4, 2), dtype=np.uint32),
                np.zeros((0, 2), dtype=np.uint64), np.zeros((4, 2), dtype=np.uint64)[::2]):
        with pytest.raises(TypeError, match="shape"):
            DescriptorRing(bad)
    ring = DescriptorRing(np.zeros((4, 2), dtype=np.uint64))
    with pytest.raises(ValueError, match="outside"):
        src.move_to_ring(dst, 3, "data", ring, 4)
    with pytest.raises(TypeError, match="at least 3"):
        src.move_to_ring(dst, 3, "data", ring, 0, np.zeros(2, dtype=np.uint64))
    with pytest.raises(TypeError, match="at least 3"):
        src.move_to_ring(dst, 3, "data", ring, 0, np.zeros(3, dtype=np.uint32))
    small = DescriptorRing(np.zeros((2, 2), dtype=np.uint64))
    assert src.move_to_ring(dst, 3, "data", small, 0) == 2  # no more than the ring holds
    assert len(src) == 1 and len(dst) == 2


def test_move_to_ring_looks_words_up_by_a_key_field_and_refuses_unknown_keys(kernel):
    src = requests([1, 2, 3])
    src.set("data_len", np.array([2, 3, 2]))
    dst = RRefDeque.new(BlkReq, 8)
    table = np.array([0, 0, 200, 300], dtype=np.uint64)  # keys 0 and 1 have no word
    ring = DescriptorRing(np.zeros((4, 2), dtype=np.uint64), table)
    assert src.move_to_ring(dst, 3, "data", ring, 0, key="data_len") == 3
    assert ring.array[:3, 1].tolist() == [200, 300, 200]
    dst.set("data_len", np.array([3, 1, 2]))  # 1 maps to 0: refused
    with pytest.raises(ValueError, match=r"item 1 .*'data_len' \(1\) has no descriptor word"):
        dst.move_to_ring(src, 3, "data", ring, 0, key="data_len")
    dst.set("data_len", np.array([3, 9, 2]))  # past the table: refused too
    with pytest.raises(ValueError, match=r"item 1 .*\(9\)"):
        dst.move_to_ring(src, 3, "data", ring, 0, key="data_len")
    assert len(dst) == 3 and len(src) == 0  # nothing moved
    with pytest.raises(TypeError, match="not unsigned"):
        dst.move_to_ring(src, 3, "data", ring, 0, key="data")
    with pytest.raises(TypeError, match="word table"):
        dst.move_to_ring(src, 3, "data", DescriptorRing(np.zeros((4, 2), np.uint64)), 0,
                         key="data_len")
    with pytest.raises(TypeError, match="word table must be"):
        DescriptorRing(np.zeros((4, 2), np.uint64), np.zeros(4, np.uint32))


def test_move_from_ring_sets_a_field_from_each_writeback_and_checks_it(kernel):
    src = requests([1, 2, 3])
    dst = RRefDeque.new(BlkReq, 8)
    ring = DescriptorRing(np.zeros((4, 2), dtype=np.uint64))
    lengths = WritebackField(word=1, shift=32, mask=0xFFFF, check_mask=0x3, check_want=0x3)
    for slot, length in zip((3, 0, 1), (100, 200, 300), strict=True):  # wraps at the end
        ring.array[slot, 1] = (length << 32) | 0x3
    ring.array[1, 1] &= ~np.uint64(0x2)  # the third one is not complete
    with pytest.raises(ValueError, match=r"descriptor 1 \(item 2\) has word 1 = 0x12c00000001"):
        src.move_from_ring(dst, 3, ring, 3, "data_len", lengths)
    assert len(src) == 3 and len(dst) == 0 and src.get("data_len").tolist() == [0, 0, 0]
    assert src.move_from_ring(dst, 2, ring, 3, "data_len", lengths) == 2  # the complete ones
    assert dst.get("data_len").tolist() == [100, 200] and len(src) == 1
    small = RRefDeque.new(BlkReq, 1)
    assert dst.move_from_ring(small, 2, ring, 3, "data_len", lengths) == 1  # room for one
    assert small.get("data_len").tolist() == [100] and len(dst) == 1
    with pytest.raises(TypeError, match="not unsigned"):
        src.move_from_ring(dst, 1, ring, 1, "data", lengths)
    with pytest.raises(ValueError, match="outside"):
        src.move_from_ring(dst, 1, ring, 4, "data_len", lengths)
    with pytest.raises(ValueError, match="word must be 0 or 1"):
        WritebackField(word=2, shift=0, mask=1, check_mask=0, check_want=0)


def test_a_descriptor_ring_cannot_be_resized_behind_the_c_code(kernel):
    """C writes `slots` descriptors into the array the ring checked: neither may change."""
    ring = DescriptorRing(np.zeros((4, 2), dtype=np.uint64))
    with pytest.raises(AttributeError):
        ring.slots = 1 << 20  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ring.array = np.zeros((1 << 20, 2), dtype=np.uint64)  # type: ignore[misc]
    assert ring.slots == 4 and ring.array.shape == (4, 2)


def test_move_from_ring_refuses_a_value_past_the_limit(kernel):
    src = requests([1, 2])
    dst = RRefDeque.new(BlkReq, 4)
    ring = DescriptorRing(np.zeros((2, 2), dtype=np.uint64))
    lengths = WritebackField(word=1, shift=32, mask=0xFFFF, check_mask=0x1, check_want=0x1,
                             limit=4096)
    ring.array[0, 1] = (4096 << 32) | 1
    ring.array[1, 1] = (4097 << 32) | 1
    with pytest.raises(ValueError, match=r"descriptor 1 \(item 1\).*value 4097 is past the "
                                         r"limit 4096; nothing moved"):
        src.move_from_ring(dst, 2, ring, 0, "data_len", lengths)
    assert len(src) == 2 and len(dst) == 0
    assert src.move_from_ring(dst, 1, ring, 0, "data_len", lengths) == 1
    assert dst.get("data_len").tolist() == [4096]
