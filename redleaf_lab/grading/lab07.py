"""Lab 7's graded exercises: Maglev's table population (NSDI '16, Pseudocode 1) and the
per-batch header rewrite with its incremental checksum updates (RFC 1624), each spliced
into a copy of domains/maglev and run over the ixgbe driver on the 82599 model.

Interface:
* `check_populate(populate, hidden=False)`: the student's `populate(prefs, m)`. The maglev
  copy is loaded with 3 backends at M = 13 and 5 at M = 65537; its lookup table must equal
  Pseudocode 1's, slot by slot; then generator flows are forwarded and every transmitted
  frame must go to its flow's backend. Hidden: removing a backend changes exactly as many
  entries as Maglev does and moves no other flow; 100 backends at M = 65537; removing every
  backend (populate([]): all slots -1; frames are dropped, nothing crashes).
* `check_rewrite(rewrite, hidden=False)`: the student's `rewrite(hdr, macs, ips)`. Every
  frame Maglev transmits must carry its backend's MAC and address, a valid IPv4 header
  checksum and a valid UDP checksum (the payload untouched). Hidden: batches of 1 and 256,
  a frame without a UDP checksum (0 stays 0), and one whose new checksum computes to 0
  (sent as 0xFFFF, RFC 768).
The reference tables come from the installed (trusted) domain's population.py.
Ownership: each check boots its own kernel and model and closes both.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.kv_requests import inet_sum  # the word-loop sum: independent of the domains'
from ..devices.sim_ixgbe import SimIxgbe
from ..domains.maglev.population import populate as reference_populate
from ..domains.maglev.population import preferences
from ..domains.maglev.steer import flow_keys
from ..errors import RpcError
from ..hashtable.vectorised import fnv1a64_array
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import student_domain

VIP = (10, 2, 0, 1)


def backend(i: int) -> tuple[int, int]:
    """(mac, ip) numbers of backend i: MAC 02:00:00:00:00:10 + i, address 10.3.x.y."""
    return 0x10_00_00_00_00_02 | ((i & 0xFF) << 40) | ((i >> 8) << 32), \
        (10 << 24) | (3 << 16) | (i + 1)


def _name(ip: int) -> str:
    return ".".join(str((ip >> s) & 0xFF) for s in (24, 16, 8, 0))


def reference_table(indices: list[int], m: int) -> np.ndarray:
    """Backend index per slot, as the domain stores it (-1: none), by Pseudocode 1."""
    entries = reference_populate([preferences(_name(backend(i)[1]), m) for i in indices], m)
    return np.array([*indices, -1], dtype=np.int64)[np.array(entries, dtype=np.int64)]


def _mac_bytes(mac: int) -> bytes:
    return bytes((mac >> (8 * i)) & 0xFF for i in range(6))


def _ip_bytes(ip: int) -> bytes:
    return ip.to_bytes(4, "big")


class _Balancer:
    """A maglev copy over an ixgbe driver on the model, in one kernel."""

    def __init__(self, kernel: Any, folder: Path, backends: list[int], m: int,
                 wire: str = "generator", tag: str = "") -> None:
        self.kernel = kernel
        self.dev = SimIxgbe(kernel.heap, wire=wire, flows=64, capture=True, name=f"nic{tag}")
        self.nic = f"nic{tag}"
        self.name = f"maglev{tag}"
        self.m = m
        self.backends = list(backends)
        kernel.load("ixgbe", name=self.nic, device=self.dev)
        try:
            self.lb = kernel.load(folder, name=self.name, net=kernel.proxy(self.nic),
                                  config={"backends": [backend(i) for i in backends],
                                          "table_size": m, "flow_slots": 1 << 12})
        except Exception as err:
            raise ExerciseFailed(f"the maglev domain (M = {m}, {len(backends)} backends) did "
                                 f"not start: {panic_text(err)}") from None
        self.forward(32)  # arm the RX ring: frames land only in armed descriptors

    def table(self) -> np.ndarray:
        return np.asarray(self.kernel.domain(self.name).impl._lookup)  # trusted checker

    def call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.lb, method)(*args)
        except RpcError as err:
            raise ExerciseFailed(f"{what}: the maglev domain panicked: {panic_text(err)}") from None

    def forward(self, batch: int = 32) -> list[bytes]:
        """One round of `batch` frames; the frames transmitted."""
        self.call(f"forwarding a batch of {batch}", "run", 1, batch)
        sent = self.call("stats", "stats")[1]
        fresh = sent - getattr(self, "_seen", 0)
        self._seen = sent
        return self.dev.captured(min(fresh, 64))

    def close(self) -> None:
        for name in (self.name, self.nic):
            if self.kernel.domain(name).state == "running":
                self.kernel.stop(name)
        self.dev.close()


def _slot_of(frame: bytes, m: int) -> int:
    """The lookup-table slot of a frame's flow (its key as it arrived: dst = the VIP)."""
    hdr = np.frombuffer(frame[:64].ljust(64, b"\0"), np.uint8).copy().reshape(1, 64)
    hdr[0, 30:34] = VIP
    return int(fnv1a64_array(flow_keys(hdr))[0] % np.uint64(m))


