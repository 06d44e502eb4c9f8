"""netstack: the network stack domain: a Stack (stack.py) over a `Net` capability,
offered as the `Socket` interface (redleaf_lab/interfaces/socket.py).

Capabilities: `net` (a Net proxy or shadow: usually the ixgbe driver behind its
shadow), `address` (IPv4 address as four ints), `options` (a tuple of (name, value)
pairs, all optional: prefix 24, gateway None, time_wait 60.0, rcv_buffer 65535,
snd_buffer 262144, seed None, idle_sleep 0.00005, trace False: whether `trace` may
record frames, which every holder of the Socket capability could then read).

The data path is batched as the forwarding loop's (interfaces/net.py): one
`submit_and_poll(tx=False)` receives up to RING_SLOTS frames and lends fresh buffers
to the RX ring; the received packets are read with one registry call (a handle-free
RRefBatch) and each frame's bytes go through the Stack; the frames the Stack produced
are written into free Packets with one registry call and leave in one
`submit_and_poll(tx=True)`; finished TX buffers come back for reuse. Frames produced by
socket calls (send, close, ...) wait for the next pump (a caller's next `poll` or
`pump`), so a server answering many requests per round sends them in one batch; more
than TX_BATCH waiting leave at once. `pump()` is one such round plus the timers (every
10 ms); `poll()` pumps until a descriptor is ready or its timeout passes (sleeping
`idle_sleep` s between empty rounds, up to 32x that after a quiet spell). Packets lost
when the driver crashes are counted and replaced (PacketPool.reconcile), and TCP
retransmits what they carried at once (Tcp.retransmit_now).

Ownership and locking: the Stack, the sockets and every Packet and deque belong to this
domain. One lock (ctx.lock(), unwindable) serializes every call, so any number of
threads may use the sockets; Net is called only under it (one RX and TX caller).
"""

import errno
import struct
import time

import numpy as np

from redleaf_lab.api import BLOCK_SIZE, RRefDeque
from redleaf_lab.interfaces.net import PACKET_SIZE, RING_SLOTS, Packet, PacketPool
from redleaf_lab.interfaces.socket import BUF_DATA, BUF_HEADER

from .sockets import Sockets
from .stack import Stack
from .tcp import TcpOptions

HEADROOM = 64
TICK = 0.01
RECONCILE_EVERY = 0.005  # notice a driver crash within ~5 ms
TX_RESERVE = 256  # pool buffers kept for transmission
TRACE_LIMIT = 1024
TRACE_BYTES = 96
TX_BATCH = 128  # frames a call may leave queued for the next pump


