"""Recovery rules: what a shadow keeps before a call and how it rebuilds the arguments
a crash took (RedLeaf's shadows re-create lost state from what they kept).

Purpose: `MethodRecovery(name, keep, rebuild)` per interface method. `keep(args)` runs
before every call through a shadow; `rebuild(args, kept)` runs after a restart and
returns the arguments for the retry. Generic rules come from the method's types
(`generic_rule`: scalars, capabilities and borrowed RRefs are retried as they are; a
moved `RRef` is copied and re-created; a moved `RRefDeque` is copied element by element;
anything else is `Lost`). `register_recovery` replaces the rule of one method.

Rescue (the batched fast path): copying every request before every call costs as much as
the call. A `Rescue` rule instead records only where the call's requests sit (the two
deques and their ring positions: no copy at all); if the domain crashes, the kernel
calls the shadow before it reclaims the dead domain's heap (`Kernel.add_reclaim_hook`)
and the shadow takes those requests back (`CoreHeap.rescue`: wherever the driver held them, top level or in its
containers). The retry gets new deques holding the same requests in the same order:
nothing is copied, nothing is lost. `BDev.submit_and_poll` uses it. It trusts the
driver not to have rewritten a write request's data before it crashed (the copying
`CopiedDeque` rule does not).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import HeapError
from ..heap.batch import RRefBatch
from ..heap.containers import RRefDeque
from ..heap.layout import Layout
from ..heap.rref import HeapObject, RRef
from ..kernel.context import current_owner_id
from .interface import Interface, MethodSpec


class NotRecoverable(Exception):
    """A moved argument was lost in the crash and no rule can rebuild it."""


def still_owned(value: Any) -> bool:
    """Is `value` a heap handle the calling domain still owns (the call failed before the
    move, or the value came back)?"""
    if not isinstance(value, HeapObject) or value._id == 0:
        return False
    try:
        return value.owner() == current_owner_id()
    except HeapError:
        return False


@dataclass(frozen=True, eq=False)
class DequeCopy:
    """The contents of an RRefDeque (one record per element), taken before a call."""

    element: Layout
    capacity: int
    records: np.ndarray  # shape (n,) of the element's dtype: a private, read-only copy
    zero_fields: tuple[str, ...] = ()

    def restore(self) -> RRefDeque:
        """A new deque (owned by the calling domain) holding new RRefs with the contents."""
        dq = RRefDeque.new(self.element, self.capacity)
        refs = []
        for record in self.records:
            ref = RRef.new(self.element, record)
            if self.zero_fields:
                view = ref.array()
                for name in self.zero_fields:
                    view[name] = 0
                del view
            refs.append(ref)
        dq.push_many(refs)
        return dq


def copy_deque(dq: Any, zero_fields: tuple[str, ...] = ()) -> DequeCopy | None:
    """Copy a deque's contents, read in place (RRefDeque.get: one gather per field, no
    move); None if not a deque."""
    if type(dq) is not RRefDeque:
        return None
    if zero_fields and dq.element.dtype.names:  # e.g. read requests: skip their data
        records = np.zeros(len(dq), dtype=dq.element.dtype)
        for name in dq.element.dtype.names:
            if name not in zero_fields:
                records[name] = dq.get(name)
    else:
        records = dq.get()
    records.flags.writeable = False
    return DequeCopy(dq.element, dq.capacity, records, zero_fields)


class ArgRule:
    """How one argument survives a crash: `keep` before the call, `rebuild` after."""

    keeps = False

    def keep(self, value: Any) -> Any:
        return None

    def rebuild(self, value: Any, kept: Any) -> Any:
        return value


class AsIs(ArgRule):
    """Scalars, capabilities, borrowed RRefs: the caller still has them."""


class FreshRRef(ArgRule):
    """An output buffer: a fresh zeroed RRef of the same layout if it was lost."""

    def rebuild(self, value: Any, kept: Any) -> Any:
        return value if still_owned(value) else RRef.new(value.layout)


class CopiedRRef(ArgRule):
    """An RRef whose contents matter: copied before the call, re-created from the copy."""

    keeps = True

    def keep(self, value: Any) -> Any:
        return value.tobytes() if type(value) is RRef else None

    def rebuild(self, value: Any, kept: Any) -> Any:
        if still_owned(value):
            return value
        if kept is None:
            raise NotRecoverable(f"{value!r} was lost and no copy was kept")
        ref = RRef.new(value.layout)
        ref.write(kept)
        return ref


class CopiedDeque(ArgRule):
    """An RRefDeque: its elements are copied before the call and re-created after."""

    keeps = True

    def __init__(self, zero_fields: tuple[str, ...] = ()) -> None:
        self.zero_fields = zero_fields

    def keep(self, value: Any) -> Any:
        return copy_deque(value, self.zero_fields)

    def rebuild(self, value: Any, kept: Any) -> Any:
        if still_owned(value):
            return value
        if kept is None:
            raise NotRecoverable(f"{value!r} was lost and no copy was kept")
        return kept.restore()


class Lost(ArgRule):
    """A moved value no rule can rebuild: the retry is refused unless it did not move."""

    def __init__(self, where: str) -> None:
        self.where = where

    def rebuild(self, value: Any, kept: Any) -> Any:
        if still_owned(value):
            return value
        raise NotRecoverable(
            f"{self.where} was moved into the crashed domain and the shadow has no rule to "
            "rebuild it (see redleaf_lab.idl.shadow.register_recovery)"
        )


Keep = Callable[[tuple[Any, ...]], Any]
Rebuild = Callable[[tuple[Any, ...], Any], tuple[Any, ...]]


@dataclass(frozen=True)
class MethodRecovery:
    """keep(args) -> kept runs before each call (None: nothing to keep);
    rebuild(args, kept) -> args runs after a restart, before the retry."""

    name: str
    keep: Keep | None
    rebuild: Rebuild
    rescues: bool = False  # keep() returns an InFlight the kernel's reclaim hook rescues
    abandon: Callable[[Any, Any], None] | None = None  # (heap, kept): the call failed for good

    @classmethod
    def from_rules(cls, name: str, rules: tuple[ArgRule, ...]) -> MethodRecovery:
        if all(type(r) is AsIs for r in rules):
            return cls(name, None, _same_args)
        keepers = [i for i, r in enumerate(rules) if r.keeps]
        if len(keepers) == 1:  # the common case: one value to copy, no tuple per call
            index, only = keepers[0], rules[keepers[0]]

            def keep_one(args: tuple[Any, ...]) -> Any:
                return only.keep(args[index])

            def kept_for(kept: Any, i: int) -> Any:
                return kept if i == index else None

            keep: Keep | None = keep_one
        else:

            def keep_all(args: tuple[Any, ...]) -> Any:
                return tuple(r.keep(a) for r, a in zip(rules, args, strict=True))

            def kept_for(kept: Any, i: int) -> Any:
                return None if kept is None else kept[i]

            keep = keep_all if keepers else None

        def rebuild(args: tuple[Any, ...], kept: Any) -> tuple[Any, ...]:
            return tuple(rule.rebuild(value, kept_for(kept, i))
                         for i, (rule, value) in enumerate(zip(rules, args, strict=True)))

        return cls(name, keep, rebuild)


def _same_args(args: tuple[Any, ...], kept: Any) -> tuple[Any, ...]:
    return args


def generic_rule(iface: type[Interface], method: MethodSpec, index: int) -> ArgRule:
    """The default rule for parameter `index` of `method`, from its TypeSpec."""
    param = method.params[index]
    spec = param.spec
    if not spec.moves:
        return AsIs()
    if spec.kind == "move" and spec.py_type is RRef:
        return CopiedRRef()
    if spec.kind == "move" and spec.py_type is RRefDeque:
        return CopiedDeque()
    return Lost(f"{iface.__name__}.{method.name}({param.name}: {spec.text})")


_RECOVERY: dict[tuple[type[Interface], str], MethodRecovery] = {}


def register_recovery(iface: type[Interface], recovery: MethodRecovery) -> None:
    """Use `recovery` for `iface.<recovery.name>` in shadows made from now on."""
    if recovery.name not in iface.__methods__:
        raise ValueError(f"{iface.__name__} has no method {recovery.name!r}")
    _RECOVERY[(iface, recovery.name)] = recovery


def recovery_for(iface: type[Interface], method: MethodSpec) -> MethodRecovery:
    """The registered recovery (searching base interfaces) or the generic one."""
    for base in iface.__mro__:
        found = _RECOVERY.get((base, method.name))
        if found is not None:
            return found
    rules = tuple(generic_rule(iface, method, i) for i in range(len(method.params)))
    return MethodRecovery.from_rules(method.name, rules)


# -- rescue ------------------------------------------------------------------------------
# What a Rescue rule keeps per call, built on every call so it copies nothing: [caller
# owner id, request deque, its head, its length, completion deque, head, length, None],
# the deques as weak references (a record outlives its call: it must not keep the
# caller's requests alive). The deques' rings still hold those ids after the driver takes
# them (csrc/deque.c leaves taken slots as they are), so the ids are read only if the call
# crashes; the last item then caches them (request ids, completion ids).
InFlight = list[Any]
_NO_IDS = np.zeros(0, dtype=np.uint64)
_weak = weakref.ref


def ring_ids(dq: RRefDeque | None, head: int, length: int) -> np.ndarray:
    """The ids in ring slots head .. head + length - 1 of `dq` (a copy); none if the deque
    handle is gone (its call ended long ago)."""
    if not length or dq is None:
        return _NO_IDS
    return dq._slots[dq._ring(head, length)].copy()


def call_ids(kept: InFlight) -> tuple[np.ndarray, np.ndarray]:
    """The request and completion ids of a recorded call (read once, then cached)."""
    if kept[7] is None:
        kept[7] = (ring_ids(kept[1](), kept[2], kept[3]),
                   ring_ids(kept[4](), kept[5], kept[6]))
    ids: tuple[np.ndarray, np.ndarray] = kept[7]
    return ids


def adopt(heap: Any, element: Layout, capacity: int, ids: np.ndarray, owner: int) -> RRefDeque:
    """A new deque holding the rescued objects `ids` (top-level objects of `owner`, no
    handles) in order; NotRecoverable if any of them did not come back."""
    for obj_id in ids.tolist():
        try:
            if heap.owner(obj_id) == owner and heap.lookup(obj_id).type_id == element.type_id:
                continue
        except HeapError:
            pass
        raise NotRecoverable(f"request 0x{obj_id:x} was lost in the crash (the driver freed "
                             "or kept it where the shadow could not take it back)")
    dq = RRefDeque.new(element, capacity)
    if len(ids):
        dq.put_batch(RRefBatch(heap, ids, element, owner))  # a drop token until it is in
    return dq


class Rescue:
    """The rule for a method with a deque of requests (at `requests`) and a deque of
    completions (at `completions`): see "Rescue" in the module docstring."""

    def __init__(self, name: str, requests: int, completions: int) -> None:
        self.name = name
        self.requests = requests
        self.completions = completions

    def keep(self, args: tuple[Any, ...]) -> InFlight | None:
        submit, collect = args[self.requests], args[self.completions]
        if type(submit) is not RRefDeque or type(collect) is not RRefDeque:
            return None  # a bad argument: the proxy refuses the call
        s_head, s_len = submit._header.tolist()
        c_head, c_len = collect._header.tolist()
        return [current_owner_id(), _weak(submit), s_head, s_len, _weak(collect), c_head, c_len,
                None]

    def rebuild(self, args: tuple[Any, ...], kept: InFlight | None) -> tuple[Any, ...]:
        if kept is None:
            raise NotRecoverable("the call's deques could not be recorded")
        owner = kept[0]
        submit_ids, collect_ids = call_ids(kept)
        rebuilt = list(args)
        for i, ids in ((self.requests, submit_ids), (self.completions, collect_ids)):
            old = args[i]  # the caller's handle: the call still holds it
            if not still_owned(old):  # moved into the crashed domain: rescued requests
                rebuilt[i] = adopt(old._heap, old._element, old._capacity, ids, owner)
        return tuple(rebuilt)

    @staticmethod
    def abandon(heap: Any, kept: InFlight) -> None:
        """Free the rescued requests of a call that failed for good: they are top-level
        objects of the caller with no handle (requests still in a deque are skipped)."""
        if kept[7] is not None:
            heap.free_owned_bulk(np.concatenate(kept[7]), kept[0])

    def recovery(self) -> MethodRecovery:
        return MethodRecovery(self.name, self.keep, self.rebuild, rescues=True,
                              abandon=self.abandon)


def rescue_in_flight(heap: Any, dead: int, in_flight: list[InFlight]) -> int:
    """Before `dead` is reclaimed: take back the requests of every interrupted call (only
    objects of the requests' type that `dead` holds: a stale slot cannot pull in others)."""
    rescued = 0
    for kept in in_flight:
        submit_ids, collect_ids = call_ids(kept)
        try:
            deque = kept[1]()
            if deque is None:  # the call ended: its requests are back with the caller
                continue
            rescued += heap.rescue(np.concatenate((submit_ids, collect_ids)), dead, kept[0],
                                   deque._element.type_id)
        except HeapError:  # the caller died too: its requests go with it
            pass
    return rescued
