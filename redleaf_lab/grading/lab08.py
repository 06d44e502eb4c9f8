"""Lab 8's graded exercises: a C-style open-addressing hash table (FNV-1a, linear probing)
under kvnet's key-value store, and a vectorised batch lookup under Maglev's flow table.
The student's methods go into a table class added to a copy of the domain (the templates
below), the domain's import is pointed at it, and the copy is loaded and driven over the
ixgbe driver on the 82599 model.

Interface:
* `check_cstyle(table_set, table_get, hidden=False)`: `FlatTable.set(self, key, value)`
  and `.get(self, key)` over flat lists `keys`, `values`, `used` and `mask`. The table
  class of the loaded kvnet copy is run against the trusted `CStyleTable` (same operations:
  same statuses, values, and every key in the same slot), then memcached requests injected
  into the NIC model must get the right replies from a 64-slot store. Hidden: a full table
  (FULL, UPDATED, a miss that terminates), probe chains across the end of the table.
* `check_vector(get_many, hidden=False)`: `FlowTable.get_many(self, keys, hashes=None)
  -> (values, found)` over numpy arrays. Compared with the trusted `VectorTable` on random
  batches; then Maglev forwards 64 flows and must find every tracked flow (its misses are
  the new flows only). Hidden: batch sizes 0..4096, full tables, and a line count (under
  sys.settrace): a batch of 4096 keys may not run many more Python lines than one of 16.
Ownership: each check boots its own kernel and model and closes both.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from ..devices.sim_ixgbe import SimIxgbe
from ..errors import RpcError
from ..hashtable.common import FULL, INSERTED, UPDATED, fnv1a64
from ..hashtable.cstyle import CStyleTable
from ..hashtable.vectorised import VectorTable, fnv1a64_array
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import add_file, rewrite_file, student_domain

FLAT_TABLE = '''"""FlatTable: the C-style table of lab 8 (set and get are the student's).

Flat preallocated lists `keys` and `values`, a bytearray `used`, `mask` = capacity - 1;
linear probing from fnv1a64(key) & mask. Contract of redleaf_lab.hashtable.common: set
returns INSERTED, UPDATED or FULL; get the value or None; delete (given) whether the key
was there, with backward shift deletion (no tombstones).
"""

from redleaf_lab.hashtable.common import (
    FNV_OFFSET,
    FNV_PRIME,
    FULL,
    INSERTED,
    MASK64,
    UPDATED,
    check_capacity,
    fnv1a64,
)


class FlatTable:
    def __init__(self, capacity):
        self.mask = check_capacity(capacity) - 1
        self.keys = [0] * capacity
        self.values = [0] * capacity
        self.used = bytearray(capacity)
        self.count = 0

    def __len__(self):
        return self.count

    def set(self, key, value):
        raise NotImplementedError

    def get(self, key):
        raise NotImplementedError

    def delete(self, key):
        mask = self.mask
        slot = fnv1a64(key) & mask
        for _ in range(mask + 1):
            if not self.used[slot]:
                return False
            if self.keys[slot] == key:
                break
            slot = (slot + 1) & mask
        else:
            return False
        self.used[slot] = 0
        self.count -= 1
        gap = slot
        while True:
            slot = (slot + 1) & mask
            if not self.used[slot]:
                return True
            home = fnv1a64(self.keys[slot]) & mask
            if (slot - home) & mask >= (slot - gap) & mask:
                self.keys[gap] = self.keys[slot]
                self.values[gap] = self.values[slot]
                self.used[gap] = 1
                self.used[slot] = 0
                gap = slot
'''

FLOW_TABLE = '''"""FlowTable: Maglev's flow table in lab 8 (get_many is the student's).

