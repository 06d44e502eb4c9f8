"""A minimal NVMe host written against raw registers, for the model's spec tests.

It builds 64-byte SQEs with numpy, rings doorbells through `Device.write32` (inline
mode processes on the write) and reads CQEs. No driver code is reused, so the tests
exercise the model alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redleaf_lab.devices.sim_nvme import REG_ACQ, REG_AQA, REG_ASQ, REG_CC, REG_CSTS, SimNvme

CC_ENABLE = 1 | (6 << 16) | (4 << 20)


@dataclass
class Cqe:
    dw0: int
    sqhd: int
    sqid: int
    cid: int
    phase: int
    sc: int
    sct: int
    dnr: int

    @property
    def status(self) -> int:
        return (self.sct << 8) | self.sc


class Queue:
    def __init__(self, dev: SimNvme, qid: int, size: int) -> None:
        self.dev, self.qid, self.size = dev, qid, size
        self.sq = dev.dma_alloc(size * 64)
        self.cq = dev.dma_alloc(size * 16)
        self.tail = self.head = 0
        self.phase = 1
        self.cid = 0
        stride = 4 << ((dev.read64(0) >> 32) & 0xF)
        self.sq_db = 0x1000 + 2 * qid * stride
        self.cq_db = 0x1000 + (2 * qid + 1) * stride

    def put(self, opcode: int, nsid: int = 0, prp1: int = 0, prp2: int = 0,
            cdw: dict[int, int] | None = None, flags: int = 0) -> int:
        entry = np.zeros(16, np.uint32)
        self.cid = (self.cid + 1) & 0xFFFF
        entry[0] = opcode | (flags << 8) | (self.cid << 16)
        entry[1] = nsid
        entry.view(np.uint64)[3] = prp1
        entry.view(np.uint64)[4] = prp2
        for n, value in (cdw or {}).items():
            entry[n] = value & 0xFFFFFFFF
        self.sq.array[self.tail * 64 : self.tail * 64 + 64] = entry.view(np.uint8)
        self.tail = (self.tail + 1) % self.size
        return self.cid

    def ring(self) -> None:
        self.dev.write32(self.sq_db, self.tail)

    def reap(self) -> list[Cqe]:
        out = []
        while True:
            raw = self.cq.array[self.head * 16 : self.head * 16 + 16].view(np.uint32)
            status = int(raw[3]) >> 16
            if status & 1 != self.phase:
                break
            out.append(Cqe(int(raw[0]), int(raw[2]) & 0xFFFF, int(raw[2]) >> 16,
                           int(raw[3]) & 0xFFFF, status & 1, (status >> 1) & 0xFF,
                           (status >> 9) & 7, status >> 15))
            self.head += 1
            if self.head == self.size:
                self.head, self.phase = 0, self.phase ^ 1
        if out:
            self.dev.write32(self.cq_db, self.head)
        return out

    def cmd(self, opcode: int, **kw: object) -> Cqe:
        cid = self.put(opcode, **kw)  # type: ignore[arg-type]
        self.ring()
        done = self.reap()
        assert len(done) == 1 and done[0].cid == cid, done
        return done[0]


def enable(dev: SimNvme, admin_entries: int = 16) -> Queue:
    dev.write32(REG_CC, 0)
    assert dev.read32(REG_CSTS) & 1 == 0
    admin = Queue(dev, 0, admin_entries)
    dev.write32(REG_AQA, ((admin_entries - 1) << 16) | (admin_entries - 1))
    dev.write64(REG_ASQ, admin.sq.iova)
    dev.write64(REG_ACQ, admin.cq.iova)
    dev.write32(REG_CC, CC_ENABLE)
    assert dev.read32(REG_CSTS) & 3 == 1
    return admin


def create_pair(admin: Queue, qid: int, size: int) -> Queue:
    q = Queue(admin.dev, qid, size)
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: ((size - 1) << 16) | qid, 11: 1}).status == 0
    assert admin.cmd(0x01, prp1=q.sq.iova,
                     cdw={10: ((size - 1) << 16) | qid, 11: (qid << 16) | 1}).status == 0
    return q
