"""Net: the network-device interface (RedLeaf's `Net`), the `Packet` buffer, client helpers.

A `Packet` is one 2048-byte shared-heap object (half a page: a pool of them wastes no
arena space, and the heap's 64-byte block alignment keeps `data` cache-line aligned):
a 64-byte header, then `data` (1984 bytes, room for any standard Ethernet frame of at
most 1514 bytes without FCS; the NIC is told 2 KiB buffers, which is safe because
jumbo frames are off and it drops longer frames):

    len    u32  at 0    frame length in bytes (set by the driver on RX, by the app for TX)
    flags  u32  at 4    free for the application
    head   u64  at 64   the first 8 frame bytes, as one number (aliases data[0:8]),
                        so an app can touch a whole batch with one call (RRefDeque.add)
    data   u8[1984] at 64
    frame64 u8[64] at 64    the first 64 frame bytes (aliases data[0:64]): Ethernet, IPv4
                        and UDP headers of a whole batch in one RRefDeque.get/set

Ownership (as in RedLeaf, zero copy): packet buffers belong to the application's
pool. `submit_and_poll(packets, collect, tx)` moves two deques into the driver
(one registry move each) and back:

* tx=False (receive): packets received so far (at most as many as `collect` has
  room for; a driver may keep some for the next call) are appended to `collect`
  with `len` set; then the buffers in `packets` are lent to the NIC's RX ring (as
  many as it has free descriptors; the rest stay in `packets`). Returns
  (received, packets, collect).
* tx=True (transmit): the frames in `packets` go onto the TX ring (as many as it
  has room for; the rest stay in `packets`); buffers whose transmission finished
  are appended to `collect` for reuse. Returns (queued, packets, collect).

Between calls the driver holds the buffers sitting on its rings; `buffers_held()`
says how many. A crash of the driver frees them (the kernel reclaims the driver's
heap) and every buffer in a deque it was handed: those packets are dropped. The
recovery rule registered below lets a shadow retry the call with fresh, empty
deques (no per-call copy of packets: a packet is not worth a copy, unlike a
block write); `PacketPool.reconcile` then counts the lost buffers as dropped and
replaces them, so the pool stays whole and nothing leaks. (A lost buffer is a dropped
packet if it held one; empty RX buffers are counted too: the count is an upper bound.)

Client helpers (used by the apps, the benchmark and the live workload; they run in the
calling domain): `PacketPool` (free list and census), `touch` (change one byte of every
packet of a deque with one call), `Forwarder` (ixy-fwd's loop).

Errors: a frame length outside MIN_FRAME..MAX_FRAME in a TX batch is the caller's bug;
the driver reports it as `InvalidRequest` (an error value: it crosses the proxy,
the driver keeps running) before any descriptor changes.

Concurrency contract: a Net driver keeps no lock, and a shadow does not serialize
calls. At most one thread at a time may receive (`submit_and_poll(tx=False)`) and at
most one may transmit (`tx=True`): ixgbe's RX ring and TX ring share no state, so one
receiving and one transmitting thread may run at once, but two threads on one ring
would corrupt its software tail. `stats()` must not be called by two threads at once
(ixgbe sums clear-on-read counters without a lock); `link_status`, `mac_address`,
`buffers_held` and `promiscuous` only read or set a register. nullnet holds no ring and
would tolerate more, but callers code to the contract. A `NetApp` (fwd, pktgen) is
driven by one thread at a time; `PacketPool` belongs to one thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import RpcError
from ..heap import Layout, RRef, RRefDeque
from ..idl import Interface

PACKET_SIZE = 2048
HEADROOM = 64  # the header; data starts here (cache-line aligned)
DATA_BYTES = PACKET_SIZE - HEADROOM  # 1984
MAX_FRAME = 1514  # largest frame without FCS (jumbo frames are off: HLREG0.JUMBOEN = 0)
FRAME64 = 64  # the `frame64` field: a batch's headers read or written with one call
MIN_FRAME = 14  # an Ethernet header; the NIC pads shorter frames to 60 bytes (HLREG0.TXPADEN)
RING_SLOTS = 512  # the descriptors of one ixgbe ring: what a client keeps buffers for

Packet = Layout.declare("Packet", np.dtype({
    "names": ["len", "flags", "head", "data", "frame64"],
    "formats": ["<u4", "<u4", "<u8", (np.uint8, (DATA_BYTES,)), (np.uint8, (FRAME64,))],
    "offsets": [0, 4, HEADROOM, HEADROOM, HEADROOM],
    "itemsize": PACKET_SIZE,
}))


class Net(Interface):
    def submit_and_poll(
        self, packets: RRefDeque[Packet, 32], collect: RRefDeque[Packet, 32], tx: bool
    ) -> tuple[int, RRefDeque[Packet, 32], RRefDeque[Packet, 32]]:
        """Receive (tx=False) or transmit (tx=True) a batch; see the module docstring."""
        ...

    def stats(self) -> tuple[int, int, int, int, int]:
        """(rx packets, tx packets, rx bytes, tx bytes, rx missed) of this incarnation."""
        ...

    def buffers_held(self) -> tuple[int, int]:
        """Packet buffers the driver holds on its (RX ring, TX ring)."""
        ...

    def link_status(self) -> tuple[bool, int]:
        """(link up, speed in Mb/s; 0 when down)."""
        ...

    def promiscuous(self, on: bool) -> bool:
        """Accept every frame (on) or only ours and broadcasts (off); returns the old mode."""
        ...

    def mac_address(self) -> int:
        """The port's MAC address as a 48-bit number (first byte in the low bits)."""
        ...