numpy arrays `keys`, `values` (uint64) and `used` (bool), `mask` = capacity - 1, linear
probing from fnv1a64(key) & mask. `set_many` (given) stores one key after the other.
"""

import numpy as np

from redleaf_lab.hashtable.common import FULL, INSERTED, UPDATED, check_capacity
from redleaf_lab.hashtable.vectorised import fnv1a64_array

U64 = np.uint64


class FlowTable:
    def __init__(self, capacity):
        self.mask = check_capacity(capacity) - 1
        self.keys = np.zeros(capacity, dtype=U64)
        self.values = np.zeros(capacity, dtype=U64)
        self.used = np.zeros(capacity, dtype=bool)
        self.count = 0

    def __len__(self):
        return self.count

    def get_many(self, keys, hashes=None):
        raise NotImplementedError

    def set_many(self, keys, values, hashes=None):
        keys = np.asarray(keys, dtype=U64)
        values = np.asarray(values, dtype=U64)
        if hashes is None:
            hashes = fnv1a64_array(keys)
        status = np.empty(len(keys), dtype=np.int8)
        mask = self.mask
        for i in range(len(keys)):
            slot = int(hashes[i]) & mask
            status[i] = FULL
            for _ in range(mask + 1):
                if not self.used[slot]:
                    self.used[slot] = True
                    self.keys[slot] = keys[i]
                    self.values[slot] = values[i]
                    self.count += 1
                    status[i] = INSERTED
                    break
                if self.keys[slot] == keys[i]:
                    self.values[slot] = values[i]
                    status[i] = UPDATED
                    break
                slot = (slot + 1) & mask
        return status
'''


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except ExerciseFailed:
        raise
    except Exception as err:
        raise ExerciseFailed(f"{what} raised {panic_text(err)}") from None


# -- exercise 1: the C-style table under kvnet ---------------------------------------------
def _flat_copy(table_set: Any, table_get: Any, folder: Path) -> Path:
    copy = student_domain("kvnet", {}, folder)
    add_file(copy, "flat_table.py", FLAT_TABLE)
    copy = student_domain(copy, {"flat_table.py": {"FlatTable.set": table_set,
                                                   "FlatTable.get": table_get}},
                          folder, name="kvnet_graded")
    rewrite_file(copy, "store.py", "from redleaf_lab.hashtable.cstyle import CStyleTable\n",
                 "from .flat_table import FlatTable as CStyleTable\n")
    return copy


def _layout(table: Any) -> list[tuple[int, int] | None]:
    return [(int(table.keys[i]), int(table.values[i])) if table.used[i] else None
            for i in range(table.mask + 1)]


def _reference_layout(ref: CStyleTable) -> list[tuple[int, int] | None]:
    return [(ref._keys[i], ref._values[i]) if ref._used[i] else None  # trusted checker
            for i in range(ref.capacity)]


def _compare_layout(mine: Any, ref: CStyleTable, after: str) -> None:
    got, want = _layout(mine), _reference_layout(ref)
    for slot, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            key = (b or a or (0, 0))[0]
            home = fnv1a64(key) & (ref.capacity - 1)
            raise ExerciseFailed(
                f"after {after}: slot {slot} holds {_entry(a)}, the C-style table has "
                f"{_entry(b)} there (key {key:#x} has its FNV-1a home in slot {home}; linear "
                "probing stores a new key in the first free slot from its home, wrapping at "
                "the end, and an existing key's value is updated where it is)")
    if len(mine) != len(ref):
        raise ExerciseFailed(f"after {after}: len() is {len(mine)}, {len(ref)} keys are stored "
                             "(count a new key, not an update)")


def _entry(entry: tuple[int, int] | None) -> str:
    return "nothing" if entry is None else f"key {entry[0]:#x} -> {entry[1]}"


def _ops(cls: type, capacity: int, ops: list[tuple[str, int, int]], what: str) -> None:
    mine, ref = cls(capacity), CStyleTable(capacity)
    for n, (op, key, value) in enumerate(ops):
        step = f"op #{n} {op}({key:#x}{', ' + str(value) if op == 'set' else ''}) of {what}"
        if op == "set":
            got, want = _call(step, mine.set, key, value), ref.set(key, value)
            names = {INSERTED: "INSERTED", UPDATED: "UPDATED", FULL: "FULL"}
            if got != want:
                raise ExerciseFailed(f"{step} returned {names.get(got, repr(got))}, expected "
                                     f"{names[want]}")
            _compare_layout(mine, ref, step)
        elif op == "get":
            found, expected = _call(step, mine.get, key), ref.get(key)
            if found != expected:
                raise ExerciseFailed(f"{step} returned {found!r}, expected {expected!r}")
        else:
            got, want = _call(step, mine.delete, key), ref.delete(key)
            _compare_layout(mine, ref, step)


def _random_ops(seed: int, capacity: int, count: int, keyspace: int) -> list[tuple[str, int, int]]:
    rng = np.random.default_rng(seed)
    keys = [int(k) for k in rng.integers(0, 2**64, keyspace, dtype=np.uint64)]
    ops = []
    for i in range(count):
        key = keys[int(rng.integers(0, keyspace))]
        kind = ("set", "set", "get", "get", "delete")[int(rng.integers(0, 5))]
        ops.append((kind, key, i))
    return ops


def _keys_with_home(home: int, mask: int, count: int, start: int = 1) -> list[int]:
    found: list[int] = []
    key = start
    while len(found) < count:
        if fnv1a64(key) & mask == home:
            found.append(key)
        key += 1
    return found


class _KvServer:
    """A kvnet copy over a sink-wire model: memcached requests in, replies out."""

    def __init__(self, kernel: Any, folder: Path, capacity: int) -> None:
        self.kernel = kernel
        self.dev = SimIxgbe(kernel.heap, wire="sink", capture=True, name="kvnic")
        kernel.load("ixgbe", name="kvnic", device=self.dev)
        try:
            self.kv = kernel.load(folder, net=kernel.proxy("kvnic"),
                                  config={"address": (10, 78, 0, 2), "capacity": capacity})
        except Exception as err:
            raise ExerciseFailed(f"the kvnet domain did not start: {panic_text(err)}") from None
        self.name = folder.name
        self.tx = 0
        self.run(1)

    def run(self, rounds: int) -> None:
        try:
            self.kv.run(rounds, 32)
        except RpcError as err:
            raise ExerciseFailed(f"the kvnet domain panicked: {panic_text(err)}") from None

    def request(self, text: bytes) -> bytes:
        body = struct.pack("!HHHH", 1, 0, 1, 0) + text
        udp = struct.pack("!HHHH", 40000, 11211, 8 + len(body), 0) + body
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         bytes([10, 78, 0, 1]), bytes([10, 78, 0, 2]))
        words = sum(struct.unpack("!10H", ip))
        while words >> 16:
            words = (words & 0xFFFF) + (words >> 16)
        ip = ip[:10] + struct.pack("!H", ~words & 0xFFFF) + ip[12:]
        frame = self.dev.mac + bytes([2, 0, 0, 0, 0, 9]) + b"\x08\x00" + ip + udp
        if not self.dev.inject(frame.ljust(60, b"\0")):
            raise AssertionError("internal: the model refused the frame")
        self.run(2)
        sent = self.dev.stats().tx_packets
        fresh, self.tx = sent - self.tx, sent
        if fresh != 1:
            raise ExerciseFailed(f"kvnet answered {text[:40]!r} with {fresh} frames, not one")
        reply = self.dev.captured(1)[0]
        length = struct.unpack("!H", reply[38:40])[0]
        return reply[42 + 8:34 + length]

    def close(self) -> None:
        for name in (self.name, "kvnic"):
            if self.kernel.domain(name).state == "running":
                self.kernel.stop(name)
        self.dev.close()


def _memcached(server: _KvServer, keys: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    store: dict[bytes, bytes] = {}
    names = [f"key:{i}:{int(rng.integers(0, 10**6))}".encode() for i in range(keys)]

    def expect(text: bytes, want: bytes) -> None:
        got = server.request(text)
        if got != want:
            raise ExerciseFailed(f"memcached {text[:60]!r} was answered {got[:80]!r}, expected "
                                 f"{want[:80]!r} ({len(store)} keys stored in a 64-slot table)")

    def get_reply(name: bytes) -> bytes:
        stored = store.get(name)
        return b"END\r\n" if stored is None else \
            b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (name, len(stored), stored)

    for i, name in enumerate(names):
        value = f"v{i}-{name.decode()}".encode()
        expect(b"set %s 0 0 %d\r\n%s\r\n" % (name, len(value), value), b"STORED\r\n")
        store[name] = value
    for name in [*names, b"missing:1", b"missing:2"]:
        expect(b"get %s\r\n" % name, get_reply(name))
    for name in names[::3]:
        expect(b"delete %s\r\n" % name, b"DELETED\r\n")
        del store[name]
    for name in names:
        expect(b"get %s\r\n" % name, get_reply(name))


def check_cstyle(table_set: Callable[..., Any] | str, table_get: Callable[..., Any] | str,
                 hidden: bool = False) -> None:
    """Grade the student's `FlatTable.set` and `.get`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = _flat_copy(table_set, table_get, folder)
        server = _KvServer(kernel, copy, 64)
        try:
            cls = type(kernel.domain(server.name).impl._store._table)  # the copy's class
            _ops(cls, 64, _random_ops(1, 64, 300, 40), "300 random operations")
            if hidden:
                _hidden_cstyle(cls)
            _memcached(server, 40 if hidden else 30, 2)
        finally:
            server.close()


