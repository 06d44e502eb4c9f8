"""The TCP layer: demultiplexing segments to connections and listeners (RFC 9293 3.10.7).

Interface (used by the Stack and the socket layer):
* `input(src, dst, body, now)`: validate (tcp_segment.parse) and deliver one segment:
  to its connection, else to a listener on the port (a SYN opens a connection in
  SYN-RECEIVED if the listener's backlog has room, else it is dropped and counted,
  as Linux does: the client retransmits its SYN), else a RST as 3.10.7.1 says.
* `listen(port, backlog)` / `unlisten(listener)`; `connect(ip, port, now)`.
* `tick(now)`: every connection's timers; `flush_acks()`: delayed ACKs no data carried;
  `retransmit_now(now)`: after the driver lost frames, retransmit at once.
* `connections`: (remote ip, remote port, local port) -> Connection, every live TCB
  (TIME-WAIT included); a closed connection leaves it at once (`forget`).

Listeners: `Listener.pending` holds connections in SYN-RECEIVED, `Listener.ready` the
established ones waiting for accept(); both count against the backlog. ISS: a random
32-bit number per connection (RFC 9293 3.4.1 permits any unpredictable choice; RFC
6528's hash would need a clock and a secret, which add nothing in a lab).

Output goes through `emit_ip(dst, protocol, segment)`, the Stack's IP output. No lock:
the Stack serializes.
"""

import random

from .ipv4 import PROTO_TCP
from .tcp_conn import Connection
from .tcp_segment import ACK, RST, SYN, add, build, parse

EPHEMERAL_FIRST, EPHEMERAL_LAST = 49152, 65535


class Listener:
    def __init__(self, port: int, backlog: int) -> None:
        self.port = port
        self.backlog = backlog
        self.pending = set()
        self.ready = []
        self.open = True


class TcpOptions:
    """Per-stack TCP settings (tests shrink them)."""

    def __init__(self, rcv_buffer: int = 65535, snd_buffer: int = 262144,
                 time_wait: float = 60.0, keepalive_interval: float = 75.0,
                 keepalive_probes: int = 9) -> None:
        self.rcv_buffer = rcv_buffer
        self.snd_buffer = snd_buffer
        self.time_wait = time_wait  # 2 * MSL (RFC 9293 3.4.2 suggests MSL = 2 minutes)
        self.keepalive_interval = keepalive_interval
        self.keepalive_probes = keepalive_probes