class NetApp(Interface):
    """An application domain over a `Net` capability (fwd, pktgen)."""

    def run(self, rounds: int, batch: int) -> tuple[int, int, int]:
        """Run `rounds` rounds of `batch` packets; returns (received, sent, dropped)
        cumulated over the app's life (dropped: buffers lost in driver crashes)."""
        ...


class PacketPool:
    """The application's packet buffers: a free list (an RRefDeque) and a census.

    `population` is how many Packet buffers the pool has created and not freed;
    they are in `free`, in the app's own deques, or lent to a driver. After a driver
    crash, `reconcile(held_by_app, net)` counts the buffers that are nowhere (freed
    by the kernel's reclaim: packets in flight, dropped) and allocates as many new
    ones, so `population` stays at its target. Runs in the calling domain: every
    buffer is owned by it. Not thread safe.
    """

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"a packet pool needs at least one buffer, not {count}")
        self.free = RRefDeque.new(Packet, count)
        self.population = 0
        self.dropped = 0
        self._grow(count)

    def _grow(self, count: int) -> None:
        self.free.push_many([RRef.new(Packet) for _ in range(count)])
        self.population += count

    def __len__(self) -> int:
        return len(self.free)

    def fill(self, dq: RRefDeque, upto: int | None = None) -> int:
        """Move free buffers into `dq` until it holds `upto` (its capacity by default);
        one registry call. Returns how many moved."""
        want = (dq.capacity if upto is None else upto) - len(dq)
        if want <= 0:
            return 0
        return self.free.move_to(dq, want)

    def give_back(self, dq: RRefDeque) -> int:
        """Move every buffer of `dq` back to the free list (one registry call)."""
        return dq.move_to(self.free)

    def reconcile(self, held_by_app: int, net: Any) -> int:
        """Count buffers lost in driver crashes as dropped and replace them; returns how
        many. `held_by_app`: buffers in the caller's own deques (not `free`)."""
        rx_held, tx_held = net.buffers_held()
        lost = self.population - len(self.free) - held_by_app - rx_held - tx_held
        if lost > 0:
            self.population -= lost
            self.dropped += lost
            self._grow(lost)
        return max(lost, 0)


TOUCH = 1 << 48  # adds 1 to the first byte of the source MAC address (frame byte 6)