def _hidden_cstyle(cls: type) -> None:
    _ops(cls, 1024, _random_ops(3, 1024, 3000, 900), "3000 random operations, 1024 slots")
    last = _keys_with_home(15, 15, 4)  # home: the last of 16 slots: the chain wraps to 0
    _ops(cls, 16, [("set", k, i) for i, k in enumerate(last)] +
         [("get", k, 0) for k in last] + [("delete", last[1], 0), ("get", last[3], 0)],
         "keys whose home is the last slot")
    fill = [int(k) for k in np.random.default_rng(4).integers(0, 2**64, 17, dtype=np.uint64)]
    _ops(cls, 16, [("set", k, i) for i, k in enumerate(fill)] +
         [("set", fill[5], 99), ("get", fill[16], 0), ("get", fill[3], 0)],
         "a 16-slot table filled up (the 17th key is FULL; a miss must end)")


# -- exercise 2: the vectorised lookup under Maglev -------------------------------------------
def _flow_copy(get_many: Any, folder: Path) -> Path:
    copy = student_domain("maglev", {}, folder, name="maglev_graded")
    add_file(copy, "flow_table.py", FLOW_TABLE)
    copy = student_domain(copy, {"flow_table.py": {"FlowTable.get_many": get_many}}, folder,
                          name="maglev_lab8")
    rewrite_file(copy, "maglev.py", "self._flows = VectorTable(", "self._flows = FlowTable(")
    rewrite_file(copy, "maglev.py", "from .steer import accept, flow_keys, rewrite\n",
                 "from .steer import accept, flow_keys, rewrite\nfrom .flow_table import "
                 "FlowTable\n")
    return copy


