"""maglev: the Maglev load balancer (Eisenbud et al., NSDI '16) as a domain over a `Net`
capability; interface `redleaf_lab.interfaces.maglev:Balancer`.

`config` (a capability given at load, a dict): vip (four ints, default 10.2.0.1, the
82599 model generator's destination), backends (a list of (mac, ip) numbers, indices
0..), table_size (a prime, default 65537), flow_slots (power of two, default 2**21,
RedLeaf's flow cache size).

Each round receives up to `batch` frames, steers them (steer.py: flow table, lookup
table, header rewrite, all per batch) and transmits them on the same port. The lookup
table (population.py) is built from the present and healthy backends; it is rebuilt
when a backend is added, removed or changes health (that takes a moment: M log M steps
in Python, ~0.06 s for M = 65537). The flow table keeps a flow on its backend while
that backend is present and healthy; when the flow table is full, new flows are
steered by the lookup table alone (counted as untracked).

Ownership: the packet pool, deques and both tables belong to this domain; a driver
crash loses only the buffers the driver held (the pool replaces them: PacketPool), and
neither table. A crash of this domain loses the flow table (it is rebuilt as flows
arrive; the lookup table is the same for the same backends).
"""

import numpy as np

from redleaf_lab.api import InvalidRequest, RpcError, RRefDeque
from redleaf_lab.hashtable.common import FULL
from redleaf_lab.hashtable.vectorised import VectorTable, fnv1a64_array
from redleaf_lab.interfaces.maglev import MAX_BACKENDS
from redleaf_lab.interfaces.net import RING_SLOTS, Packet, PacketPool

from .population import SMALL_M, check_size, populate, preferences
from .steer import accept, flow_keys, rewrite

DEFAULT_VIP = (10, 2, 0, 1)


def _ip_text(ip: int) -> str:
    return ".".join(str((ip >> s) & 0xFF) for s in (24, 16, 8, 0))


