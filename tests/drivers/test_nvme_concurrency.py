"""drivers/nvme with many concurrent callers (issue 12, item 1).

Several threads call the NVMe driver through one shadow at once, on the inline and the
threaded controller model, with and without injected panics. Each thread owns a range
of blocks and writes blocks carrying a checksum, the block number and a sequence
number (single `write`s, batches, runs of consecutive blocks that the driver merges);
every read (single `read`s and batches) must return exactly the thread's last
acknowledged write, and afterwards the media must hold every acknowledged write and
the heap must be back at its baseline. Before the fix, two callers shared a queue
pair's tail, head and phase without a lock: blocks held other blocks' data.

The queue-pair allocation itself (a pair of its own for each concurrent caller, up to
what the controller grants, then shared) is checked deterministically from one thread.
"""

from __future__ import annotations

import gc
import random
import threading
import zlib

import numpy as np
import pytest

from redleaf_lab.devices.sim_nvme import SimNvme
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow

THREADS = 6
PER_THREAD = 24  # blocks each thread owns
STEPS = 120  # operations per thread
BLOCKS = THREADS * PER_THREAD + 16
GENEROUS = ShadowPolicy(max_restarts=100_000, window_s=1.0, max_attempts=50, backoff_s=0.0)


def payload(block: int, seq: int) -> np.ndarray:
    """[block u64][seq u64][pseudo-random body][crc32 of everything before it]."""
    data = np.random.default_rng((block << 24) | seq).integers(0, 256, BLOCK_SIZE, np.uint8)
    data[:16] = np.array([block, seq], dtype="<u8").view(np.uint8)
    data[-4:] = np.array([zlib.crc32(data[:-4].tobytes())], "<u4").view(np.uint8)
    return data


class Caller:
    """One thread's deterministic mix of verified single and batched I/O on its blocks."""

    def __init__(self, bdev, blocks: range, seed: int) -> None:
        self.bdev = bdev
        self.blocks = blocks
        self.rng = random.Random(seed)
        self.acked: dict[int, int] = {}
        self.seq = 0

    def expect(self, data: np.ndarray, block: int) -> None:
        if block not in self.acked:
            assert not data.any(), f"block {block} was never written but is not zero"
            return
        got = np.frombuffer(data[:16].tobytes(), "<u8")
        assert (int(got[0]), int(got[1])) == (block, self.acked[block]), (
            f"block {block}: holds block {int(got[0])} seq {int(got[1])}, "
            f"expected seq {self.acked[block]}")
        assert zlib.crc32(data[:-4].tobytes()) == int(data[-4:].view("<u4")[0]), block
        assert np.array_equal(data, payload(block, self.acked[block]))

    def chosen(self) -> list[int]:
        if self.rng.random() < 0.3:  # a run of consecutive blocks: merged into one command
            n = self.rng.randint(2, 12)
            first = self.rng.randrange(self.blocks.start, self.blocks.stop - n + 1)
            return list(range(first, first + n))
        return self.rng.sample(self.blocks, self.rng.randint(1, 16))

    def step(self) -> None:
        op = self.rng.randrange(4)
        if op == 0:
            block = self.rng.choice(self.blocks)
            self.seq += 1
            self.bdev.write(block, RRef.new(Block, payload(block, self.seq)))
            self.acked[block] = self.seq
        elif op == 1:
            block = self.rng.choice(self.blocks)
            buf = self.bdev.read(block, RRef.new(Block, 0xEE))
            view = buf.readonly()
            self.expect(view, block)
            del view
        else:
            self.batch(self.chosen(), write=op == 2)

    def batch(self, blocks: list[int], write: bool) -> None:
        submit = RRefDeque.new(BlkReq, 32)
        refs, seqs = [], {}
        for block in blocks:
            req = RRef.new(BlkReq)
            view = req.array()
            view["block"] = block
            if write:
                self.seq += 1
                seqs[block] = self.seq
                view["data"] = payload(block, self.seq)
            else:
                view["data"] = 0xEE  # garbage the read must replace
            del view
            refs.append(req)
        submit.push_many(refs)
        taken, submit, collect = self.bdev.submit_and_poll(submit, RRefDeque.new(BlkReq, 32),
                                                           write)
        assert taken == len(blocks) and len(submit) == 0
        done = collect.pop_many()
        assert [int(r.readonly()["block"]) for r in done] == blocks  # order kept
        for req in done:
            view = req.readonly()
            assert int(view["data_len"]) == BLOCK_SIZE
            if not write:
                self.expect(view["data"], int(view["block"]))
            del view
        self.acked.update(seqs)

    def verify_all(self) -> None:
        for block in self.blocks:
            view = self.bdev.read(block, RRef.new(Block)).readonly()
            self.expect(view, block)
            del view


