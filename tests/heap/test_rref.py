"""RRef discipline: ownership, views as borrows, moves, containers, misuse errors."""

from __future__ import annotations

import numpy as np
import pytest

from redleaf_lab import (
    BlkReq,
    Block,
    BorrowedError,
    Layout,
    NotOwnerError,
    RRef,
    RRefArray,
    RRefDeque,
    RRefVec,
    StaleRefError,
    UseAfterMoveError,
)
from redleaf_lab.errors import InterfaceError


def test_new_rref_is_zeroed_owned_and_writable(kernel):
    ref = RRef.new(Block)
    view = ref.array()
    assert view.shape == (4096,) and view.dtype == np.uint8
    assert not view.any()
    view[:4] = [1, 2, 3, 4]
    assert ref.tobytes()[:4] == b"\x01\x02\x03\x04"
    assert ref.owner() == 1


def test_struct_layout_views_fields(kernel):
    req = RRef.new(BlkReq)
    view = req.array()
    view["block"] = 42
    view["data"][:3] = 7
    assert int(req.readonly()["block"]) == 42
    assert req.readonly()["data"][:4].tolist() == [7, 7, 7, 0]


def test_readonly_view_cannot_be_made_writable_by_domain_code(kernel):
    from redleaf_lab import SafetyError
    from redleaf_lab.kernel.safety import check_source

    ref = RRef.new(Block)
    ro = ref.readonly()
    with pytest.raises(ValueError):
        ro[0] = 1
    for escape in ("view.flags.writeable = True", "view.setflags(write=True)"):
        with pytest.raises(SafetyError, match="numpy"):
            check_source(f"def f(view):\n    {escape}\n", "d.py")


def test_move_refused_while_views_alive_then_allowed(kernel):
    ref = RRef.new(Block)
    view = ref.array()
    sliced = view[10:20]
    del view
    with pytest.raises(BorrowedError, match="still alive"):
        ref._move(1, 1)
    del sliced
    ref._move(1, 1)  # no views: fine


def test_layout_redeclaration_must_match():
    assert Layout.bytes("Block", 4096) is Block
    with pytest.raises(InterfaceError):
        Layout.bytes("Block", 512)


def test_drop_then_use_is_stale(kernel):
    ref = RRef.new(Block)
    ref.drop()
    with pytest.raises(StaleRefError):
        ref.array()


def test_handle_finalizer_frees(kernel):
    before = kernel.heap.stats().live_objects
    ref = RRef.new(Block)
    assert kernel.heap.stats().live_objects == before + 1
    del ref
    assert kernel.heap.stats().live_objects == before


def test_not_owner_error_from_another_domain(kernel):
    ref = RRef.new(Block)
    kernel.heap.move(ref.id, 1, 7)  # owned by someone else now
    with pytest.raises(NotOwnerError, match="owned by domain 7"):
        ref.array()


def test_deque_push_pop_and_full_hands_back(kernel):
    dq = RRefDeque.new(Block, 2)
    a, b, c = (RRef.new(Block, i) for i in (1, 2, 3))
    assert dq.push_back(a) is None and dq.push_back(b) is None
    assert dq.push_back(c) is c  # full: handed back, still usable
    assert int(c.array()[0]) == 3
    with pytest.raises(StaleRefError, match="moved into"):
        a.array()
    first = dq.pop_front()
    assert first is not None and int(first.readonly()[0]) == 1
    assert len(dq) == 1


def test_deque_bulk_moves_are_one_batch(kernel):
    dq = RRefDeque.new(Block, 4)
    refs = [RRef.new(Block, i) for i in range(6)]
    rest = dq.push_many(refs)
    assert len(rest) == 2 and len(dq) == 4
    out = dq.pop_many(3)
    assert [int(r.readonly()[0]) for r in out] == [0, 1, 2]
    assert len(dq) == 1


def test_deque_rejects_wrong_layout(kernel):
    dq = RRefDeque.new(Block, 2)
    with pytest.raises(TypeError):
        dq.push_back(RRef.new(BlkReq))


def test_freeing_a_deque_frees_children(kernel):
    before = kernel.heap.stats().live_objects
    dq = RRefDeque.new(Block, 4)
    dq.push_many([RRef.new(Block) for _ in range(3)])
    assert kernel.heap.stats().live_objects == before + 4
    del dq
    assert kernel.heap.stats().live_objects == before


def test_array_put_take(kernel):
    arr = RRefArray.new(Block, 3)
    assert arr.put(1, RRef.new(Block, 5)) is None
    prev = arr.put(1, RRef.new(Block, 6))
    assert prev is not None and int(prev.readonly()[0]) == 5
    got = arr.take(1)
    assert got is not None and int(got.readonly()[0]) == 6
    assert arr.take(0) is None
    with pytest.raises(IndexError):
        arr.take(3)


def test_vec_grows_and_refuses_growth_with_views(kernel):
    u32 = Layout.scalar("u32", np.uint32)
    vec = RRefVec.new(u32, capacity=2)
    vec.extend([1, 2])
    view = vec.array()
    with pytest.raises(BorrowedError):
        vec.append(3)
    del view
    vec.extend(range(3, 100))
    assert len(vec) == 99 and int(vec.array().sum()) == sum(range(1, 100))


def test_use_after_move_names_the_new_owner(kernel, domains):
    spin = kernel.load(domains / "spinner")
    ref = RRef.new(Block)
    spin.hold(ref)
    with pytest.raises(UseAfterMoveError, match="moved to spinner"):
        ref.array()
    with pytest.raises(UseAfterMoveError):
        spin.hold(ref)


def test_nested_boot_and_shutdown_restore_the_default_heap(kernel):
    import redleaf_lab

    inner = redleaf_lab.boot(heap_bytes=16 << 20, max_objects=1 << 10)
    assert RRef.new(Block)._heap is inner.heap
    inner.shutdown()
    assert RRef.new(Block)._heap is kernel.heap  # the outer kernel is the default again


def test_a_view_keeps_its_object_alive_after_the_handle_is_gone(kernel):
    before = kernel.heap.stats().live_objects
    view = RRef.new(Block, 5).array()  # the handle is garbage at once
    assert kernel.heap.stats().live_objects == before + 1  # but the view still holds it
    other = RRef.new(Block, 9)  # must not reuse the viewed block
    assert int(view[0]) == 5 and int(other.readonly()[0]) == 9
    view[0] = 6  # writes land in the viewed object, not in `other`
    assert int(other.readonly()[0]) == 9
    del view
    assert kernel.heap.stats().live_objects == before + 1  # only `other` is left


def test_readonly_views_stay_readonly(kernel):
    ref = RRef.new(Block)
    ro = ref.readonly()
    with pytest.raises(ValueError):
        ro.flags.writeable = True


def test_a_borrow_gives_its_device_address_only_while_lent(kernel):
    from redleaf_lab.heap.rref import Borrow

    block = RRef.new(Block, 7)
    lent = Borrow(block, 1)
    assert lent.iova() == block.iova() and lent.iova() % 4096 == 0  # a DMA source page
    assert lent._end() == 0
    with pytest.raises(StaleRefError, match="borrow ended"):
        lent.iova()


def test_iova_answers_only_the_owner(kernel, domains):
    """Issue 12.9: after a move the old owner gets no device address of the object."""
    from redleaf_lab import UseAfterMoveError

    spin = kernel.load(domains / "spinner")
    block = RRef.new(Block, 1)
    assert block.iova() > 0
    spin.hold(block)
    with pytest.raises(UseAfterMoveError):
        block.iova()
