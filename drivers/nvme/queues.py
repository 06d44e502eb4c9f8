"""One NVMe queue pair (SQ + CQ) in DMA memory, driven with numpy, a batch at a time.

Purpose: `QueuePair.submit_io` builds a whole batch of SQ entries in a scratch array with
five vectorized numpy stores (§4.2 SQE layout) and copies them into the ring (one copy
per contiguous run of slots), rings the SQ tail doorbell once (§3.1.24); `reap`
waits, with a bounded Python loop, for the batch's completions (§4.6: a new entry is
one whose phase tag equals the expected phase, which inverts at every wrap), checks
them and writes the CQ head doorbell once (§3.1.25). `submit_runs` merges runs of
consecutive blocks into one command each, with PRP lists (§4.3). `command` is the
one-entry form the admin queue uses.

Ownership: the pair owns its two DMA buffers (allocated from the Device, so owned by
the driver domain and reclaimed with it). Memory ordering: entries are written before
the doorbell; the phase tag is read before the other completion fields.
Locking: a pair is not thread safe by itself. `lock` (locks.DomainLock) is held by the
one call using the pair's tail, head, phase, scratch, PRP lists and counters. The admin
pair has no lock: the driver uses it during init and under its pick lock. Completion waits end
with NvmeError on CSTS.CFS, on timeout, or once `stopping()` says the driver
incarnation is dead (its device was reset: nothing more will complete).
"""

import time

import numpy as np

from .regs import CSTS, CSTS_CFS, NvmeError, status_text