def _panic_until(kernel, stop: threading.Event, seed: int, limit: int) -> None:
    """Asynchronous panics at random points of whatever the driver is doing."""
    rng = random.Random(seed)
    for _ in range(limit):
        if stop.wait(rng.random() * 0.003):
            return
        kernel.panic("nvme", "async")


@pytest.mark.parametrize("max_ioq", [16, 3], ids=["own-pairs", "shared-pairs"])
@pytest.mark.parametrize("faults", [False, True], ids=["no-faults", "faults"])
@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
def test_many_threads_through_a_shadow_keep_every_block_right(kernel, threaded, faults, max_ioq):
    """6 callers: with 16 I/O queues granted each gets a pair of its own; with 3 they
    share (the model grants 3 pairs)."""
    device = SimNvme(kernel.heap, blocks=BLOCKS, threaded=threaded, max_ioq=max_ioq)
    try:
        baseline = kernel.heap.stats().live_objects
        kernel.load("nvme", device=device)
        shadow = make_shadow(kernel, "nvme", GENEROUS)
        callers = [Caller(shadow, range(16 + i * PER_THREAD, 16 + (i + 1) * PER_THREAD), i)
                   for i in range(THREADS)]
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS)

        def run(caller: Caller) -> None:
            try:
                start.wait()
                for _ in range(STEPS):
                    caller.step()
                caller.verify_all()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        stop = threading.Event()
        panicker = threading.Thread(target=_panic_until, args=(kernel, stop, 5, 40))
        if faults:
            kernel.faults.probability("nvme", 0.05, seed=3)
            panicker.start()
        threads = [threading.Thread(target=run, args=(c,)) for c in callers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        stop.set()
        if faults:
            panicker.join(timeout=10)
            kernel.faults.clear("nvme")
        assert not any(t.is_alive() for t in threads), "a caller hung"
        assert not errors, repr(errors[0])
        assert shadow.shadow_stats.gave_up == 0
        assert (kernel.crashes("nvme") > 0) == faults
        assert len(kernel.domain("nvme").impl._pairs) <= min(max_ioq, 8)
        media = device.media().reshape(-1, BLOCK_SIZE)
        for caller in callers:  # the controller itself holds every acknowledged write
            for block in caller.blocks:
                caller.expect(media[block], block)
            caller.verify_all()  # and the driver, single-threaded now, still reads them
        kernel.stop("nvme")  # reclaims the driver's queues
        del threads, callers
        gc.collect()
        assert kernel.heap.stats().live_objects == baseline  # no request leaked
    finally:
        kernel.shutdown()
        device.close()


def test_each_concurrent_caller_gets_its_own_queue_pair_up_to_the_limit(kernel):
    """`_claim` takes an idle pair, creates one (Create I/O CQ/SQ) while all are busy and
    the controller grants more, and past that limit waits for a busy one: the caller
    that cannot get a pair of its own shares one, and no pair beyond the limit appears."""
    device = SimNvme(kernel.heap, blocks=BLOCKS, max_ioq=4)
    try:
        kernel.load("nvme", device=device)
        drv = kernel.domain("nvme").impl
        assert len(drv._pairs) == 2 and drv.max_pairs == 4  # two at init; the model grants 4
        held = [drv._claim() for _ in range(4)]
        assert sorted(qp.qid for qp in held) == [1, 2, 3, 4]  # one each: two were created
        got = []
        waiter = threading.Thread(target=lambda: got.append(drv._claim()))
        waiter.start()  # all four are held: it waits for one
        for qp in held:
            qp.lock.release()
        waiter.join(timeout=60)
        assert not waiter.is_alive() and len(got) == 1 and got[0] in held
        got[0].lock.release()
        assert len(drv._pairs) == 4  # shared, not a fifth
        # the pairs created on demand do I/O like the others, and count it
        caller = Caller(kernel.domain("nvme").proxy, range(0, 32), seed=1)
        for index in range(4):
            drv._next_qp = index
            caller.batch([1, 2, 3, 9, 20], write=True)
            caller.batch([3, 20, 1, 9, 2], write=False)
        caller.verify_all()
        assert all(qp.completed > 0 for qp in drv._pairs)
        assert drv.stats() == (20 + 32, 20, 8)  # blocks read, written; batches
    finally:
        kernel.shutdown()
        device.close()
