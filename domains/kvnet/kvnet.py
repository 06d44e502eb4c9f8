"""kvnet: a memcached-compatible key-value store on raw frames, as a domain over a `Net`
capability (RedLeaf's network-attached store, sashstore); interface
`redleaf_lab.interfaces.kvnet:KVServer`.

`config` (a capability given at load, a dict): address (four ints), port (default
11211), capacity (hash-table slots, a power of two, default 2**16), key_max (default
250, memcached's limit), value_max (default 1024: a reply fits one datagram).

Each round receives up to `batch` frames; each request frame is turned into its reply
in the same buffer (the batch read and written with one call each when every frame is
answered) (frames.py: ARP and UDP; protocol.py: memcached; store.py: the
records on the C-style hash table) and transmitted; other frames go back to the RX
supply. This is per-frame Python (parsing text is), unlike Maglev's per-batch path.

Ownership: the pool, the deques and the store belong to this domain. A driver crash
loses only the frames the driver held (clients retry, as over UDP they must) and no
key: the store is here, not in the driver. A crash of this domain loses the store.
"""

import numpy as np

from redleaf_lab.api import InvalidRequest, RpcError, RRefDeque
from redleaf_lab.interfaces.net import MAX_FRAME, RING_SLOTS, Packet, PacketPool

from .frames import reply_frame
from .protocol import COUNTERS, handle
from .store import Store


class KVNet:
    def __init__(self, ctx, net, config) -> None:
        config = dict(config or {})
        self._ctx = ctx
        self._net = net
        self._ip = bytes(int(x) & 0xFF for x in config.get("address", (10, 78, 0, 2)))
        if len(self._ip) != 4:
            raise ValueError("address must be four numbers")
        self._port = int(config.get("port", 11211))
        number = net.mac_address()  # first byte in the low bits
        self._mac = bytes((number >> (8 * i)) & 0xFF for i in range(6))
        self._store = Store(int(config.get("capacity", 1 << 16)),
                            int(config.get("key_max", 250)), int(config.get("value_max", 1024)))
        self._counters = {name: 0 for name in COUNTERS}
        self._ignored = 0
        self._pool = PacketPool(2 * RING_SLOTS)
        self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)
        self._got = RRefDeque.new(Packet, RING_SLOTS)
        self._replies = RRefDeque.new(Packet, RING_SLOTS)
        self._pool.fill(self._free, RING_SLOTS)
        self._received = self._sent = 0

    def _serve(self, datagram: bytes):
        return handle(datagram, self._store, self._counters)

    def _reply(self, frame: bytes):
        reply, why = reply_frame(frame, self._mac, self._ip, self._port, self._serve)
        if why == "ignored":
            self._ignored += 1
        elif why == "bad":
            self._counters["dropped"] += 1
        return reply if reply is not None and len(reply) <= MAX_FRAME else None

    def _answer(self) -> None:
        """Turn the received batch into replies, in the buffers that brought it: one read
        of every frame and, when every frame got a reply (the common case), one write and
        one move to the TX deque; otherwise the batch is split frame by frame."""
        got = self._got
        lengths = got.get("len")
        data = got.get("data")
        replies = [self._reply(data[i, :int(n)].tobytes()) for i, n in enumerate(lengths)]
        if all(r is not None for r in replies):
            for i, reply in enumerate(replies):
                data[i, :len(reply)] = np.fromiter(reply, dtype=np.uint8, count=len(reply))
                lengths[i] = len(reply)
            got.set("data", data)
            got.set("len", lengths)
            got.move_to(self._replies)
            return
        keep, answered = [], []
        for packet, reply in zip(got.pop_many(), replies, strict=True):
            if reply is None:
                keep.append(packet)
                continue
            view = packet.array()
            view["data"][:len(reply)] = np.fromiter(reply, dtype=np.uint8, count=len(reply))
            view["len"] = len(reply)
            del view
            answered.append(packet)
        self._free.push_many(keep)
        self._replies.push_many(answered)

    def run(self, rounds: int, batch: int) -> tuple:
        if type(rounds) is not int or type(batch) is not int or rounds < 0 \
                or not 1 <= batch <= RING_SLOTS:
            raise InvalidRequest(f"rounds must be >= 0 and batch 1..{RING_SLOTS}")
        if self._got.capacity != batch:  # at most `batch` frames per round
            self._free.push_many(self._got.pop_many())
            self._got = RRefDeque.new(Packet, batch)
        net = self._net
        for _ in range(rounds):
            try:
                n, self._free, self._got = net.submit_and_poll(self._free, self._got, False)
                if n:
                    self._received += n
                    self._answer()
                if len(self._replies):
                    sent, self._replies, self._free = net.submit_and_poll(
                        self._replies, self._free, True)
                    self._sent += sent
            except RpcError:  # no shadow: the deques we had moved in died with the driver
                self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)
                self._got = RRefDeque.new(Packet, batch)
                self._replies = RRefDeque.new(Packet, RING_SLOTS)
                raise
            if n == 0:  # idle: count buffers lost in a driver crash, top the RX supply up
                held = len(self._free) + len(self._got) + len(self._replies)
                self._pool.reconcile(held, net)
                self._pool.fill(self._free, RING_SLOTS)
        return (self._received, self._sent, self._pool.dropped)

    def stats(self) -> tuple:
        c = self._counters
        return (c["gets"], c["sets"], c["deletes"], c["hits"], c["errors"], c["dropped"],
                len(self._store), self._ignored)


def init(ctx, net, config) -> KVNet:
    return KVNet(ctx, net, config)
