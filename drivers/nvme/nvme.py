"""nvme: an NVMe driver domain over a `Device` capability (sim model or, later, VFIO).

Interface: `BDev` (redleaf_lab.interfaces.bdev). `init(ctx, device)` runs the NVMe
initialization sequence (NVMe Base 1.4 §7.6.1), each step citing its section, and
creates N I/O queue pairs. `submit_and_poll` is the batched, zero-copy path, with no Python
work per request: the requests leave `submit` as one handle-free RRefBatch (one registry
call); their block numbers and the IOVAs of their `data` fields (PRP1: the data field is
first, and the heap aligns the 4112-byte allocation to 4096) come from one bulk registry
call each; numpy stores write the SQ entries; one SQ doorbell and one CQ doorbell per
batch; `data_len` is set with one scatter, and the batch goes into `collect` with one
call. Runs of consecutive blocks are merged into one command each (up to MDTS, with a
PRP list of the requests' own pages), as a block layer merges requests.

Errors: an out-of-range block raises InvalidRequest (an error value: it crosses the
proxy to the caller and the driver keeps running) naming the block and the device
size, before any queue or request changes. In `submit_and_poll` the requests go back
to `submit`, but the deques were moved in, so the caller loses that batch: check
block numbers before submitting. A failed command raises NvmeError (status named);
a fatal controller status (CSTS.CFS) or a timeout raise NvmeError. Those are panics
(the caller sees RpcError); a shadow then restarts the driver, which resets the
controller.

Ownership: queue memory comes from device.dma_alloc and is owned by this domain, so a
crash reclaims it (after the kernel quiesces the device). Request buffers are owned by
the driver only between take_batch and put_batch, as a handle-free batch: a crash in
between reclaims them with the rest of the domain's heap (a shadow first rescues them
and re-submits them).

Concurrency: any number of threads may call the driver at once (NVMe Base 1.4 §1.4,
§7.2: a host gives each CPU or thread its own queue pair). A call claims a queue pair
for its whole submit-and-reap by taking the pair's lock (`_claim`): the first idle
pair; else, under the pick lock, a new pair while the controller granted more (Set
Features, Number of Queues, §5.21.1.7; Create I/O CQ/SQ, §5.3, §5.4); else it waits
for a busy one, which it then shares. So a pair's tail, head, phase, scratch and PRP
list pages have one user at a time, and calls on different pairs run in parallel
(the threaded model's device thread serves all pairs). The counters live on the pairs,
updated by the call holding the pair. All waits are bounded, made from Python (so a
crash unwinds waiting callers), and end once the incarnation is dead (locks.py, and
the completion waits in queues.py). Two pairs are created at init; more
only under concurrency, at most `max_queues` (8), each with its own DMA memory.
"""

import numpy as np

from redleaf_lab.api import BLOCK_SIZE, InvalidRequest

from .locks import DomainLock
from .queues import QueuePair
from .regs import (
    ACQ,
    AQA,
    ASQ,
    CAP,
    CC,
    CC_EN,
    CC_IOCQES,
    CC_IOSQES,
    CREATE_CQ,
    CREATE_SQ,
    CSTS,
    CSTS_CFS,
    CSTS_RDY,
    FEATURE_NUM_QUEUES,
    IDENTIFY,
    READ,
    SET_FEATURES,
    WRITE,
    NvmeError,
)

ADMIN_ENTRIES = 32


