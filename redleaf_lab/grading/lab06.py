"""Lab 6's graded exercises: TCP's retransmission timeout (RFC 6298) and IPv4's input
validation (RFC 791, RFC 1122), each spliced into a copy of domains/netstack, loaded over
the ixgbe driver on the 82599 model (a sink wire: the checker injects frames and reads
what the NIC transmitted).

Interface:
* `check_rto(sample, hidden=False)`: the student's `Rto.sample(self, rtt)`. First the
  copy's own Rto class (taken from a live connection of the loaded domain) is fed RTTs and
  compared with RFC 6298 (2.2, 2.3, 2.4); then the domain's Stack runs a connection to a
  peer Stack over a link whose delay changes (virtual time, so every figure is exact), in
  lockstep with the same exchange run by the trusted stack: after every event both
  connections must hold the same srtt, rttvar and RTO. Hidden: the clamps (200 ms, 60 s),
  back-off and its reset, losses (the retransmission times must agree), and a lost
  segment retransmitted through the domain's proxy and the NIC model in real time.
* `check_ipv4(parse, hidden=False)`: the student's `parse(payload, our_ip, broadcast,
  counters)` in ipv4.py. Crafted frames go into the NIC model: an ICMP echo request must be
  answered (Ethernet padding trimmed), and each malformed datagram dropped under its
  counter (read through the domain's `counters()`), with no reply. Hidden: options,
  fragments, the reserved flag, TTL 0, bogus sources, lengths.
Ownership: each check boots its own kernel and model and closes both.
"""

from __future__ import annotations

import heapq
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bench.kv_requests import inet_sum  # the word-loop sum: independent of the domains'
from ..devices.sim_ixgbe import SimIxgbe
from ..domains.netstack.sockets import STREAM, Sockets
from ..domains.netstack.stack import Stack
from ..domains.netstack.tcp import TcpOptions
from ..domains.netstack.tcp_rto import Rto as ReferenceRto
from ..errors import RpcError
from ..heap import RRef
from ..interfaces.socket import SockBuf, fill
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import student_domain

ADDRESS = (10, 66, 0, 2)
PEER_IP = bytes((10, 66, 0, 1))
PEER_MAC = bytes((0x02, 0x52, 0x4C, 0x00, 0x00, 0x09))
PORT = 80
TICK = 0.01
SEND_EVERY, SEND_BYTES = 0.03, 2000


class _Netstack:
    """A netstack copy over an ixgbe driver on a sink-wire model, in one kernel."""

    loads = 0

    def __init__(self, kernel: Any, folder: Path) -> None:
        _Netstack.loads += 1
        self.kernel = kernel
        self.nic = f"nic{_Netstack.loads}"
        self.name = f"netstack{_Netstack.loads}"
        self.dev = SimIxgbe(kernel.heap, wire="sink", capture=True, name=self.nic)
        kernel.load("ixgbe", name=self.nic, device=self.dev)
        try:
            self.stack = kernel.load(folder, name=self.name, net=kernel.proxy(self.nic),
                                     address=ADDRESS, options=(("seed", 3), ("time_wait", 1.0)))
        except Exception as err:
            raise ExerciseFailed(f"the netstack domain did not start: {panic_text(err)}") from None
        self.sent = 0

    @property
    def impl(self) -> Any:
        return self.kernel.domain(self.name).impl  # the trusted checker's view

    def call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.stack, method)(*args)
        except RpcError as err:
            raise ExerciseFailed(f"{what}: the netstack domain panicked: "
                                 f"{panic_text(err)}") from None

    def counters(self) -> dict[str, int]:
        return dict(self.call("counters", "counters"))

    def transmitted(self) -> list[bytes]:
        """Frames the NIC sent since the last call (the model keeps the last 64)."""
        total = self.dev.stats().tx_packets
        fresh, self.sent = total - self.sent, total
        frames = self.dev.captured(64)
        return frames[len(frames) - min(fresh, len(frames)):]

    def close(self) -> None:
        for name in (self.name, self.nic):
            if self.kernel.domain(name).state == "running":
                self.kernel.stop(name)
        self.dev.close()


