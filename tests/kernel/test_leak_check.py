"""The leak check of `Kernel.shutdown()` counts every live object no handle reaches.

Issue 12, item 2: the check used to ignore objects owned by root, so requests a shadow
left to nobody (root-owned, no handle) were reported as `leaked: 0`. These tests leak
root-owned objects on purpose (allocated with no handle, or whose handle was lost) and
check they are reported, nested objects through their container; and that objects
still reachable (a handle, a numpy view that outlived its handle, an armed batch) are
not.
"""

from __future__ import annotations

import gc

from redleaf_lab._core.heap import OWNER_ROOT
from redleaf_lab.heap import BlkReq, Block, RRef, RRefDeque
from redleaf_lab.kernel.kernel import Kernel
from redleaf_lab.kernel.leaks import find_leaks


def _deque_of(n: int) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, 8)
    dq.push_many([RRef.new(BlkReq) for _ in range(n)])
    return dq


def test_a_root_object_without_a_handle_is_a_leak(kernel: Kernel) -> None:
    obj_id, _ptr = kernel.heap.alloc(Block.size, Block.type_id, OWNER_ROOT)  # no handle
    assert kernel.heap.owner(obj_id) == OWNER_ROOT
    assert kernel.shutdown() == {"objects": 1, "bytes": Block.size}
    leaks = kernel.events.history({"shutdown"})[-1].data
    assert leaks["leaked_objects"] == 1 and leaks["leaked_ids"] == (obj_id,)


def test_a_lost_container_handle_leaks_the_container_and_its_contents(
        kernel: Kernel) -> None:
    lost = _deque_of(3)
    lost_id = lost.id
    lost._disarm()  # the handle forgets the object: nothing will ever free it
    del lost
    gc.collect()
    assert kernel.heap.is_live(lost_id)
    report = find_leaks(kernel.heap)
    assert report.top_level == (lost_id,)
    assert report.objects == 4  # the deque and the three requests nested in it
    assert report.bytes == kernel.heap.lookup(lost_id).size + 3 * BlkReq.size
    assert kernel.shutdown()["objects"] == 4


def test_objects_still_reached_are_not_leaks(kernel: Kernel) -> None:
    held = RRef.new(Block, 7)  # a handle
    kept_deque = _deque_of(2)  # a handle on a container: its contents are reached
    view = RRef.new(Block, 9).array()  # the handle is gone; the view keeps the object
    source = _deque_of(4)
    batch = source.take_batch(3)  # an armed, handle-free batch
    assert len(batch) == 3
    assert find_leaks(kernel.heap).objects == 0
    assert kernel.shutdown() == {"objects": 0, "bytes": 0}
    assert int(view[0]) == 9 and held.valid and len(kept_deque) == 2


def test_objects_freed_when_their_handles_go_leave_nothing(kernel: Kernel) -> None:
    refs = [RRef.new(Block) for _ in range(5)]
    dq = _deque_of(2)
    del refs, dq
    gc.collect()
    assert kernel.shutdown() == {"objects": 0, "bytes": 0}


def test_a_domain_owned_object_left_after_shutdown_is_still_a_leak(kernel: Kernel) -> None:
    """What the old check counted stays counted (an owner other than root is gone)."""
    obj_id, _ptr = kernel.heap.alloc(Block.size, Block.type_id, 1000)  # a domain's
    ref = RRef.new(Block)  # root's, with a handle: not a leak
    report = kernel.shutdown()
    assert report == {"objects": 1, "bytes": Block.size}
    assert kernel.heap.is_live(obj_id) and ref.valid