class NvmeDriver:
    def __init__(self, ctx, device, queues: int = 2, max_queues: int = 8,
                 depth: int = 256) -> None:
        self._ctx = ctx
        self._dev = device
        # guards the creation of pairs (and so the admin queue), _next_shared, _empty
        self._pick_lock = DomainLock(self._dead, "nvme pick lock")
        self._empty = 0  # submit_and_poll calls that took no request
        self._next_qp = 0
        self._next_shared = 0
        self._ready = False
        self._init_controller(queues, max(queues, max_queues), depth)
        self._ready = True

    def _dead(self) -> bool:
        """True once this incarnation, initialized, no longer runs (crashed or stopped):
        its device was reset, so waits end (locks.py, QueuePair.check)."""
        return self._ready and self._ctx.stopping()

    # -- initialization (§7.6.1) ---------------------------------------------------------
    def _wait_ready(self, want: int, timeout: float) -> None:
        import time

        deadline = time.monotonic() + timeout
        while True:
            csts = self._dev.read32(CSTS)
            if csts & CSTS_CFS and want:
                raise NvmeError("controller fatal status (CSTS.CFS) during initialization")
            if csts & CSTS_RDY == want:
                return
            if time.monotonic() > deadline:
                raise NvmeError(f"CSTS.RDY did not become {want} within {timeout} s")
            time.sleep(0)

    def _init_controller(self, queues: int, max_queues: int, depth: int) -> None:
        dev = self._dev
        cap = dev.read64(CAP)  # §3.1.1: MQES 15:0 (0-based), TO 31:24, DSTRD 35:32
        self.mqes = cap & 0xFFFF
        self.stride = 4 << ((cap >> 32) & 0xF)
        timeout = max(((cap >> 24) & 0xFF) * 0.5, 1.0)
        if (cap >> 48) & 0xF != 0:
            raise NvmeError("controller does not support 4 KiB memory pages (CAP.MPSMIN)")
        # §7.6.1 steps 1-2 / §7.3.2: reset (CC.EN = 0) and wait for CSTS.RDY = 0
        dev.write32(CC, 0)
        self._wait_ready(0, timeout)
        # §7.6.1 step 3: admin queues (§3.1.8 AQA 0-based sizes, §3.1.9 ASQ, §3.1.10 ACQ)
        self._admin = QueuePair(dev, 0, ADMIN_ENTRIES, self.stride, None, self._dead)
        dev.write32(AQA, ((ADMIN_ENTRIES - 1) << 16) | (ADMIN_ENTRIES - 1))
        dev.write64(ASQ, self._admin.sq_mem.iova)
        dev.write64(ACQ, self._admin.cq_mem.iova)
        # §7.6.1 step 4-5: CC (§3.1.5) with CSS = NVM, MPS = 4 KiB, entry sizes; EN = 1
        dev.write32(CC, CC_IOSQES | CC_IOCQES | CC_EN)
        self._wait_ready(1, timeout)
        # §7.6.1 step 6: Identify Controller (§5.15.2.2), active NS list, namespace 1
        ident = dev.dma_alloc(4096)
        page = ident.array
        self._admin.command(IDENTIFY, prp1=ident.iova, cdw10=1)
        if page[512] & 0xF != 6 or page[513] & 0xF != 4:
            raise NvmeError("controller does not support 64-byte SQ / 16-byte CQ entries")
        self.model = bytes(page[24:64]).decode("ascii", "replace").strip()
        self.serial = bytes(page[4:24]).decode("ascii", "replace").strip()
        self.mdts = int(page[77])
        # §5.15.2.2 MDTS: the largest transfer is 2^MDTS minimum pages (0: no limit);
        # merged runs stay within it and within one PRP list page
        self.max_merge = 256 if self.mdts == 0 else max(1, min(256, 1 << self.mdts))
        self._admin.command(IDENTIFY, prp1=ident.iova, cdw10=2)  # §5.15.2.3
        active = page[:4096].view(np.uint32)
        if active[0] == 0:
            raise NvmeError("the controller has no active namespace")
        self.nsid = int(active[0])
        self._admin.command(IDENTIFY, nsid=self.nsid, prp1=ident.iova, cdw10=0)  # §5.15.2.1
        # FLBAS bits 3:0 select the LBA format in use; LBAF: MS 15:0, LBADS 23:16
        fmt = int(page[26]) & 0xF
        lbaf = int(page[128 + 4 * fmt : 132 + 4 * fmt].view(np.uint32)[0])
        lbads, metadata = (lbaf >> 16) & 0xFF, lbaf & 0xFFFF
        if not 9 <= lbads <= 12 or metadata:
            raise NvmeError(f"namespace {self.nsid} uses LBA format {fmt}: {1 << lbads}-byte "
                            f"blocks with {metadata} metadata bytes; the driver supports "
                            "512..4096-byte blocks without metadata")
        self.lba_size = 1 << lbads
        # a 4 KiB block is 2^lba_shift LBAs (8 for 512-byte LBAs): SLBA and NLB scale
        self.lba_shift = 12 - lbads
        self.blocks = int(page[0:8].view(np.uint64)[0]) >> self.lba_shift  # NSZE, in LBAs
        dev.dma_free(ident.handle)
        # §7.6.1 step 7: Set Features, Number of Queues (§5.21.1.7); 0-based both halves.
        # Ask for max_queues; the controller may grant fewer (NSQA/NCQA in DW0)
        got = self._admin.command(SET_FEATURES, cdw10=FEATURE_NUM_QUEUES,
                                  cdw11=((max_queues - 1) << 16) | (max_queues - 1))
        self.max_pairs = min(max_queues, (got & 0xFFFF) + 1, (got >> 16) + 1)
        # §7.6.1 step 8: I/O queue pairs; more are created under concurrency (_claim)
        self._depth = min(depth, self.mqes + 1)
        self._pairs = []
        for _ in range(min(queues, self.max_pairs)):
            self._create_pair()

    def _create_pair(self) -> QueuePair:
        """Create I/O CQ (§5.3), then Create I/O SQ (§5.4) for the next queue ID. Init,
        or `_claim_slow` under the pick lock: the admin queue has one user at a time."""
        qid, size = len(self._pairs) + 1, self._depth
        qp = QueuePair(self._dev, qid, size, self.stride, DomainLock(self._dead, f"queue {qid}"),
                       self._dead, self.lba_shift)
        self._admin.command(CREATE_CQ, prp1=qp.cq_mem.iova,
                            cdw10=((size - 1) << 16) | qid, cdw11=1)  # PC = 1, no IRQ
        self._admin.command(CREATE_SQ, prp1=qp.sq_mem.iova,
                            cdw10=((size - 1) << 16) | qid, cdw11=(qid << 16) | 1)
        self._pairs.append(qp)
        return qp

    # -- identification ------------------------------------------------------------------
    def identify(self) -> tuple:
        """(model, serial, nsid, 4 KiB blocks, I/O queue pairs, depth); `lba_size` says
        the namespace's LBA format."""
        return (self.model, self.serial, self.nsid, self.blocks, len(self._pairs),
                self._pairs[0].size)

    # -- I/O -----------------------------------------------------------------------------
    def _check_blocks(self, blocks) -> None:
        if not blocks.size:
            return
        in_range = int(blocks.max()) < self.blocks
        if in_range and (blocks.dtype.kind == "u" or int(blocks.min()) >= 0):
            return
        bad = np.flatnonzero((blocks < 0) | (blocks >= self.blocks))
        if bad.size:
            raise InvalidRequest(f"block {int(blocks[bad[0]])} (request {int(bad[0])}) is out of "
                             f"range: the device has {self.blocks} blocks "
                             f"(0..{self.blocks - 1})")

    # -- queue pairs for concurrent callers ---------------------------------------------
    def _claim(self) -> QueuePair:
        """A queue pair for one call, its lock held: the first idle pair from a rotating
        start (taking a pair's lock is the claim: no lock around the search), else
        `_claim_slow`."""
        pairs = self._pairs
        n = len(pairs)
        first = self._next_qp % n  # a hint: a lost update between threads does no harm
        self._next_qp = first + 1
        for k in range(n):
            qp = pairs[(first + k) % n]
            if qp.lock.try_acquire():
                return qp
        return self._claim_slow()

    def _claim_slow(self) -> QueuePair:
        """Every pair is busy: under the pick lock, create a pair while the controller
        granted more (§5.21.1.7), else wait for a busy one (round-robin), shared."""
        with self._pick_lock:
            for qp in self._pairs:  # one may have become idle, or been created meanwhile
                if qp.lock.try_acquire():
                    return qp
            if len(self._pairs) < self.max_pairs:
                qp = self._create_pair()
                qp.lock.acquire()  # new, so free: no wait
                return qp
            qp = self._pairs[self._next_shared % len(self._pairs)]
            self._next_shared += 1
        qp.lock.acquire()  # a bounded wait, outside the pick lock
        return qp

    def _io(self, opcode: int, blocks, iovas, batches: int = 0) -> None:
        """Do the I/O on a claimed queue pair (see Concurrency); count it on the pair.
        The fast path tries the next pair in turn, then `_claim` looks for another."""
        pairs = self._pairs
        qp = pairs[self._next_qp % len(pairs)]
        if qp.lock.try_acquire():
            self._next_qp += 1
        else:
            qp = self._claim()
        try:
            self._io_on(qp, opcode, blocks, iovas)
        finally:  # (a failed call panics: its incarnation's counters go with it)
            qp.done(opcode == READ, len(blocks), batches)

    def _io_on(self, qp: QueuePair, opcode: int, blocks, iovas) -> None:
        """Submit and complete the requests, a queue-full chunk at a time: one command per
        block, or, where blocks are consecutive, one command per run (request merging:
        looked for when the batch starts or ends with a run, so a random batch pays two
        scalar compares)."""
        n = len(blocks)
        # every request buffer has the same layout, which the heap places on a page
        # boundary (objects of >= 4 KiB), so checking one checks all
        if int(iovas[0]) & 0xFFF:
            raise NvmeError("a request buffer is not 4096-aligned: cannot use it as PRP1")
        breaks = None
        if n > 1 and (blocks[1] == blocks[0] + 1 or blocks[-1] == blocks[-2] + 1):
            # an end of the batch is a run: look for runs (a random batch skips this)
            breaks = blocks[1:] != blocks[:-1] + 1
        if n == 1 or (breaks is not None and n <= self.max_merge and not breaks.any()):
            qp.submit_run(opcode, self.nsid, iovas, int(blocks[0]))  # one block or one run
            status = qp.reap_one()
            if status:
                raise NvmeError(f"blocks {int(blocks[0])}..{int(blocks[-1])}: "
                                f"{_text(status)}", status)
            return
        if breaks is not None and not breaks.all():
            self._io_runs(qp, opcode, blocks, iovas, breaks)
            return
        for start in range(0, n, qp.room):
            stop = min(n, start + qp.room)
            if stop - start == n:  # the whole batch fits: no slicing
                qp.submit_io(opcode, self.nsid, iovas, blocks, 1)
            else:
                qp.submit_io(opcode, self.nsid, iovas[start:stop], blocks[start:stop], 1)
            status, _dw0 = qp.reap(stop - start)
            if status is not None:
                first = int(np.flatnonzero(status)[0])
                raise NvmeError(f"request {start + first}: block {int(blocks[start + first])}: "
                                f"{_text(int(status[first]))}", int(status[first]))

    def _io_runs(self, qp, opcode: int, blocks, iovas, breaks) -> None:
        """Merged I/O: runs of consecutive blocks become one command each, at most
        `max_merge` blocks (MDTS, §5.15.2.2) with the pages listed in a PRP list (§4.3)."""
        starts = np.flatnonzero(np.concatenate(([True], breaks)))
        lengths = np.diff(np.append(starts, len(blocks)))
        if int(lengths.max()) > self.max_merge:  # split long runs at max_merge blocks
            pieces = [np.arange(s, s + n, self.max_merge)
                      for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
            starts = np.concatenate(pieces)
            lengths = np.diff(np.append(starts, len(blocks)))
            lengths = np.minimum(lengths, self.max_merge)
        commands = len(starts)
        for first in range(0, commands, qp.room):
            last = min(commands, first + qp.room)
            qp.submit_runs(opcode, self.nsid, iovas, blocks, starts[first:last],
                           lengths[first:last])
            status, _dw0 = qp.reap(last - first)
            if status is not None:
                bad = first + int(np.flatnonzero(status)[0])
                request = int(starts[bad])
                raise NvmeError(f"request {request}: blocks {int(blocks[request])}.."
                                f"{int(blocks[request]) + int(lengths[bad]) - 1}: "
                                f"{_text(int(status[bad - first]))}", int(status[bad - first]))

    def read(self, block: int, data):
        blocks = np.array([block], dtype=np.int64)
        self._check_blocks(blocks)
        self._io(READ, blocks.astype(np.uint64), np.array([data.iova()], dtype=np.uint64))
        return data

    def write(self, block: int, data) -> None:
        # zero copy: the controller only reads the lent buffer (a Write's source, §6.15),
        # and the command completes before this call (and so the borrow) ends
        blocks = np.array([block], dtype=np.int64)
        self._check_blocks(blocks)
        self._io(WRITE, blocks.astype(np.uint64), np.array([data.iova()], dtype=np.uint64))

    def submit_and_poll(self, submit, collect, write: bool):
        room = collect.capacity - len(collect)
        # handle-free: one registry call, no RRef per request, which also gives the IOVAs
        batch, iovas = submit.take_batch_iovas(room, "data")
        taken = len(batch)
        if taken:
            blocks = batch.get("block")
            try:
                self._check_blocks(blocks)
            except InvalidRequest:
                submit.put_batch(batch)
                raise
            self._io(WRITE if write else READ, blocks, iovas, 1)
            collect.put_batch(batch, "data_len", BLOCK_SIZE)  # set and append: one call
        else:
            with self._pick_lock:
                self._empty += 1
        return (taken, submit, collect)

    def num_blocks(self) -> int:
        return self.blocks

    def stats(self) -> tuple:
        """Counted per pair by the call holding it: exact under concurrent callers."""
        pairs = self._pairs
        return (sum(qp.reads for qp in pairs), sum(qp.writes for qp in pairs),
                sum(qp.batches for qp in pairs) + self._empty)


def _text(status: int) -> str:
    from .regs import status_text

    return status_text(status)


def init(ctx, device) -> NvmeDriver:
    return NvmeDriver(ctx, device)