def _compare_tables(got: np.ndarray, want: np.ndarray, backends: list[int], what: str) -> None:
    if got.shape != want.shape:
        raise ExerciseFailed(f"{what}: the table has {len(got)} slots, M is {len(want)}")
    wrong = np.flatnonzero(got != want)
    if len(wrong):
        slot = int(wrong[0])
        counts = np.bincount(got[got >= 0], minlength=max(backends) + 1)[backends]
        raise ExerciseFailed(
            f"{what}: {len(wrong)} of {len(want)} slots differ from Pseudocode 1; slot {slot} "
            f"went to backend {int(got[slot])}, Maglev gives it to backend {int(want[slot])}. "
            "Backends take turns in list order; in its turn a backend claims the next EMPTY "
            "slot of its own list offset, offset + skip, ... (mod M), one slot per turn, until "
            f"all M are filled (entries per backend now: {counts.tolist()})")


def _check_steering(bal: _Balancer, want: np.ndarray, rounds: int) -> None:
    for _ in range(rounds):
        for frame in bal.forward():
            slot = _slot_of(frame, bal.m)
            index = int(want[slot])
            mac, ip = backend(index)
            if frame[30:34] != _ip_bytes(ip) or frame[0:6] != _mac_bytes(mac):
                raise ExerciseFailed(f"a frame of the flow in slot {slot} left for "
                                     f"{'.'.join(map(str, frame[30:34]))}; the table says "
                                     f"backend {index} ({_name(ip)})")