# -- RTO: the class alone --------------------------------------------------------------
def _state(rto: Any) -> tuple[float, float, float]:
    return (float(rto.srtt), float(rto.rttvar), float(rto.rto))


def _describe(state: tuple[float, float, float]) -> str:
    return f"srtt {state[0] * 1000:.3f} ms, rttvar {state[1] * 1000:.3f} ms, " \
           f"RTO {state[2] * 1000:.3f} ms"


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a, b, strict=True))


def _unit(cls: type, samples: list[float], rule: str) -> None:
    mine, ref = cls(), ReferenceRto()
    for i, rtt in enumerate(samples):
        try:
            mine.sample(rtt)
        except Exception as err:
            raise ExerciseFailed(f"sample({rtt}) raised {panic_text(err)}") from None
        ref.sample(rtt)
        if not _same(_state(mine), _state(ref)):
            history = ", ".join(f"{s * 1000:g} ms" for s in samples[:i + 1])
            raise ExerciseFailed(f"after the RTT samples {history}: yours gives "
                                 f"{_describe(_state(mine))}; RFC 6298 gives "
                                 f"{_describe(_state(ref))} ({rule})")


def _unit_backoff(cls: type) -> None:
    mine, ref = cls(), ReferenceRto()
    for rto in (mine, ref):
        rto.sample(0.3)
        rto.sample(0.5)
        rto.backoff()
        rto.backoff()
        rto.reset_backoff()
    if not _same(_state(mine), _state(ref)):
        raise ExerciseFailed("after samples of 300 and 500 ms, two back-offs and a "
                             f"reset_backoff(): {_describe(_state(mine))}; expected "
                             f"{_describe(_state(ref))}. reset_backoff() returns to "
                             "`self.base`: sample() must set the computed RTO there too")