def _filled(cls: type, capacity: int, count: int, seed: int) -> tuple[Any, VectorTable,
                                                                     np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**64, count, dtype=np.uint64))
    values = rng.integers(0, 2**63, len(keys), dtype=np.uint64)
    mine, ref = cls(capacity), VectorTable(capacity)
    _call("set_many", mine.set_many, keys, values)
    ref.set_many(keys, values)
    return mine, ref, keys


def _compare_batch(mine: Any, ref: VectorTable, batch: np.ndarray, what: str,
                   with_hashes: bool) -> None:
    hashes = fnv1a64_array(batch) if with_hashes else None
    got = _call(f"get_many of {what}", mine.get_many, batch, hashes)
    if not isinstance(got, tuple) or len(got) != 2:
        raise ExerciseFailed(f"get_many of {what} returned {type(got).__name__}, not "
                             "(values, found)")
    values, found = (np.asarray(x) for x in got)
    want_values, want_found = ref.get_many(batch)
    if values.shape != want_values.shape or found.shape != want_found.shape:
        raise ExerciseFailed(f"get_many of {what}: shapes {values.shape} and {found.shape}, "
                             f"expected {want_values.shape} (one per key)")
    wrong = np.flatnonzero((found.astype(bool) != want_found)
                           | (want_found & (values.astype(np.uint64) != want_values)))
    if len(wrong):
        i = int(wrong[0])
        raise ExerciseFailed(
            f"get_many of {what}: {len(wrong)} keys wrong; key {int(batch[i]):#x} gave "
            f"found={bool(found[i])}, value {int(values[i])}; the table has "
            + (f"it with value {int(want_values[i])}" if want_found[i] else "no such key")
            + f" (home slot {int(fnv1a64_array(batch[i:i + 1])[0]) & mine.mask}: probe from "
            "there, wrapping, until the key or an empty slot)")


def _unit_vector(cls: type, sizes: tuple[int, ...], seeds: range) -> None:
    for seed in seeds:
        for capacity, load in ((256, 0.5), (4096, 0.75)):
            mine, ref, keys = _filled(cls, capacity, int(capacity * load), seed)
            rng = np.random.default_rng(seed + 100)
            for size in sizes:
                hits = rng.choice(keys, size=size)
                misses = rng.integers(0, 2**64, size, dtype=np.uint64)
                batch = np.concatenate([hits, misses])[rng.permutation(2 * size)][:size]
                _compare_batch(mine, ref, batch, f"{size} keys, {capacity} slots "
                               f"{load:.0%} full", with_hashes=bool(seed % 2))