def touch(dq: RRefDeque) -> None:
    """Change one byte of every packet in `dq` (as ixy-fwd does), where they are: one
    registry call (RRefDeque.add)."""
    dq.add("head", TOUCH)


class Forwarder:
    """ixy-fwd's loop on one port: receive up to `batch` frames, touch one byte of each,
    transmit them back out; buffers freed by TX become the next RX buffers, so in steady
    state nothing goes through the pool. `step()` is one round. After a round that
    received nothing (idle: the generator is slow, or the driver restarted with empty
    rings), the pool is reconciled: buffers lost in a crash are counted and replaced.

    Runs in the calling domain (the app); `net` is a Net proxy, a shadow, or (in the same
    domain) an implementation. Not thread safe.
    """

    def __init__(self, net: Any, batch: int, pool: PacketPool | None = None,
                 touch_bytes: bool = True) -> None:
        if not 1 <= batch <= RING_SLOTS:
            raise ValueError(f"batch must be 1..{RING_SLOTS}, not {batch}")
        self.net = net
        self.batch = batch
        self.touch_bytes = touch_bytes
        self.pool = pool or PacketPool(2 * RING_SLOTS)
        self.free = RRefDeque.new(Packet, 2 * RING_SLOTS)  # never full: TX always returns
        self.got = RRefDeque.new(Packet, batch)
        self.pool.fill(self.free, min(RING_SLOTS, len(self.pool)))
        self.received = self.sent = self.rounds = self.failed_calls = 0

    def step(self) -> int:
        """One round; returns the frames received."""
        net = self.net
        self.rounds += 1
        try:
            n, self.free, self.got = net.submit_and_poll(self.free, self.got, False)
            if n and self.touch_bytes:
                touch(self.got)
            if n or len(self.got):
                sent, self.got, self.free = net.submit_and_poll(self.got, self.free, True)
                self.sent += sent
        except RpcError:  # no shadow, or it gave up: our deques may be gone with the driver
            self.failed_calls += 1
            self._replace_lost_deques()
            raise
        self.received += n
        if n == 0:
            self.reconcile()
        return n

    def run(self, rounds: int) -> int:
        got = 0
        for _ in range(rounds):
            got += self.step()
        return got

    def reconcile(self) -> int:
        """Count and replace buffers lost in driver crashes; refill the RX supply."""
        lost = self.pool.reconcile(len(self.free) + len(self.got), self.net)
        if len(self.free) < self.batch and len(self.pool):
            self.pool.fill(self.free, min(RING_SLOTS, len(self.free) + len(self.pool)))
        return lost

    def _replace_lost_deques(self) -> None:
        from ..idl.shadow import still_owned

        if not still_owned(self.free):
            self.free = RRefDeque.new(Packet, 2 * RING_SLOTS)
        if not still_owned(self.got):
            self.got = RRefDeque.new(Packet, self.batch)

    def release(self) -> None:
        """Give this forwarder's buffers back to the pool."""
        self.pool.give_back(self.free)
        self.pool.give_back(self.got)

    @property
    def dropped(self) -> int:
        return self.pool.dropped


def fresh_deques(args: tuple[Any, ...], kept: Any) -> tuple[Any, ...]:
    """Recovery rule of `Net.submit_and_poll`: a deque the crash took (it was moved into
    the driver and reclaimed with it) is replaced by an empty one of the same element and
    capacity; a deque the caller still owns is reused. Its packets are dropped; the
    caller's pool counts them (PacketPool.reconcile)."""
    from ..idl.shadow import still_owned

    packets, collect, tx = args
    out = []
    for dq in (packets, collect):
        out.append(dq if still_owned(dq) else RRefDeque.new(dq.element, dq.capacity))
    return (out[0], out[1], tx)


def _register_recovery() -> None:
    from ..idl.shadow import MethodRecovery, register_recovery

    # keep=None: the fast path of the shadow does nothing more than the proxy does
    register_recovery(Net, MethodRecovery("submit_and_poll", None, fresh_deques))


_register_recovery()
