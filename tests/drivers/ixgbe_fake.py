"""A small pure-Python 82599 stand-in, used only until/unless the C model is importable.

It implements just what the ixgbe driver touches, inline (a pass after every register
write): reset self-clear, EEC.ARD, RDRXCTL.DMAIDONE, link up on AUTOC.AN_RESTART,
queue enables, one RX and one TX ring with advanced descriptors (DD/EOP, lengths,
RDH/TDH), clear-on-read GPRC/GPTC/GORC/GOTC/MPC, and two wires: "loopback" (TX frames
come back into RX) and "generator" (64-byte frames with a counter fill every free RX
descriptor on each pass). Per-packet Python: slow, for tests only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from redleaf_lab._core import ffi
from redleaf_lab.devices.device import Device

BAR = 0x20000
STATS = {0x4074: "rx", 0x4080: "tx", 0x4088: "rxb", 0x4090: "txb", 0x3FA0: "missed"}


class FakeIxgbe(Device):
    def __init__(self, heap: Any, wire: str = "loopback", packet_size: int = 64,
                 mac: int = 0x0000_5E00_5301) -> None:
        self._mem = np.zeros(BAR // 4, dtype="<u4")
        super().__init__("ixgbe-fake", memoryview(self._mem).cast("B"), heap, self._pass)
        self.wire, self.packet_size = wire, packet_size
        self.counts = dict.fromkeys(STATS.values(), 0)
        self.generated = 0
        self.sunk: list[bytes] = []
        self._r32[0x10010 // 4] = 1 << 9  # EEC.ARD
        self._r32[0x2F00 // 4] = 1 << 3  # RDRXCTL.DMAIDONE
        self._r32[0x5400 // 4] = mac & 0xFFFF_FFFF
        self._r32[0x5404 // 4] = (mac >> 32) | (1 << 31)
        self.quiesced = 0

    def read32(self, offset: int) -> int:
        if offset in STATS:  # clear on read
            name = STATS[offset]
            value = self.counts[name]
            self.counts[name] = 0
            return value & 0xFFFF_FFFF
        return super().read32(offset)

    def quiesce(self) -> None:
        self.quiesced += 1
        for reg in (0x1028, 0x6028):
            self._r32[reg // 4] = int(self._r32[reg // 4]) & ~(1 << 25)

    def _ring(self, base: int) -> tuple[Any, int]:
        iova = int(self._r32[base // 4]) | (int(self._r32[base // 4 + 1]) << 32)
        n = int(self._r32[base // 4 + 2]) // 16
        ptr = self._heap.iova_to_ptr(iova, n * 16)
        return np.frombuffer(ffi.buffer(ptr, n * 16), dtype="<u8").reshape(n, 2), n

    def _pass(self, offset: int) -> None:
        r = self._r32
        if offset == 0 and r[0] & ((1 << 26) | 8):
            r[0] = int(r[0]) & ~((1 << 26) | 8)
            r[0x1028 // 4] = r[0x6028 // 4] = 0
            r[0x1010 // 4] = r[0x1018 // 4] = r[0x6010 // 4] = r[0x6018 // 4] = 0
        if offset == 0x42A0 and r[0x42A0 // 4] & (1 << 12):
            r[0x42A4 // 4] = (1 << 30) | (3 << 28)
        if r[0x6028 // 4] & (1 << 25):
            self._transmit()
        if self.wire == "generator" and r[0x1028 // 4] & (1 << 25):
            while self._deliver(self._frame()):
                pass

    def _frame(self) -> bytes:
        self.generated += 1
        body = np.full(self.packet_size, self.generated & 0xFF, np.uint8)
        body[:8] = np.array([self.generated], "<u8").view(np.uint8)
        return body.tobytes()

    def _deliver(self, frame: bytes) -> bool:
        r = self._r32
        if not r[0x1028 // 4] & (1 << 25) or not r[0x3000 // 4] & 1:
            self.counts["missed"] += 1
            return False
        ring, n = self._ring(0x1000)
        head, tail = int(r[0x1010 // 4]), int(r[0x1018 // 4])
        if head == tail:
            self.counts["missed"] += 1
            return False
        addr = int(ring[head, 0])
        ffi.memmove(self._heap.iova_to_ptr(addr, len(frame)), frame, len(frame))
        ring[head, 1] = 3 | (len(frame) << 32)  # status DD|EOP, length at bytes 12-13
        r[0x1010 // 4] = (head + 1) % n
        self.counts["rx"] += 1
        self.counts["rxb"] += len(frame)
        return True

    def _transmit(self) -> None:
        r = self._r32
        ring, n = self._ring(0x6000)
        head, tail = int(r[0x6010 // 4]), int(r[0x6018 // 4])
        while head != tail:
            addr, word = int(ring[head, 0]), int(ring[head, 1])
            length = word & 0xFFFF
            frame = bytes(ffi.buffer(self._heap.iova_to_ptr(addr, length), length))
            ring[head, 1] = word | (1 << 32)  # DD in dword 3
            head = (head + 1) % n
            self.counts["tx"] += 1
            self.counts["txb"] += length
            if self.wire == "loopback":
                self._deliver(frame)
            else:
                self.sunk.append(frame)
        r[0x6010 // 4] = head

    def close(self) -> None:
        pass