# -- RTO: a connection in virtual time -------------------------------------------------
def _delay(t: float, phase: str) -> float:
    """One-way delay of the link at virtual time t (it changes, so RTTs vary)."""
    if phase == "lan":
        return 0.0004
    step = int(t * 10)
    return 0.015 + 0.045 * ((step * 7) % 5) + (0.12 if (step // 9) % 2 else 0.0)


def _tcp_fields(frame: bytes) -> tuple[int, int, int] | None:
    """(seq, payload length, flags) of a TCP/IPv4 frame, else None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    total = struct.unpack("!H", frame[16:18])[0]
    doff = (frame[46] >> 4) * 4
    return struct.unpack("!I", frame[38:42])[0], total - 20 - doff, frame[47]


class _Exchange:
    """A client Stack (the domain's, or the trusted one) and a peer Stack on a link with
    delay, run by a discrete-event loop in virtual time."""

    def __init__(self, client: Any, start: float, phase: str, losses: dict[int, int]) -> None:
        self.client = client
        self.peer = Stack(PEER_MAC, PEER_IP, options=TcpOptions(), seed=7)
        self.peer_sockets = Sockets(self.peer)
        self.now = start
        self.start = start
        self.phase = phase
        self.losses = dict(losses)  # n-th new data segment -> how many transmissions to lose
        self.offsets: dict[int, int] = {}  # data offset -> its segment's index
        self.events: list[tuple[float, int, str, bytes]] = []
        self.counter = 0
        self.sent: list[tuple[float, int, int]] = []  # client's data segments (t, offset, len)
        self.received = b""
        self.iss: int | None = None
        self.peer.start(start)

    def _ship(self, now: float) -> None:
        for frame in self.client.drain():
            fields = _tcp_fields(frame)
            if fields is not None:
                seq, length, flags = fields
                if flags & 0x02:
                    self.iss = seq
                elif length and self.iss is not None:
                    offset = (seq - self.iss - 1) & 0xFFFFFFFF
                    self.sent.append((now - self.start, offset, length))
                    index = self.offsets.setdefault(offset, len(self.offsets))
                    if self.losses.get(index, 0) > 0:
                        self.losses[index] -= 1
                        continue
            self._schedule(now, "peer", frame)
        for frame in self.peer.drain():
            self._schedule(now, "client", frame)

    def _schedule(self, now: float, where: str, frame: bytes) -> None:
        self.counter += 1
        heapq.heappush(self.events, (now + _delay(now - self.start, self.phase), self.counter,
                                     where, frame))

    def run(self, until: float, step: Callable[[float], None]) -> None:
        next_tick = self.now + TICK
        while self.now < until:
            if self.events and self.events[0][0] <= next_tick:
                at, _n, where, frame = heapq.heappop(self.events)
                self.now = at
                (self.client if where == "client" else self.peer).input(frame, at)
            else:
                self.now = next_tick
                next_tick += TICK
                self.client.tick(self.now)
                self.peer.tick(self.now)
            self.client.flush_acks()
            self.peer.flush_acks()
            step(self.now)
            self._ship(self.now)


class _Scenario:
    """One connection: the client sends `size` bytes to the peer, which reads them."""

    def __init__(self, client_stack: Any, client_sockets: Any, start: float, phase: str,
                 losses: dict[int, int], size: int) -> None:
        self.stack = client_stack
        self.sockets = client_sockets
        self.x = _Exchange(client_stack, start, phase, losses)
        listener = self.x.peer_sockets.socket(STREAM)
        self.x.peer_sockets.bind(listener, PORT)
        self.x.peer_sockets.listen(listener, 4)
        self.listener = listener
        self.accepted: int | None = None
        self.stack.now = start
        self.fd = client_sockets.socket(STREAM)
        client_sockets.connect(self.fd, int.from_bytes(PEER_IP, "big"), PORT)
        self.data = bytes(range(256)) * (size // 256)
        self.offset = 0
        self.next_send = start
        self.x._ship(start)

    def conn(self) -> Any:
        conns = list(self.stack.tcp.connections.values())
        return conns[0] if conns else None

    def step(self, now: float) -> None:
        self.stack.now = now
        if self.offset < len(self.data) and now >= self.next_send:
            # application-limited: 2000 bytes every 30 ms, so most segments are timed
            self.next_send = now + SEND_EVERY
            n = self.sockets.send(self.fd, self.data[self.offset:self.offset + SEND_BYTES])
            if n > 0:
                self.offset += n
        peer = self.x.peer_sockets
        if self.accepted is None:
            got = peer.accept(self.listener)
            if got[0] >= 0:
                self.accepted = got[0]
        if self.accepted is not None:
            n, data = peer.recv(self.accepted, 65536)
            if n > 0:
                self.x.received += data


def _lockstep(impl: Any, phase: str, losses: dict[int, int], size: int, seconds: float,
              units: Callable[[type], None] | None = None) -> None:
    """The domain's stack and the trusted one, same exchange: compare after each event.
    `units(cls)` first checks the connection's own Rto class alone."""
    start = time.monotonic() + 1000.0  # virtual time, after anything the domain did
    student = _Scenario(impl._stack, impl._sockets, start, phase, losses, size)
    if units is not None:
        units(type(student.conn().rto))
    trusted_stack = Stack(impl._stack.mac, impl._stack.ip, 24, None, TcpOptions(time_wait=1.0), 3)
    trusted = _Scenario(trusted_stack, Sockets(trusted_stack), start, phase, losses, size)
    records: list[tuple[float, float, float] | None] = []

    def record(now: float) -> None:
        trusted.step(now)
        conn = trusted.conn()
        records.append(_state(conn.rto) if conn is not None else None)

    trusted.x.run(start + seconds, record)
    cursor = iter(records)

    def compare(now: float) -> None:
        student.step(now)
        want = next(cursor, None)
        conn = student.conn()
        if want is None or conn is None:
            return
        mine = _state(conn.rto)
        if not _same(mine, want):
            raise ExerciseFailed(
                f"at t = {(now - start) * 1000:.1f} ms of a connection whose RTT varies "
                f"({phase} link): your connection has {_describe(mine)}; RFC 6298 gives "
                f"{_describe(want)}. After the first sample (2.2: SRTT = R, RTTVAR = R/2), "
                "each new R updates RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R| BEFORE SRTT = "
                "7/8 SRTT + 1/8 R (2.3); RTO = SRTT + max(G, 4 RTTVAR), within [200 ms, "
                "60 s] (2.4, our 200 ms minimum)")

    student.x.run(start + seconds, compare)
    if student.x.sent != trusted.x.sent:
        first = next((i for i, (a, b) in enumerate(zip(student.x.sent, trusted.x.sent,
                                                        strict=False)) if a != b),
                     min(len(student.x.sent), len(trusted.x.sent)))
        mine_at = student.x.sent[first] if first < len(student.x.sent) else None
        want_at = trusted.x.sent[first] if first < len(trusted.x.sent) else None
        raise ExerciseFailed(
            f"the connection's segments left at other times: segment #{first} was "
            + (f"data offset {mine_at[1]} at {mine_at[0] * 1000:.1f} ms" if mine_at else
               "never sent")
            + "; RFC 6298 timing sends "
            + (f"data offset {want_at[1]} at {want_at[0] * 1000:.1f} ms" if want_at else
               "nothing more"))
    if student.x.received != trusted.x.received:
        raise ExerciseFailed(f"the peer received {len(student.x.received)} bytes in "
                             f"{seconds:g} s (virtual); with RFC 6298's timer it receives "
                             f"{len(trusted.x.received)}")
    if len(trusted.x.received) < size // 4:  # pragma: no cover (the scenario moves data)
        raise AssertionError(f"internal: the trusted stack moved {len(trusted.x.received)} "
                             f"of {size} bytes")


def _units_visible(cls: type) -> None:
    _unit(cls, [0.1], "2.2: the first sample sets SRTT = R, RTTVAR = R/2")
    _unit(cls, [0.1, 0.3, 0.25, 0.9, 0.4], "2.3: later samples")


def _units_hidden(cls: type) -> None:
    _unit(cls, [0.001, 0.002], "2.4: the RTO is at least 200 ms here")
    _unit(cls, [90.0], "2.5: at most 60 s")
    _unit_backoff(cls)


def check_rto(sample: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `Rto.sample`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = student_domain("netstack", {"tcp_rto.py": {"Rto.sample": sample}}, folder)
        runs: list[tuple[str, dict[int, int], float, Callable[[type], None]]] = [
            ("varying", {}, 6.0, _units_visible)]
        if hidden:
            runs += [("varying", {6: 2, 40: 1, 41: 1}, 8.0, _units_hidden),
                     ("lan", {3: 1, 30: 3}, 4.0, _units_hidden)]
        for phase, losses, seconds, units in runs:
            net = _Netstack(kernel, copy)
            try:
                size = int((seconds - 1.0) / SEND_EVERY) * SEND_BYTES // 256 * 256
                _lockstep(net.impl, phase, losses, size, seconds, units)
            finally:
                net.close()
        if hidden:
            net = _Netstack(kernel, copy)
            try:
                _real_time(net)
            finally:
                net.close()


def _real_time(net: _Netstack) -> None:
    """Through the proxy and the NIC model, in real time: a connection with RTTs of a
    fraction of a millisecond, its first data segment lost once. The retransmission must
    come after the RTO's minimum (200 ms), not sooner, and not much later."""
    peer = Stack(PEER_MAC, PEER_IP, options=TcpOptions(), seed=11)
    peer_sockets = Sockets(peer)
    listener = peer_sockets.socket(STREAM)
    peer_sockets.bind(listener, PORT)
    peer_sockets.listen(listener, 4)
    fd = net.call("socket()", "socket", STREAM)
    net.call("connect()", "connect", fd, int.from_bytes(PEER_IP, "big"), PORT)
    buf = RRef.new(SockBuf)
    payload = b"retransmit me" * 40
    fill(buf, payload)
    lost_at: float | None = None
    again_at: float | None = None
    sent = False
    deadline = time.monotonic() + 3.0
    try:
        while again_at is None and time.monotonic() < deadline:
            if not sent and net.call("send()", "send", fd, buf) > 0:
                sent = True
            net.call("pump()", "pump", 2)
            now = time.monotonic()
            for frame in net.transmitted():
                fields = _tcp_fields(frame)
                if fields is not None and fields[1] > 0:
                    if lost_at is None:
                        lost_at = now  # lose the first transmission
                        continue
                    again_at = now
                peer.input(frame, now)
            peer.tick(now)
            peer.flush_acks()
            for frame in peer.drain():
                net.dev.inject(frame)
            time.sleep(0.001)
    finally:
        buf.drop()
    if lost_at is None:
        raise ExerciseFailed("through the NIC model, the connection never sent its data")
    if again_at is None:
        raise ExerciseFailed("through the NIC model, a lost segment was not retransmitted "
                             "within 3 s")
    waited = again_at - lost_at
    if not 0.18 <= waited <= 1.0:
        raise ExerciseFailed(f"through the NIC model (RTTs well under 1 ms), a lost segment "
                             f"was retransmitted after {waited * 1000:.0f} ms; the RTO is then "
                             "its minimum, 200 ms")


# -- IPv4 input validation ---------------------------------------------------------------
OUR_IP = bytes(ADDRESS)


def _echo(ident: int, data: bytes) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    return head[:2] + struct.pack("!H", ~inet_sum(head + data) & 0xFFFF) + head[4:] + data


def datagram(body: bytes, *, version: int = 4, ihl: int = 5, total: int | None = None,
             flags_offset: int = 0x4000, ttl: int = 64, proto: int = 1, src: bytes = PEER_IP,
             dst: bytes = OUR_IP, bad_checksum: bool = False) -> bytes:
    options = bytes(4 * (ihl - 5)) if ihl > 5 else b""  # all-zero options: same checksum
    length = 4 * max(ihl, 5) + len(body) if total is None else total
    head = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, length, 7, flags_offset,
                       ttl, proto, 0, src, dst) + options
    checksum = ~inet_sum(head) & 0xFFFF
    if bad_checksum:
        checksum ^= 0x0101
    head = head[:10] + struct.pack("!H", checksum) + head[12:]
    return head + body


class _Wire:
    """The peer's side of the sink NIC: frames in, the domain's answers out."""

    def __init__(self, net: _Netstack) -> None:
        self.net = net
        self.mac = net.dev.mac
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + PEER_MAC + PEER_IP + bytes(6) + OUR_IP
        self.send(b"\xff" * 6 + PEER_MAC + b"\x08\x06" + arp)  # the stack learns our MAC

    def send(self, payload_frame: bytes) -> tuple[dict[str, int], list[bytes]]:
        before = self.net.counters()
        if not self.net.dev.inject(payload_frame.ljust(60, b"\0")):
            raise AssertionError("internal: the NIC model refused the frame")
        self.net.call("pump()", "pump", 3)
        after = self.net.counters()
        changed = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        return changed, self.net.transmitted()

    def ip(self, packet: bytes, padding: bytes = b"") -> tuple[dict[str, int], list[bytes]]:
        return self.send(self.mac + PEER_MAC + b"\x08\x00" + packet + padding)


def _replies(frames: list[bytes]) -> list[bytes]:
    """ICMP echo replies among the transmitted frames (their ICMP message)."""
    return [f[34:14 + struct.unpack("!H", f[16:18])[0]] for f in frames
            if len(f) >= 42 and f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 0]


def _expect_reply(wire: _Wire, what: str, packet: bytes, data: bytes,
                  padding: bytes = b"", hint: str = "") -> None:
    changed, frames = wire.ip(packet, padding)
    replies = _replies(frames)
    if not replies:
        drops = ", ".join(f"{k} +{v}" for k, v in changed.items() if k.startswith("drop_"))
        raise ExerciseFailed(f"{what} got no echo reply (counters: {drops or 'no drop'})"
                             + (f": {hint}" if hint else ""))
    if not replies[0][8:].startswith(data) or len(replies[0][8:]) != len(data):
        raise ExerciseFailed(f"{what}: the echo reply carried {len(replies[0]) - 8} data bytes, "
                             f"the request {len(data)}" + (f": {hint}" if hint else ""))


CASES_VISIBLE: list[tuple[str, dict[str, Any], str]] = [
    ("a bad header checksum", {"bad_checksum": True}, "ip_bad_checksum"),
    ("version 6 in an IPv4 frame", {"version": 6}, "ip_bad_version"),
    ("a destination that is not ours (10.66.0.7)", {"dst": bytes((10, 66, 0, 7))},
     "ip_not_ours"),
]
CASES_HIDDEN: list[tuple[str, dict[str, Any], str]] = [
    ("options (IHL 6)", {"ihl": 6}, "ip_options"),
    ("IHL 4 (a header shorter than 20 bytes)", {"ihl": 4}, "ip_bad_header"),
    ("a total length beyond the frame", {"total": 400}, "ip_bad_length"),
    ("a total length below 20", {"total": 12}, "ip_bad_length"),
    ("MF set (a first fragment)", {"flags_offset": 0x2000}, "ip_fragment"),
    ("a fragment offset of 185 (a later fragment)", {"flags_offset": 185}, "ip_fragment"),
    ("the reserved flag set", {"flags_offset": 0xC000}, "ip_bad_header"),
    ("TTL 0", {"ttl": 0}, "ip_ttl_zero"),
    ("a multicast source (224.0.0.9)", {"src": bytes((224, 0, 0, 9))}, "ip_bad_source"),
    ("the broadcast source 255.255.255.255", {"src": b"\xff" * 4}, "ip_bad_source"),
    ("the subnet's broadcast as source", {"src": bytes((10, 66, 0, 255))}, "ip_bad_source"),
]


def _expect_drop(wire: _Wire, what: str, fields: dict[str, Any], counter: str) -> None:
    packet = datagram(_echo(9, b"must be dropped"), **fields)
    changed, frames = wire.ip(packet)
    if changed.get("drop_" + counter) != 1:
        seen = ", ".join(f"{k} +{v}" for k, v in sorted(changed.items())) or "nothing"
        raise ExerciseFailed(f"a datagram with {what} was not dropped as {counter} (counters "
                             f"that changed: {seen})"
                             + (" and it was answered" if _replies(frames) else ""))
    if _replies(frames):
        raise ExerciseFailed(f"a datagram with {what} was counted, but also answered")


def check_ipv4(parse: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's IPv4 `parse`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = student_domain("netstack", {"ipv4.py": {"parse": parse}}, folder)
        net = _Netstack(kernel, copy)
        try:
            wire = _Wire(net)
            data = bytes(range(48))
            _expect_reply(wire, "an ICMP echo request", datagram(_echo(1, data)), data)
            short = b"ping"
            _expect_reply(wire, "a small echo request in a frame with 14 bytes of Ethernet "
                          "padding after the datagram", datagram(_echo(2, short)), short,
                          padding=b"\xaa" * 14,
                          hint="the body is payload[20:total length]; the bytes after it "
                          "are the Ethernet padding of a short frame (RFC 894)")
            for what, fields, counter in CASES_VISIBLE + (CASES_HIDDEN if hidden else []):
                _expect_drop(wire, what, fields, counter)
            if hidden:
                _expect_reply(wire, "an echo request with DF set and TTL 1",
                              datagram(_echo(4, data), ttl=1), data)
                udp = struct.pack("!HHHH", 5000, 4444, 12, 0) + b"anyb"
                changed, _frames = wire.ip(datagram(udp, proto=17, dst=b"\xff" * 4))
                if changed.get("ip_in") != 1 or changed.get("drop_udp_no_port") != 1:
                    raise ExerciseFailed("a UDP datagram to the limited broadcast "
                                         "255.255.255.255 must be accepted (then dropped by "
                                         f"UDP: no such port); counters: {changed}")
        finally:
            net.close()