def check_populate(populate: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `populate`; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = student_domain("maglev", {"population.py": {"populate": populate}}, folder)
        small = _Balancer(kernel, copy, [0, 1, 2], 13, tag="13")
        try:
            _compare_tables(small.table(), reference_table([0, 1, 2], 13), [0, 1, 2],
                            "3 backends, M = 13")
        finally:
            small.close()
        chosen = [0, 1, 2, 3, 4]
        big = _Balancer(kernel, copy, chosen, 65537)
        try:
            want = reference_table(chosen, 65537)
            _compare_tables(big.table(), want, chosen, "5 backends, M = 65537")
            _check_steering(big, want, 10)
            if hidden:
                _hidden_populate(big, chosen, want)
        finally:
            big.close()
        if hidden:
            many = list(range(100))
            crowd = _Balancer(kernel, copy, many, 65537, tag="100")
            try:
                _compare_tables(crowd.table(), reference_table(many, 65537), many,
                                "100 backends, M = 65537")
            finally:
                crowd.close()


def _hidden_populate(bal: _Balancer, chosen: list[int], want: np.ndarray) -> None:
    after = reference_table([i for i in chosen if i != 1], bal.m)
    changed = bal.call("remove_backend(1)", "remove_backend", 1)
    expected = int(np.count_nonzero(after != want))
    _compare_tables(bal.table(), after, chosen, "after removing backend 1")
    if changed != expected:
        raise ExerciseFailed(f"removing backend 1 changed {changed} entries; Maglev changes "
                             f"{expected}")  # pragma: no cover (the tables agree)
    _check_steering(bal, after, 4)
    for i in chosen:
        if i != 1:
            try:
                bal.call(f"remove_backend({i})", "remove_backend", i)
            except ExerciseFailed as failed:
                raise ExerciseFailed(f"{failed}; {'that was the last backend: ' if i == chosen[-1] else ''}"
                                     "with no backend, populate([], M) must return M slots "
                                     "of -1") from None
    table = bal.table()
    if table.shape != (bal.m,) or (table != -1).any():
        raise ExerciseFailed("with no backend left the lookup table must be all -1 "
                             f"(populate([], M) is [-1] * M); got {len(table)} slots, "
                             f"{int(np.count_nonzero(table != -1))} of them set")
    before = bal.call("stats", "stats")
    bal.call("forwarding with no backend", "run", 3, 32)
    after_stats = bal.call("stats", "stats")
    if after_stats[1] != before[1]:
        raise ExerciseFailed("with no backend left, Maglev still sent frames")


# -- the header rewrite ------------------------------------------------------------------
def _frame_problem(frame: bytes, mac: bytes, ip: bytes) -> str | None:
    if frame[0:6] != mac:
        return f"destination MAC {frame[0:6].hex(':')}, the backend's is {mac.hex(':')}"
    if frame[30:34] != ip:
        return f"destination {'.'.join(map(str, frame[30:34]))}, the backend is " \
               f"{'.'.join(map(str, ip))}"
    if inet_sum(frame[14:34]) != 0xFFFF:
        return (f"the IPv4 header checksum {frame[24:26].hex()} does not verify: it covers the "
                "destination address, so it changes with it (RFC 1624: HC' = ~(~HC + ~m + m'))")
    length = struct.unpack("!H", frame[38:40])[0]
    udp = frame[34:34 + length]
    if udp[6:8] != b"\0\0":
        pseudo = frame[26:34] + bytes((0, 17)) + struct.pack("!H", length)
        if inet_sum(pseudo + udp) != 0xFFFF:
            return (f"the UDP checksum {udp[6:8].hex()} does not verify: its pseudo-header "
                    "holds the destination address, so it changes by the same words")
    return None


def _check_frames(bal: _Balancer, frames: list[bytes], want: np.ndarray, what: str) -> None:
    if not frames:
        raise ExerciseFailed(f"{what}: Maglev transmitted nothing")
    for frame in frames:
        index = int(want[_slot_of(frame, bal.m)])
        mac, ip = backend(index)
        problem = _frame_problem(frame, _mac_bytes(mac), _ip_bytes(ip))
        if problem:
            raise ExerciseFailed(f"{what}: a frame for backend {index}: {problem}")


def check_rewrite(rewrite: Callable[..., Any] | str, hidden: bool = False) -> None:
    """Grade the student's `rewrite`; raises ExerciseFailed."""
    chosen = [0, 1, 2]
    want = reference_table(chosen, 13)
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        copy = student_domain("maglev", {"steer.py": {"rewrite": rewrite}}, folder)
        bal = _Balancer(kernel, copy, chosen, 13)
        try:
            for round_ in range(12):
                _check_frames(bal, bal.forward(), want, f"round {round_}")
            if hidden:
                for batch in (1, 256):
                    for round_ in range(3):
                        _check_frames(bal, bal.forward(batch), want,
                                      f"batch of {batch}, round {round_}")
        finally:
            bal.close()
        if hidden:
            _special_checksums(kernel, copy, chosen, want)


def _udp_frame(payload: bytes, dst: bytes, checksum: bool) -> bytes:
    src = bytes((10, 1, 0, 9))
    udp = struct.pack("!HHHH", 41000, 9, 8 + len(payload), 0) + payload
    if checksum:
        pseudo = src + dst + bytes((0, 17)) + struct.pack("!H", len(udp))
        value = ~inet_sum(pseudo + udp) & 0xFFFF or 0xFFFF
        udp = udp[:6] + struct.pack("!H", value) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", ~inet_sum(ip) & 0xFFFF) + ip[12:]
    return b"\x02" * 6 + bytes((2, 0, 0, 0, 0, 9)) + b"\x08\x00" + ip + udp


def _zero_sum_payload(dst: bytes) -> bytes:
    """A payload whose UDP checksum, once sent to `dst`, computes to 0 (sum 0xFFFF)."""
    payload = bytearray(b"checksum-zero!" + b"\0\0")
    frame = _udp_frame(bytes(payload), dst, checksum=False)
    length = len(payload) + 8
    total = inet_sum(frame[26:34] + bytes((0, 17)) + struct.pack("!H", length) + frame[34:])
    payload[-2:] = struct.pack("!H", (0xFFFF - total) & 0xFFFF or 0xFFFF)
    return bytes(payload)


def _special_checksums(kernel: Any, folder: Path, chosen: list[int], want: np.ndarray) -> None:
    bal = _Balancer(kernel, folder, chosen, 13, wire="sink", tag="sink")
    try:
        vip = bytes(VIP)
        plain = _udp_frame(b"no checksum here", vip, checksum=False)
        index = int(want[_slot_of(plain, 13)])
        mac, ip = backend(index)
        bal.dev.inject(plain)
        (out,) = bal.forward(1) or [b""]
        problem = _frame_problem(out, _mac_bytes(mac), _ip_bytes(ip)) if out else "not sent"
        if problem or out[40:42] != b"\0\0":
            raise ExerciseFailed("a frame without a UDP checksum (0: none, RFC 768) must keep "
                                 f"0, got {out[40:42].hex() if out else 'nothing'}"
                                 + (f" ({problem})" if problem else ""))
        dst = _ip_bytes(backend(int(want[_slot_of(plain, 13)]))[1])
        tricky = _udp_frame(_zero_sum_payload(dst), vip, checksum=True)
        if _slot_of(tricky, 13) != _slot_of(plain, 13):
            raise AssertionError("internal: the two probe frames are different flows")
        bal.dev.inject(tricky)
        (out,) = bal.forward(1) or [b""]
        if out[40:42] != b"\xff\xff":
            raise ExerciseFailed("a frame whose new UDP checksum computes to 0 must carry "
                                 f"0xFFFF (RFC 768: a computed 0 is sent as all ones; 0 means "
                                 f"'no checksum'), got {out[40:42].hex() if out else 'nothing'}")
    finally:
        bal.close()