class NetStack:
    def __init__(self, ctx, net, address, options) -> None:
        settings = dict(options or ())
        self._ctx = ctx
        self._net = net
        self._lock = ctx.lock()
        number = net.mac_address()
        mac = bytes((number >> (8 * i)) & 0xFF for i in range(6))
        ip = bytes(int(x) & 0xFF for x in address)
        tcp_options = TcpOptions(
            rcv_buffer=int(settings.get("rcv_buffer", 65535)),
            snd_buffer=int(settings.get("snd_buffer", 262144)),
            time_wait=float(settings.get("time_wait", 60.0)))
        gateway = settings.get("gateway")
        self._stack = Stack(mac, ip, int(settings.get("prefix", 24)),
                            bytes(gateway) if gateway else None, tcp_options,
                            settings.get("seed"))
        self._sockets = Sockets(self._stack)
        self._tracing = False
        self._trace_allowed = settings.get("trace") is True
        self._trace = []
        self._idle_sleep = float(settings.get("idle_sleep", 0.00005))
        self._idle_rounds = 0
        self._pool = PacketPool(2 * RING_SLOTS)
        self._free = RRefDeque.new(Packet, 2 * RING_SLOTS)
        self._got = RRefDeque.new(Packet, RING_SLOTS)
        self._tx = RRefDeque.new(Packet, RING_SLOTS)
        self._done = RRefDeque.new(Packet, 2 * RING_SLOTS)
        self._pool.fill(self._free, RING_SLOTS)
        now = time.monotonic()
        self._next_tick = now + TICK
        self._next_reconcile = now + RECONCILE_EVERY
        with self._lock:
            self._stack.start(now)
            self._pump()

    # -- the data path ------------------------------------------------------------------
    def _pump(self) -> int:
        stack = self._stack
        net = self._net
        now = time.monotonic()
        stack.flush_acks()
        n, self._free, self._got = net.submit_and_poll(self._free, self._got, False)
        if len(self._got):
            # one handle-free batch: one registry call reads every packet, one gives them
            # back to the RX supply (no RRef handle per packet)
            batch = self._got.take_batch()
            count = len(batch)
            records = batch.get(None).tobytes()
            self._free.put_batch(batch)
            tracing = self._tracing
            for base in range(0, count * PACKET_SIZE, PACKET_SIZE):
                length = records[base] | (records[base + 1] << 8)
                frame = records[base + HEADROOM:base + HEADROOM + length]
                if tracing:
                    self._record(now, 0, frame)
                stack.input(frame, now)
        if now >= self._next_tick:
            self._next_tick = now + TICK
            stack.tick(now)
        self._transmit()
        if now >= self._next_reconcile:
            # busy or idle: under load a crash must be noticed as soon as when idle, or
            # our lost segments wait for their RTO (>= 200 ms)
            self._next_reconcile = now + RECONCILE_EVERY
            held = len(self._free) + len(self._got) + len(self._tx) + len(self._done)
            counts = _Held(net.buffers_held())  # one call serves both uses
            if self._pool.reconcile(held, counts):
                # buffers vanished: the driver crashed and took the frames on its rings.
                # Resend what is unacknowledged now rather than after each RTO (a loss
                # notification from the link layer; the timers back off as for a timeout)
                stack.counters.add("driver_losses")
                stack.tcp.retransmit_now(now)
                stack.tick(now)  # the retransmissions go now, not at the next tick
                self._next_tick = now + TICK
                self._transmit()
            rx_held = counts.held[0]
            want = RING_SLOTS - rx_held - len(self._free)  # top the RX supply up, no more
            spare = len(self._pool.free) - TX_RESERVE
            if want > 0 and spare > 0:
                self._pool.fill(self._free, len(self._free) + min(want, spare))
        return n

    def _transmit(self) -> None:
        stack = self._stack
        if stack.out:
            frames = stack.drain()
            room = min(len(self._pool.free), self._tx.capacity - len(self._tx))
            if len(frames) > room:
                stack.counters.add("drop_tx_no_buffer", len(frames) - room)
                stack.counters.add("dropped", len(frames) - room)
                frames = frames[:room]
            if self._tracing:
                now = time.monotonic()
                for frame in frames:
                    self._record(now, 1, frame)
            if frames:
                block = bytearray(len(frames) * PACKET_SIZE)
                base = 0
                for frame in frames:
                    block[base:base + 4] = len(frame).to_bytes(4, "little")
                    block[base + HEADROOM:base + HEADROOM + len(frame)] = frame
                    base += PACKET_SIZE
                batch = self._pool.free.take_batch(len(frames))
                records = np.array(block, dtype=np.uint8).view(Packet.dtype)  # a copy
                batch.set(None, records)  # one registry call writes every packet
                self._tx.put_batch(batch)
                stack.counters.add("frames_out", len(frames))
        if len(self._tx):
            _sent, self._tx, self._done = self._net.submit_and_poll(self._tx, self._done, True)
        if len(self._done):
            self._pool.give_back(self._done)

    # -- Socket ---------------------------------------------------------------------------
    def _call(self, method, *args):
        with self._lock:
            self._stack.now = time.monotonic()
            result = method(*args)
            if len(self._stack.out) >= TX_BATCH:
                self._transmit()  # else the frames leave in the next pump's TX batch
            return result

    def socket(self, kind):
        return self._call(self._sockets.socket, kind)

    def bind(self, fd, port):
        return self._call(self._sockets.bind, fd, port)

    def listen(self, fd, backlog):
        return self._call(self._sockets.listen, fd, backlog)

    def accept(self, fd):
        return self._call(self._sockets.accept, fd)

    def connect(self, fd, ip, port):
        return self._call(self._sockets.connect, fd, ip, port)

    def send(self, fd, buf):
        data = _payload(buf)
        return self._call(self._sockets.send, fd, data)

    def sendto(self, fd, buf, ip, port):
        data = _payload(buf)
        return self._call(self._sockets.sendto, fd, data, ip, port)

    def recv(self, fd, buf):
        n, data = self._call(self._sockets.recv, fd, BUF_DATA)
        if n > 0:
            buf.write(struct.pack("<II", n, 0) + data)
        return (n, buf)

    def recvfrom(self, fd, buf):
        n, ip, port, data = self._call(self._sockets.recvfrom, fd, BUF_DATA)
        if n >= 0:
            buf.write(struct.pack("<II", n, 0) + data)
        return (n, ip, port, buf)

    def close(self, fd):
        return self._call(self._sockets.close, fd)

    def abort(self, fd):
        return self._call(self._sockets.close, fd, True)

    # Rv6's 4 KiB blocks: the count is an argument, the buffer has no header
    def send_block(self, fd, buf, count):
        if type(count) is not int or not 0 <= count <= BLOCK_SIZE:
            return -errno.EINVAL
        return self._call(self._sockets.send, fd, buf.tobytes()[:count])

    def sendto_block(self, fd, buf, count, ip, port):
        if type(count) is not int or not 0 <= count <= BLOCK_SIZE:
            return -errno.EINVAL
        return self._call(self._sockets.sendto, fd, buf.tobytes()[:count], ip, port)

    def recv_block(self, fd, buf, count):
        if type(count) is not int or not 0 <= count <= BLOCK_SIZE:
            return (-errno.EINVAL, buf)
        n, data = self._call(self._sockets.recv, fd, count)
        if n > 0:
            buf.write(data)
        return (n, buf)

    def recvfrom_block(self, fd, buf, count):
        if type(count) is not int or not 0 <= count <= BLOCK_SIZE:
            return (-errno.EINVAL, 0, 0, buf)
        n, ip, port, data = self._call(self._sockets.recvfrom, fd, count)
        if n > 0:
            buf.write(data)
        return (n, ip, port, buf)

    def setsockopt(self, fd, option, value):
        return self._call(self._sockets.setsockopt, fd, option, value)

    def poll(self, fds, events, timeout_ms):
        if len(fds) != len(events) or len(fds) > 4096:
            return tuple(0x020 for _ in fds)  # POLLNVAL: a malformed request
        deadline = time.monotonic() + max(0, timeout_ms) / 1000.0
        while True:
            with self._lock:
                n = self._pump()
                ready = self._sockets.poll(fds, events)
            if timeout_ms <= 0 or any(ready) or time.monotonic() >= deadline:
                return ready
            if n == 0:
                # back off while nothing arrives (up to 32x idle_sleep): an idle stack
                # does not spin; the first frame after a quiet spell waits at most that.
                # (50 us beat 20 us and 200 us under wrk: the round's sleep is latency)
                self._ctx.sleep(self._idle_sleep * min(32, 1 << min(self._idle_rounds // 64, 5)))
                self._idle_rounds += 1
            else:
                self._idle_rounds = 0

    def _record(self, now: float, direction: int, frame: bytes) -> None:
        trace = self._trace
        trace.append((now, direction, frame[:TRACE_BYTES]))
        if len(trace) > TRACE_LIMIT:
            del trace[0]

    def trace(self, on):
        with self._lock:
            # every holder of this Socket capability could read every connection's
            # frames: only a stack the trusted side loaded with ("trace", True) records
            self._tracing = bool(on) and self._trace_allowed
            frames, self._trace = tuple(self._trace), []
            return frames

    def pump(self, rounds):
        got = 0
        for _ in range(max(0, min(rounds, 1_000_000))):
            with self._lock:
                got += self._pump()
        return got

    def counters(self):
        with self._lock:
            return self._stack.counters.items()

    def census(self):
        with self._lock:
            stack = self._stack
            rows = [("sockets", len(self._sockets.table)),
                    ("tcp_connections", len(stack.tcp.connections)),
                    ("tcp_listeners", len(stack.tcp.listeners)),
                    ("udp_endpoints", len(stack.udp)),
                    ("arp_entries", len(stack.arp.cache)),
                    ("packet_buffers", self._pool.population)]
            rows.extend(("tcp_" + state, count) for state, count in sorted(stack.tcp.states().items()))
            return tuple(rows)


class _Held:
    """A Net's buffers_held() answer, asked once per reconcile."""

    def __init__(self, held) -> None:
        self.held = held

    def buffers_held(self):
        return self.held


def _payload(buf) -> bytes:
    raw = buf.tobytes()
    length = min(struct.unpack_from("<I", raw)[0], BUF_DATA)
    return raw[BUF_HEADER:BUF_HEADER + length]


def init(ctx, net, address, options) -> NetStack:
    return NetStack(ctx, net, address, options)
