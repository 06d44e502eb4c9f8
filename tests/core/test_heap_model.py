"""Model-based test of the C heap: 20,000 seeded random operations against a Python
reference model, which predicts the exact outcome of every call (split out of
test_heap.py to keep each file one concern)."""


from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from redleaf_lab._core import heap as core
from redleaf_lab.errors import (
    HeapError,
)
from tests.core.heap_helpers import NESTED, ROOT, slots_of, small_heap

# ---- model-based test ----


@dataclass
class ModelObject:
    size: int
    owner: int
    container: bool = False
    slots: list[int] = field(default_factory=list)  # child ids written to memory (0 = empty)
    child_offset: int = 0
    borrows: int = 0
    parent: int = 0
    orphaned: bool = False
    free_pending: bool = False


class HeapModel:
    """A Python reference of the heap's ownership rules; returns expected error codes."""

    def __init__(self) -> None:
        self.objects: dict[int, ModelObject] = {}
        self.dead: set[int] = set()
        self.reclaimed = [0, 0]

    def live(self, oid: int) -> ModelObject | None:
        return self.objects.get(oid)

    def free_tree(self, oid: int, reclaimed: bool) -> None:
        obj = self.objects.pop(oid)
        if reclaimed:
            self.reclaimed[0] += 1
            self.reclaimed[1] += obj.size
        for child in [c for c, o in self.objects.items() if o.parent == oid]:
            self.free_tree(child, reclaimed)

    def destination(self, to: int) -> int:
        if to == NESTED:
            return core.EINVAL
        return core.EDEAD if to in self.dead else core.OK

    def movable(self, oid: int, src: int) -> int:
        obj = self.live(oid)
        if obj is None:
            return core.ESTALE
        if obj.owner == NESTED:
            return core.ENESTED
        if obj.owner != src:
            return core.ENOTOWNER
        return core.EBORROWED if obj.borrows else core.OK

    def container_check(self, cid: int, owner: int) -> int:
        box = self.live(cid)
        if box is None or box.orphaned or box.free_pending:
            return core.ESTALE
        if not box.container:
            return core.EINVAL
        if box.owner == NESTED:
            return core.ENESTED
        return core.OK if box.owner == owner else core.ENOTOWNER

    def counts(self) -> tuple[int, int]:
        return len(self.objects), sum(o.size for o in self.objects.values())


def expect(expected: int, call: Callable[..., object], *args: object) -> bool:
    """Run call(*args); assert it fails with exactly the class for `expected` (or works)."""
    try:
        call(*args)
    except HeapError as exc:
        wanted = core._ERRORS[expected][0] if expected else None
        assert type(exc) is wanted, f"{call}{args}: expected rc {expected}, got {exc!r}"
        return False
    assert expected == core.OK, f"{call}{args}: expected rc {expected}, but it succeeded"
    return True