class Maglev:
    def __init__(self, ctx, net, config) -> None:
        config = dict(config or {})
        self._ctx = ctx
        self._net = net
        self._m = check_size(int(config.get("table_size", SMALL_M)))
        self._vip = np.array([int(x) & 0xFF for x in config.get("vip", DEFAULT_VIP)],
                             dtype=np.uint8)
        if len(self._vip) != 4:
            raise ValueError("vip must be four numbers")
        self._flows = VectorTable(int(config.get("flow_slots", 1 << 21)))
        self._macs = np.zeros((MAX_BACKENDS, 6), dtype=np.uint8)
        self._ips = np.zeros((MAX_BACKENDS, 4), dtype=np.uint8)
        self._present = np.zeros(MAX_BACKENDS, dtype=bool)
        self._healthy = np.zeros(MAX_BACKENDS, dtype=bool)
        self._names = {}
        self._lookup = np.full(self._m, -1, dtype=np.int64)
        self._pool = PacketPool(2 * RING_SLOTS)
        self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)
        self._got = RRefDeque.new(Packet, RING_SLOTS)
        self._pool.fill(self._free, RING_SLOTS)
        self._received = self._sent = self._dropped = 0
        self._misses = self._moved = self._untracked = 0
        for index, (mac, ip) in enumerate(config.get("backends", ())):
            self._store_backend(index, mac, ip)
        self._rebuild()

    # -- backends ---------------------------------------------------------------------
    def _check_index(self, index: int) -> int:
        if type(index) is not int or not 0 <= index < MAX_BACKENDS:
            raise InvalidRequest(f"backend index must be 0..{MAX_BACKENDS - 1}, got {index!r}")
        return index

    def _store_backend(self, index: int, mac: int, ip: int) -> None:
        self._check_index(index)
        if type(mac) is not int or not 0 <= mac < 1 << 48 or mac & 1:
            raise InvalidRequest(f"backend MAC must be a 48-bit unicast number, got {mac!r}")
        if type(ip) is not int or not 0 < ip < 1 << 32:
            raise InvalidRequest(f"backend address must be a 32-bit number, got {ip!r}")
        self._macs[index] = [(mac >> (8 * i)) & 0xFF for i in range(6)]
        self._ips[index] = [(ip >> s) & 0xFF for s in (24, 16, 8, 0)]
        self._present[index] = True
        self._healthy[index] = True
        self._names[index] = _ip_text(ip)

    def _rebuild(self) -> int:
        """Repopulate the lookup table from the present, healthy backends; returns how
        many entries changed backend."""
        chosen = [i for i in sorted(self._names) if self._healthy[i]]
        entries = populate([preferences(self._names[i], self._m) for i in chosen], self._m)
        table = np.array([*chosen, -1], dtype=np.int64)[np.array(entries, dtype=np.int64)]
        changed = int(np.count_nonzero(table != self._lookup))
        self._lookup = table
        return changed

    def set_backend(self, index: int, mac: int, ip: int) -> int:
        known = self._names.get(self._check_index(index))
        self._store_backend(index, mac, ip)
        if known != self._names[index]:
            self._rebuild()
        return len(self._names)

    def remove_backend(self, index: int) -> int:
        if self._names.pop(self._check_index(index), None) is None:
            raise InvalidRequest(f"no backend {index}")
        self._present[index] = False
        self._healthy[index] = False
        return self._rebuild()

    def set_health(self, index: int, healthy: bool) -> bool:
        if self._check_index(index) not in self._names:
            raise InvalidRequest(f"no backend {index}")
        before = bool(self._healthy[index])
        self._healthy[index] = bool(healthy)
        if before != bool(healthy):
            self._rebuild()
        return before

    # -- data path --------------------------------------------------------------------
    def _choose(self, keys):
        """The backend of each flow key (-1: none healthy); tracks new flows."""
        hashes = fnv1a64_array(keys)
        values, found = self._flows.get_many(keys, hashes)
        backends = values.astype(np.int64)
        stale = found & ~self._healthy[np.minimum(backends, MAX_BACKENDS - 1)]
        need = ~found | stale
        if need.any():
            fresh = self._lookup[(hashes[need] % np.uint64(self._m)).astype(np.int64)]
            backends[need] = fresh
            self._misses += int(np.count_nonzero(~found))
            self._moved += int(np.count_nonzero(stale))
            usable = fresh >= 0
            if usable.any():
                status = self._flows.set_many(keys[need][usable], fresh[usable].astype(np.uint64),
                                              hashes[need][usable])
                self._untracked += int(np.count_nonzero(status == FULL))
        return backends

    def _steer(self) -> None:
        """Rewrite the received batch in place; frames to drop go back to the RX supply."""
        got = self._got
        hdr = got.get("frame64")
        ok = accept(hdr, got.get("len"), self._vip)
        backends = self._choose(flow_keys(hdr))
        ok &= backends >= 0
        if not ok.all():  # rare: split the batch, one frame at a time
            packets = got.pop_many()
            keep = [p for p, good in zip(packets, ok.tolist(), strict=True) if good]
            drop = [p for p, good in zip(packets, ok.tolist(), strict=True) if not good]
            self._dropped += len(drop)
            self._free.push_many(drop)
            got.push_many(keep)
            hdr, backends = hdr[ok], backends[ok]
            if not len(keep):
                return
        rewrite(hdr, self._macs[backends], self._ips[backends])
        got.set("frame64", hdr)

    def run(self, rounds: int, batch: int) -> tuple:
        if type(rounds) is not int or type(batch) is not int or rounds < 0 \
                or not 1 <= batch <= RING_SLOTS:
            raise InvalidRequest(f"rounds must be >= 0 and batch 1..{RING_SLOTS}")
        if self._got.capacity != batch:
            self._free.push_many(self._got.pop_many())
            self._got = RRefDeque.new(Packet, batch)
        net = self._net
        for _ in range(rounds):
            try:
                n, self._free, self._got = net.submit_and_poll(self._free, self._got, False)
                if n:
                    self._received += n
                    self._steer()
                if len(self._got):
                    sent, self._got, self._free = net.submit_and_poll(
                        self._got, self._free, True)
                    self._sent += sent
            except RpcError:  # no shadow: the deques we had moved in died with the driver
                self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)
                self._got = RRefDeque.new(Packet, batch)
                raise
            if n == 0:  # idle: count buffers lost in a driver crash, top the RX supply up
                self._pool.reconcile(len(self._free) + len(self._got), net)
                self._pool.fill(self._free, RING_SLOTS)
        return (self._received, self._sent, self._dropped + self._pool.dropped)

    def stats(self) -> tuple:
        return (self._received, self._sent, self._dropped + self._pool.dropped,
                len(self._flows), self._misses, self._moved)

    def backend_of(self, src_ip: int, dst_ip: int, src_port: int, dst_port: int) -> int:
        hdr = np.zeros((1, 64), dtype=np.uint8)
        hdr[0, 26:30] = [(src_ip >> s) & 0xFF for s in (24, 16, 8, 0)]
        hdr[0, 30:34] = [(dst_ip >> s) & 0xFF for s in (24, 16, 8, 0)]
        hdr[0, 34:38] = [src_port >> 8, src_port & 0xFF, dst_port >> 8, dst_port & 0xFF]
        keys = flow_keys(hdr)
        hashes = fnv1a64_array(keys)
        values, found = self._flows.get_many(keys, hashes)
        if found[0] and self._healthy[int(values[0])]:
            return int(values[0])
        return int(self._lookup[int(hashes[0] % np.uint64(self._m))])


def init(ctx, net, config) -> Maglev:
    return Maglev(ctx, net, config)