def _lines(fn: Callable[[], Any], folder: Path) -> int:
    """Python lines run by code of the domain copy while fn() runs."""
    prefix = str(folder)
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if not frame.f_code.co_filename.startswith(prefix):
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _hidden_vector(cls: type, folder: Path) -> None:
    _unit_vector(cls, (0, 1, 3, 256, 4096), range(3, 5))
    full, ref, keys = _filled(cls, 64, 64, 9)
    if len(full) != 64:
        raise AssertionError("internal: the full table is not full")  # pragma: no cover
    probe = np.concatenate([keys[:8], np.arange(1, 9, dtype=np.uint64)])
    _compare_batch(full, ref, probe, "a full 64-slot table, 8 of them missing keys", True)
    table, _ref, keys = _filled(cls, 1 << 14, 1 << 13, 11)
    rng = np.random.default_rng(12)
    small, big = rng.choice(keys, 16), rng.choice(keys, 4096)
    few = _lines(lambda: table.get_many(small), folder)
    many = _lines(lambda: table.get_many(big), folder)
    if many > 8 * few + 400:
        raise ExerciseFailed(f"get_many ran {many} Python lines for a batch of 4096 keys and "
                             f"{few} for 16: it loops over the keys in Python. Vectorise: a "
                             "fixed number of numpy operations per probe step, for the whole "
                             "batch at once (the keys still probing)")


class _Maglev:
    def __init__(self, kernel: Any, folder: Path) -> None:
        self.kernel = kernel
        self.dev = SimIxgbe(kernel.heap, wire="generator", flows=64, capture=True,
                            name="nic8")
        kernel.load("ixgbe", name="nic8", device=self.dev)
        backends = [(0x10_00_00_00_00_02 | (i << 40), (10 << 24) | (3 << 16) | (i + 1))
                    for i in range(3)]
        try:
            self.lb = kernel.load(folder, net=kernel.proxy("nic8"),
                                  config={"backends": backends, "table_size": 13,
                                          "flow_slots": 1 << 12})
        except Exception as err:
            raise ExerciseFailed(f"the maglev domain did not start: {panic_text(err)}") from None
        self.name = folder.name

    def call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.lb, method)(*args)
        except RpcError as err:
            raise ExerciseFailed(f"{what}: the maglev domain panicked: {panic_text(err)}") from None

    def close(self) -> None:
        for name in (self.name, "nic8"):
            if self.kernel.domain(name).state == "running":
                self.kernel.stop(name)
        self.dev.close()


def _flows_tracked(lb: _Maglev) -> None:
    lb.call("forwarding", "run", 40, 32)
    received, _sent, _dropped, tracked, misses, _moved = lb.call("stats", "stats")
    if received < 500 or tracked != 64:
        raise ExerciseFailed(f"Maglev forwarded {received} frames of the model's 64 flows, and "
                             f"its flow table holds {tracked} flows, not 64")
    lb.call("forwarding", "run", 20, 32)
    after = lb.call("stats", "stats")
    if after[4] != misses:
        raise ExerciseFailed(f"all 64 flows were in the flow table, yet {after[4] - misses} of "
                             f"the next {after[0] - received} lookups missed: get_many must "
                             "find every stored key (probe from its home slot, wrapping, until "
                             "the key or an empty slot)")
    lb.call("set_backend(3)", "set_backend", 3, 0x10_00_00_00_00_02 | (3 << 40),
            (10 << 24) | (3 << 16) | 4)
    lb.call("forwarding", "run", 20, 32)
    last = lb.call("stats", "stats")
    if last[4] != misses:
        raise ExerciseFailed(f"after a backend was added, {last[4] - misses} lookups of "
                             "tracked flows missed: get_many must find every stored key")


def check_vector(get_many: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `FlowTable.get_many`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = _flow_copy(get_many, folder)
        lb = _Maglev(kernel, copy)
        try:
            cls = type(kernel.domain(lb.name).impl._flows)  # the copy's class
            _unit_vector(cls, (1, 32, 256), range(2))
            _flows_tracked(lb)
            if hidden:
                _hidden_vector(cls, copy)
        finally:
            lb.close()