class Tcp:
    def __init__(self, ip: bytes, emit_ip, counters, options: TcpOptions, seed=None) -> None:
        self.ip = ip
        self.emit_ip = emit_ip
        self.counters = counters
        self.options = options
        self.random = random.Random(seed)
        self.connections = {}
        self.listeners = {}
        self.ack_due = set()
        self.next_ephemeral = EPHEMERAL_FIRST + self.random.randrange(1000)

    # -- output ------------------------------------------------------------------------
    def emit(self, conn, flags: int, seq: int, ack: int, window: int, data: bytes, mss: int) -> None:
        segment = build(self.ip, conn.remote_ip, conn.local_port, conn.remote_port, seq, ack,
                        flags, window, data, mss)
        self.counters.add("tcp_out")
        self.emit_ip(conn.remote_ip, PROTO_TCP, segment)

    def reset_for(self, src: bytes, seg) -> None:
        """3.10.7.1: the RST answering a segment that has no connection."""
        if seg.flags & RST:
            return
        self.counters.add("tcp_resets_sent")
        if seg.flags & ACK:
            segment = build(self.ip, src, seg.dport, seg.sport, seg.ack, 0, RST, 0)
        else:
            segment = build(self.ip, src, seg.dport, seg.sport, 0, add(seg.seq, seg.length),
                            RST | ACK, 0)
        self.emit_ip(src, PROTO_TCP, segment)

    # -- input -------------------------------------------------------------------------
    def input(self, src: bytes, dst: bytes, body: bytes, now: float) -> None:
        seg = parse(src, dst, body, self.counters)
        if seg is None:
            return
        if dst != self.ip:
            self.counters.drop("tcp_broadcast")
            return
        conn = self.connections.get((src, seg.sport, seg.dport))
        if conn is not None:
            conn.arrive(seg, now)
            if conn.ack_due:
                self.ack_due.add(conn)
            return
        listener = self.listeners.get(seg.dport)
        if listener is None:
            self.counters.drop("tcp_no_connection")
            self.reset_for(src, seg)
            return
        # 3.10.7.2: LISTEN
        if seg.flags & RST:
            self.counters.drop("tcp_rst_to_listener")
            return
        if seg.flags & ACK:
            self.counters.drop("tcp_ack_to_listener")
            self.reset_for(src, seg)
            return
        if not seg.flags & SYN:
            self.counters.drop("tcp_no_syn_to_listener")
            return
        if len(listener.pending) + len(listener.ready) >= listener.backlog:
            self.counters.drop("tcp_backlog_full")
            return
        conn = Connection(self, self.ip, seg.dport, src, seg.sport,
                          self.random.getrandbits(32), self.options)
        conn.listener = listener
        listener.pending.add(conn)
        self.connections[conn.key] = conn
        self.counters.add("tcp_passive_opens")
        conn.open_passive(seg, now)

    def established(self, conn) -> None:
        """A passive connection reached ESTABLISHED: it waits for accept()."""
        listener = conn.listener
        if listener is None:
            return
        listener.pending.discard(conn)
        if listener.open:
            listener.ready.append(conn)
        else:
            conn.abort()

    def forget(self, conn) -> None:
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        self.ack_due.discard(conn)
        listener = conn.listener
        if listener is not None:
            listener.pending.discard(conn)
            if conn in listener.ready:
                listener.ready.remove(conn)
            conn.listener = None

    # -- user calls -----------------------------------------------------------------------
    def listen(self, port: int, backlog: int) -> Listener:
        listener = Listener(port, max(1, min(backlog, 4096)))
        self.listeners[port] = listener
        return listener

    def unlisten(self, listener: Listener) -> None:
        listener.open = False
        if self.listeners.get(listener.port) is listener:
            del self.listeners[listener.port]
        for conn in list(listener.pending) + list(listener.ready):
            conn.abort()  # not accepted: the client sees RST, as on Linux

    def port_in_use(self, port: int) -> bool:
        if port in self.listeners:
            return True
        return any(key[2] == port for key in self.connections)

    def ephemeral_port(self) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        for _ in range(span):
            port = self.next_ephemeral
            self.next_ephemeral = EPHEMERAL_FIRST + (port + 1 - EPHEMERAL_FIRST) % span
            if not self.port_in_use(port):
                return port
        return 0

    def connect(self, ip: bytes, port: int, local_port: int, now: float):
        conn = Connection(self, self.ip, local_port, ip, port, self.random.getrandbits(32),
                          self.options)
        if conn.key in self.connections:
            return None
        self.connections[conn.key] = conn
        self.counters.add("tcp_active_opens")
        conn.open_active(now)
        return conn

    # -- timers ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        for conn in list(self.connections.values()):
            conn.tick(now)
            if conn.ack_due:
                self.ack_due.add(conn)

    def retransmit_now(self, now: float) -> None:
        """The link lost frames (a driver restart): every connection with data or a
        SYN/FIN in flight retransmits at the next tick instead of after its RTO (the
        domain runs that tick at once).

        Frames the peer sent are lost too if they sat in the receive ring; the peer
        resends them after its own timer. (Duplicate ACKs do not hurry it: a request is
        a lone segment in flight, and a Reno peer cannot count dupacks for one; Linux's
        tail-loss probe then waits about 200 ms.)"""
        for conn in self.connections.values():
            if conn.rtx_at is not None:
                conn.rtx_at = now

    def flush_acks(self) -> None:
        if not self.ack_due:
            return
        due, self.ack_due = self.ack_due, set()
        for conn in due:
            conn.flush_ack()

    def states(self) -> dict:
        counts = {}
        for conn in self.connections.values():
            counts[conn.state] = counts.get(conn.state, 0) + 1
        return counts