def test_model_based_random_operations() -> None:
    rng = random.Random(20240601)
    heap = small_heap(arena_bytes=1 << 30, max_objects=1 << 16)
    model = HeapModel()
    domains = [ROOT, 2, 3, 4]
    next_domain = 5
    ever_allocated: list[int] = []

    def any_id() -> int:
        if model.objects and rng.random() < 0.85:
            return rng.choice(list(model.objects))
        if ever_allocated and rng.random() < 0.8:
            return rng.choice(ever_allocated)  # often stale by now
        return rng.randrange(1, 1 << 40)

    def any_owner() -> int:
        roll = rng.random()
        if roll < 0.03:
            return NESTED
        if roll < 0.10 and model.dead:
            return rng.choice(sorted(model.dead))
        return rng.choice(domains)

    for step in range(20_000):
        op = rng.choices(
            ["alloc", "box", "free", "free_if_live", "move", "move_bulk", "borrow",
             "unborrow", "attach", "detach", "garbage", "crash"],
            weights=[20, 6, 8, 4, 12, 3, 6, 6, 10, 6, 3, 1],
        )[0]  # fmt: skip
        if op in ("alloc", "box"):
            owner = any_owner()
            size = rng.choices([rng.randint(1, 512), rng.randint(1, 70_000), 0], [8, 2, 1])[0]
            child_offset = rng.choice([0, 8, 16])
            if op == "box":
                size = child_offset + 8 * rng.randint(1, 6)
            rc = core.OK
            if owner == NESTED or size == 0:
                rc = core.EINVAL
            elif owner in model.dead:
                rc = core.EDEAD
            try:
                if op == "box":
                    oid, _ = heap.alloc_container(size, 1, owner, child_offset)
                else:
                    oid, _ = heap.alloc(size, 0, owner)
            except HeapError as exc:
                assert type(exc) is core._ERRORS[rc][0], (step, op, rc, exc)
            else:
                assert rc == core.OK, (step, op, rc)
                slots = [0] * ((size - child_offset) // 8) if op == "box" else []
                model.objects[oid] = ModelObject(size, owner, op == "box", slots, child_offset)
                ever_allocated.append(oid)
        elif op in ("free", "free_if_live"):
            oid = any_id()
            obj = model.live(oid)
            quiet = op == "free_if_live"
            if obj is None:
                rc = core.OK if quiet else core.ESTALE
            elif obj.owner == NESTED:
                rc = core.OK if quiet else core.ENESTED
            elif obj.borrows:
                rc = core.OK if quiet else core.EBORROWED
                if quiet:
                    obj.free_pending = True
            else:
                rc = core.OK
                model.free_tree(oid, reclaimed=False)
            expect(rc, heap.free_if_live if quiet else heap.free, oid)
        elif op == "move":
            oid, src, dst = any_id(), any_owner(), any_owner()
            obj = model.live(oid)
            if obj is not None and rng.random() < 0.7:
                src = obj.owner
            rc = model.destination(dst) or model.movable(oid, src)
            if expect(rc, heap.move, oid, src, dst):
                model.objects[oid].owner = dst
        elif op == "move_bulk":
            src, dst = rng.choice(domains), any_owner()
            batch = [o for o, v in model.objects.items() if v.owner == src][:8]
            if batch and rng.random() < 0.3:
                batch.insert(rng.randrange(len(batch)), any_id())
            rc = model.destination(dst)
            seen: set[int] = set()
            for oid in batch:
                if rc:
                    break
                rc = core.EINVAL if oid in seen else model.movable(oid, src)
                seen.add(oid)
            if expect(rc, heap.move_bulk, np.array(batch, dtype=np.uint64), src, dst):
                for oid in batch:
                    model.objects[oid].owner = dst
        elif op == "borrow":
            oid = any_id()
            obj = model.live(oid)
            owner = obj.owner if obj is not None and rng.random() < 0.8 else any_owner()
            if obj is None or obj.free_pending:
                rc = core.ESTALE
            elif obj.owner == NESTED:
                rc = core.ENESTED
            elif obj.owner != owner:
                rc = core.ENOTOWNER
            elif obj.orphaned or owner in model.dead:
                rc = core.EDEAD
            else:
                rc = core.OK
            if expect(rc, heap.borrow, oid, owner):
                model.objects[oid].borrows += 1
        elif op == "unborrow":
            borrowed = [o for o, v in model.objects.items() if v.borrows]
            oid = rng.choice(borrowed) if borrowed and rng.random() < 0.9 else any_id()
            obj = model.live(oid)
            rc = core.ESTALE if obj is None else core.OK if obj.borrows else core.EINVAL
            if expect(rc, heap.unborrow, oid):
                assert obj is not None
                obj.borrows -= 1
                if obj.borrows == 0 and (obj.orphaned or obj.owner in model.dead):
                    model.free_tree(oid, reclaimed=True)
                elif obj.borrows == 0 and obj.free_pending:
                    model.free_tree(oid, reclaimed=False)
        elif op == "attach":
            boxes = [o for o, v in model.objects.items() if v.container]
            cid = rng.choice(boxes) if boxes and rng.random() < 0.9 else any_id()
            child = any_id()
            box = model.live(cid)
            src = box.owner if box is not None and rng.random() < 0.8 else any_owner()
            obj = model.live(child)
            if obj is not None and rng.random() < 0.5:
                src = obj.owner
            rc = model.destination(src) or model.container_check(cid, src)
            if not rc:
                rc = core.EINVAL if child == cid else model.movable(child, src)
            if rc == core.OK and 0 not in model.objects[cid].slots:
                continue  # no room to record the child: skip the operation
            if expect(rc, heap.attach, cid, child, src):
                box = model.objects[cid]
                index = box.slots.index(0)
                box.slots[index] = child
                slots_of(heap, cid)[index] = child
                model.objects[child].owner = NESTED
                model.objects[child].parent = cid
        elif op == "detach":
            nested = [o for o, v in model.objects.items() if v.parent]
            child = rng.choice(nested) if nested and rng.random() < 0.9 else any_id()
            obj = model.live(child)
            cid = obj.parent if obj is not None and obj.parent else any_id()
            box = model.live(cid)
            dst = box.owner if box is not None and rng.random() < 0.85 else any_owner()
            rc = model.destination(dst) or model.container_check(cid, dst)
            if not rc:
                if obj is None:
                    rc = core.ESTALE
                elif obj.owner != NESTED or obj.parent != cid:
                    rc = core.ENESTED
            if expect(rc, heap.detach, cid, child, dst):
                box = model.objects[cid]
                index = box.slots.index(child)
                box.slots[index] = 0
                slots_of(heap, cid)[index] = 0
                model.objects[child].owner = dst
                model.objects[child].parent = 0
        elif op == "garbage":
            boxes = [o for o, v in model.objects.items() if v.container and 0 in v.slots]
            if boxes:
                cid = rng.choice(boxes)
                box = model.objects[cid]
                index = box.slots.index(0)
                value = any_id()
                box.slots[index] = value if value not in model.objects else 0
                slots_of(heap, cid)[index] = box.slots[index]
        elif op == "crash":
            victim = rng.choice(domains[1:])
            domains.remove(victim)
            domains.append(next_domain)
            next_domain += 1
            heap.kill_domain(victim)
            model.dead.add(victim)
            before = list(model.reclaimed)
            deferred = 0
            for oid in [o for o, v in model.objects.items() if v.owner == victim]:
                if oid not in model.objects:
                    continue
                if model.objects[oid].borrows:
                    model.objects[oid].orphaned = True
                    deferred += 1
                else:
                    model.free_tree(oid, reclaimed=True)
            expected = (model.reclaimed[0] - before[0], model.reclaimed[1] - before[1], deferred)
            assert heap.reclaim(victim) == expected
        stats = heap.stats()
        assert (stats.live_objects, stats.live_bytes) == model.counts(), (step, op)
        if step % 1000 == 999:
            pending = sum(1 for o in model.objects.values() if o.orphaned or o.free_pending)
            assert stats.pending_objects == pending
            assert (stats.reclaimed_objects, stats.reclaimed_bytes) == tuple(model.reclaimed)
            for owner in {NESTED, *domains, *model.dead}:
                mine = [o for o in model.objects.values() if o.owner == owner]
                assert heap.domain_stats(owner) == (len(mine), sum(o.size for o in mine))
            table = {e.id: (e.owner, e.parent, e.borrows, e.size) for e in heap.entries()}
            assert table == {
                oid: (o.owner, o.parent, o.borrows, o.size) for oid, o in model.objects.items()
            }
    assert heap.stats().total_allocs > 3000