class QueuePair:
    def __init__(self, device, qid: int, size: int, stride: int, lock, stopping,
                 lba_shift: int = 0) -> None:
        self.device = device
        # 4 KiB blocks -> LBAs (§6.9, §6.15: SLBA and NLB count logical blocks): a block
        # is 2^lba_shift LBAs, 0 for 4096-byte LBAs, 3 for 512-byte ones
        self.lba_shift = lba_shift
        self.lock = lock
        self.stopping = stopping
        self.reads = self.writes = self.batches = 0  # blocks and calls, for stats()
        self.qid = qid
        self.size = size
        self.sq_mem = device.dma_alloc(size * 64)
        self.cq_mem = device.dma_alloc(size * 16)
        self.sq32 = self.sq_mem.array.view(np.uint32).reshape(size, 16)
        self.sq64 = self.sq_mem.array.view(np.uint64).reshape(size, 8)
        self.cq32 = self.cq_mem.array.view(np.uint32).reshape(size, 4)
        self.sq_db = 0x1000 + 2 * qid * stride
        self.cq_db = 0x1000 + (2 * qid + 1) * stride
        self.tail = 0
        self.head = 0
        self.phase = 1
        # A command's CID is its SQ slot: unique among outstanding commands, as the
        # queue never holds more than `room`. cid_words[s] is CDW0's CID field for slot s.
        self.cid_words = np.arange(size, dtype=np.uint64) << 16
        self.scratch = np.zeros((size, 8), dtype=np.uint64)  # whole entries, built here
        self.completed = 0
        self.prp_mem = None  # PRP list pages, one per SQ slot, allocated at first use
        self.prp_lists = None

    def done(self, read: bool, blocks: int, batches: int) -> None:
        """Count a finished call and release the pair (its caller holds the lock)."""
        if read:
            self.reads += blocks
        else:
            self.writes += blocks
        self.batches += batches
        self.lock.release()

    @property
    def room(self) -> int:
        """Commands one batch may hold (a full queue keeps one slot empty, §4.1.1)."""
        return self.size - 1

    def segments(self, start: int, n: int) -> list:
        """The ring slots [start, start + n) as at most two (slot, first, count) runs."""
        first = min(n, self.size - start)
        if first == n:
            return [(start, 0, n)]
        return [(start, 0, first), (0, first, n - first)]

    def submit_io(self, opcode: int, nsid: int, prp1, slba, nlb, prp2=None) -> None:
        """Write len(prp1) commands (whole 64-byte entries, §4.2: CDW0 opcode and CID,
        NSID, PRP1, PRP2, CDW10-11 SLBA, CDW12 NLB - 1); ring the doorbell once. `slba`
        (an array) and `nlb` (an int or an array) count 4 KiB blocks, scaled to LBAs here;
        `prp2` None means single pages."""
        n = len(prp1)
        if n > self.room:
            raise ValueError(f"queue {self.qid}: a batch of {n} exceeds the room ({self.room})")
        cdw0 = opcode | (nsid << 32)  # DW1 (NSID) shares the 64-bit word with CDW0
        per_command = not isinstance(nlb, int)
        shift = self.lba_shift
        if shift:  # 512-byte (..2 KiB) LBAs: one vectorized shift per batch
            slba = slba << shift
            nlb = nlb << shift
        for slot, first, count in self.segments(self.tail, n):
            entries = self.scratch[:count]
            np.bitwise_or(self.cid_words[slot : slot + count], cdw0, out=entries[:, 0])
            entries[:, 3] = prp1[first : first + count]
            entries[:, 4] = 0 if prp2 is None else prp2[first : first + count]
            entries[:, 5] = slba[first : first + count]  # CDW10 | CDW11 << 32
            entries[:, 6] = (nlb[first : first + count] if per_command else nlb) - 1  # CDW12
            self.sq64[slot : slot + count] = entries
        self.tail = (self.tail + n) % self.size
        self.device.write32(self.sq_db, self.tail)  # one doorbell per batch

    def _list_page(self, slot: int) -> int:
        """The IOVA of SQ slot `slot`'s PRP list page (allocated at first use)."""
        if self.prp_mem is None:
            self.prp_mem = self.device.dma_alloc(self.size * 4096)
            self.prp_lists = self.prp_mem.array.view(np.uint64).reshape(self.size, 512)
        return self.prp_mem.iova + slot * 4096

    def submit_run(self, opcode: int, nsid: int, iovas, slba: int) -> None:
        """One command for len(iovas) consecutive blocks from `slba` (the whole batch is one
        run: the sequential case), written entry by entry; rings the doorbell."""
        n = len(iovas)
        slot = self.tail
        prp2 = 0
        if n == 2:
            prp2 = int(iovas[1])  # PRP2: the second page itself (§4.3)
        elif n > 2:
            prp2 = self._list_page(slot)  # PRP2: a PRP list of the other pages
            self.prp_lists[slot, : n - 1] = iovas[1:]
        # the whole 64-byte entry in one store (§4.2): CDW0+NSID, -, -, PRP1, PRP2,
        # CDW10-11 (SLBA), CDW12 (NLB - 1), -
        shift = self.lba_shift
        self.sq64[slot] = (opcode | (slot << 16) | (nsid << 32), 0, 0, int(iovas[0]), prp2,
                           slba << shift, (n << shift) - 1, 0)
        self.tail = (slot + 1) % self.size
        self.device.write32(self.sq_db, self.tail)

    def reap_one(self, timeout: float = 5.0) -> int:
        """Wait for the next completion (a single command's); returns its status field."""
        head = self.head
        cq32 = self.cq32
        if (int(cq32[head, 3]) >> 16) & 1 != self.phase:
            self.spin(cq32, head, self.phase, timeout)
        status = (int(cq32[head, 3]) >> 17) & 0x7FF
        head += 1
        if head == self.size:
            head = 0
            self.phase ^= 1
        self.head = head
        self.device.write32(self.cq_db, head)
        self.completed += 1
        return status

    def submit_runs(self, opcode: int, nsid: int, iovas, blocks, starts, lengths) -> None:
        """One command per run of consecutive blocks: run k is requests starts[k] ..
        starts[k] + lengths[k] - 1 (lengths <= 513). §4.3: PRP1 is the first page; PRP2
        the second page for a two-page transfer, else the address of a PRP list holding
        the other pages. Each SQ slot has its own list page, in use until its command
        completes; the list entries are the requests' own data pages (zero copy)."""
        prp1 = iovas[starts]
        prp2 = np.zeros(len(starts), dtype=np.uint64)
        two = np.flatnonzero(lengths == 2)
        prp2[two] = iovas[starts[two] + 1]
        many = np.flatnonzero(lengths > 2)
        if many.size:
            base = self._list_page(0)
            slots = (self.tail + many) % self.size
            prp2[many] = base + slots.astype(np.uint64) * 4096
            for k, slot in zip(many.tolist(), slots.tolist(), strict=True):  # per long run
                start, length = int(starts[k]), int(lengths[k])
                self.prp_lists[slot, : length - 1] = iovas[start + 1 : start + length]
        self.submit_io(opcode, nsid, prp1, blocks[starts], lengths, prp2)

    def command(self, opcode: int, nsid: int = 0, prp1: int = 0, prp2: int = 0,
                cdw10: int = 0, cdw11: int = 0, cdw12: int = 0, timeout: float = 5.0) -> int:
        """One command (admin form): returns DW0; raises NvmeError on a bad status."""
        slot = self.tail
        entry = self.sq32[slot]
        entry[:] = 0
        entry[0] = opcode | (slot << 16)
        entry[1] = nsid
        self.sq64[slot, 3] = prp1
        self.sq64[slot, 4] = prp2
        entry[10] = cdw10
        entry[11] = cdw11
        entry[12] = cdw12
        self.tail = (slot + 1) % self.size
        self.device.write32(self.sq_db, self.tail)
        status, dw0 = self.reap(1, timeout)
        if status is not None:
            raise NvmeError(f"queue {self.qid}: opcode {opcode:#04x} failed: "
                            f"{status_text(int(status[0]))}", int(status[0]))
        return int(dw0[0])

    def reap(self, n: int, timeout: float = 5.0):
        """Wait for the next n completions; returns (errors, DW0 array): errors is None
        when every status is 0 (success), else the status array. DW0 may be a view of
        the CQ: read it before the next command."""
        head = self.head
        end = head + n
        if end < self.size:  # the common case: one run of slots, no wrap, no phase flip
            cq32 = self.cq32
            want = self.phase
            dw3 = cq32[head:end, 3]
            if (int(dw3[-1]) >> 16) & 1 != want:
                self.spin(cq32, end - 1, want, timeout)
            if np.count_nonzero(dw3 & 0x10000) != n * want:  # earlier ones posted late
                self.await_all(lambda: np.count_nonzero(dw3 & 0x10000) == n * want, timeout)
            # one pass: the OR of the DW3s has status bits only if some command failed
            status = None if not (int(np.bitwise_or.reduce(dw3)) >> 17) & 0x7FF \
                else (dw3 >> 17) & 0x7FF
            self.head = end
            self.device.write32(self.cq_db, end)
            self.completed += n
            return status, cq32[head:end, 0]
        runs = self.segments(self.head, n)
        cq32 = self.cq32
        last = (self.head + n - 1) % self.size
        want = self.phase ^ (len(runs) - 1)  # the phase inverts at the wrap
        if (int(cq32[last, 3]) >> 16) & 1 != want:
            self.spin(cq32, last, want, timeout)
        dw3 = [cq32[slot : slot + count, 3] for slot, _first, count in runs]

        def all_posted() -> bool:  # the entries before the last may be posted later
            return all(int(np.count_nonzero(part & 0x10000)) == len(part) * (self.phase ^ i)
                       for i, part in enumerate(dw3))

        if not all_posted():
            self.await_all(all_posted, timeout)
        if len(runs) == 1:
            dw3_all, dw0 = dw3[0] >> 17, cq32[self.head : self.head + n, 0].copy()
        else:
            dw3_all = np.concatenate(dw3) >> 17
            dw0 = np.concatenate([cq32[slot : slot + count, 0] for slot, _f, count in runs])
        status = dw3_all & 0x7FF
        if not status.any():
            status = None
        if self.head + n >= self.size:
            self.phase ^= 1
        self.head = (self.head + n) % self.size
        self.device.write32(self.cq_db, self.head)
        self.completed += n
        return status, dw0

    def await_all(self, done, timeout: float) -> None:
        """Bounded wait for `done()` (completions posted out of order): see `check`, so a
        controller that never posts one cannot hang the driver."""
        deadline = time.monotonic() + timeout
        while not done():
            self.check(deadline, timeout)
            time.sleep(0)

    def check(self, deadline: float, timeout: float) -> None:
        """Raise NvmeError if the wait must end: CSTS.CFS (§3.1.6), the timeout, or a dead
        driver incarnation."""
        if self.device.read32(CSTS) & CSTS_CFS:
            raise NvmeError(f"queue {self.qid}: controller fatal status (CSTS.CFS)")
        if time.monotonic() > deadline:
            raise NvmeError(f"queue {self.qid}: no completion within {timeout} s")
        if self.stopping():
            raise NvmeError(f"queue {self.qid}: the driver incarnation stopped during a wait")

    def spin(self, cq32, last: int, want: int, timeout: float) -> None:
        """Bounded wait from Python (so the kernel can unwind us); see `check`."""
        deadline = time.monotonic() + timeout
        spins = 0
        while (int(cq32[last, 3]) >> 16) & 1 != want:
            spins += 1
            if spins & 1023 == 0:
                self.check(deadline, timeout)
                time.sleep(0)

    def release(self) -> None:
        self.device.dma_free(self.sq_mem.handle)
        self.device.dma_free(self.cq_mem.handle)
        if self.prp_mem is not None:
            self.device.dma_free(self.prp_mem.handle)
