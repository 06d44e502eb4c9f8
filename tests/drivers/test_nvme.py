"""drivers/nvme on the sim NVMe model: init, identify, verified I/O across queue wrap,
full queues, out-of-range blocks, and recovery behind a shadow under panics (periodic,
random, asynchronous) and controller fatal errors (CSTS.CFS), with data verified by
checksum and sequence number and the heap back at its baseline afterwards.
"""

from __future__ import annotations

import gc
import random
import threading
import zlib

import numpy as np
import pytest

from redleaf_lab import InvalidRequest
from redleaf_lab.devices.sim_nvme import REG_CC, REG_CSTS, SimNvme
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow

BLOCKS = 512
GENEROUS = ShadowPolicy(max_restarts=100_000, window_s=1.0, max_attempts=50, backoff_s=0.0)


@pytest.fixture(params=["inline", "thread"])
def dev(kernel, request):
    device = SimNvme(kernel.heap, blocks=BLOCKS, threaded=request.param == "thread")
    yield device
    device.close()


def payload(block: int, seq: int) -> np.ndarray:
    data = np.random.default_rng((block << 20) | seq).integers(0, 256, BLOCK_SIZE, np.uint8)
    data[:16] = np.array([block, seq], dtype="<u8").view(np.uint8)
    data[-4:] = np.array([zlib.crc32(data[:-4].tobytes())], "<u4").view(np.uint8)
    return data


def batch(blocks, seqs=None, capacity=None) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, capacity or max(1, len(blocks)))
    refs = []
    for i, block in enumerate(blocks):
        ref = RRef.new(BlkReq)
        view = ref.array()
        view["block"] = block
        if seqs is not None:
            view["data"] = payload(block, seqs[i])
        del view
        refs.append(ref)
    dq.push_many(refs)
    return dq


def test_init_and_identify(kernel, dev):
    bdev = kernel.load("nvme", device=dev)
    model, serial, nsid, blocks, pairs, depth = kernel.domain("nvme").impl.identify()
    assert model == "RedLeaf Lab NVMe model" and serial == "RLLAB-0001"
    assert (nsid, blocks, pairs, depth) == (1, BLOCKS, 2, 256)
    assert bdev.num_blocks() == BLOCKS
    assert dev.read32(REG_CSTS) & 3 == 1 and dev.read32(REG_CC) & 1


def test_request_buffers_are_page_aligned(kernel):
    refs = [RRef.new(BlkReq) for _ in range(64)]
    assert BlkReq.dtype.fields["data"][1] == 0
    assert all(r.iova() % 4096 == 0 for r in refs)


def test_single_block_read_write(kernel, dev):
    bdev = kernel.load("nvme", device=dev)
    bdev.write(7, RRef.new(Block, payload(7, 1)))
    assert np.array_equal(dev.media()[7 * 4096 : 8 * 4096], payload(7, 1))
    assert np.array_equal(bdev.read(7, RRef.new(Block)).readonly(), payload(7, 1))
    assert bdev.stats() == (1, 1, 0)


def test_batches_across_queue_wrap_and_full_queue(kernel, dev):
    bdev = kernel.load("nvme", device=dev)
    drv = kernel.domain("nvme").impl
    rng = random.Random(3)
    acked: dict[int, int] = {}
    collect = RRefDeque.new(BlkReq, 300)  # more than a queue holds (255): split in two
    for seq in range(1, 7):
        blocks = rng.sample(range(BLOCKS), 300 if seq % 2 == 0 else 40)
        taken, _s, collect = bdev.submit_and_poll(batch(blocks, [seq] * len(blocks)),
                                                  collect, True)
        assert taken == len(blocks)
        for r in collect.pop_many():
            assert int(r.readonly()["data_len"]) == BLOCK_SIZE
        acked.update(dict.fromkeys(blocks, seq))
    blocks = list(acked)  # not sorted: no two neighbours are consecutive, nothing merges
    taken, _s, collect = bdev.submit_and_poll(batch(blocks, capacity=len(blocks)),
                                              RRefDeque.new(BlkReq, len(blocks)), False)
    assert taken == len(blocks)
    for r in collect.pop_many():
        view = r.readonly()
        block = int(view["block"])
        assert np.array_equal(view["data"], payload(block, acked[block]))
        del view
    assert all(qp.completed > 256 for qp in drv._pairs)  # both queues wrapped


def test_consecutive_blocks_merge_into_prp_list_commands(kernel, dev):
    """Runs of consecutive blocks become one command each (PRP2 = the second page for a
    run of two, a PRP list for longer runs; runs longer than max_merge are split), and
    every block still lands in and comes back from the right request."""
    bdev = kernel.load("nvme", device=dev)
    drv = kernel.domain("nvme").impl
    runs = [range(10, 11), range(20, 22), range(30, 33),
            range(40, 40 + drv.max_merge + 5), range(430, 470)]
    blocks = [b for run in runs for b in run]
    commands = 1 + 1 + 1 + 2 + 1
    before = sum(qp.completed for qp in drv._pairs)
    taken, _s, collect = bdev.submit_and_poll(batch(blocks, [7] * len(blocks)),
                                              RRefDeque.new(BlkReq, len(blocks)), True)
    assert taken == len(blocks)
    assert sum(qp.completed for qp in drv._pairs) - before == commands
    media = dev.media().reshape(-1, BLOCK_SIZE)
    for block in blocks:
        assert np.array_equal(media[block], payload(block, 7)), f"block {block} misplaced"
    collect.pop_many()
    before = sum(qp.completed for qp in drv._pairs)
    taken, _s, collect = bdev.submit_and_poll(batch(blocks, capacity=len(blocks)),
                                              RRefDeque.new(BlkReq, len(blocks)), False)
    assert sum(qp.completed for qp in drv._pairs) - before == commands
    for block, req in zip(blocks, collect.pop_many(), strict=True):
        view = req.readonly()
        assert int(view["block"]) == block
        assert np.array_equal(view["data"], payload(block, 7))
        del view


@pytest.mark.parametrize("lba_shift", [9, 10, 12], ids=["512B", "1KiB", "4KiB"])
@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
def test_lba_formats_from_512_to_4096_bytes(kernel, lba_shift, threaded):
    """A 4 KiB block is 2^(12 - LBADS) LBAs: SLBA and NLB scale, for single blocks, random
    batches and merged runs (PRP lists), so block b lands at byte b * 4096 of the media
    whatever the format; a namespace whose size is not a whole number of blocks ends at
    the last whole one."""
    per_block = 1 << (12 - lba_shift)
    device = SimNvme(kernel.heap, blocks=BLOCKS * per_block + per_block - 1,
                     lba_shift=lba_shift, threaded=threaded)
    try:
        bdev = kernel.load("nvme", device=device)
        drv = kernel.domain("nvme").impl
        assert drv.lba_size == 1 << lba_shift and bdev.num_blocks() == BLOCKS
        bdev.write(BLOCKS - 1, RRef.new(Block, payload(BLOCKS - 1, 1)))
        rng = random.Random(lba_shift)
        runs = list(range(10, 14)) + list(range(40, 40 + drv.max_merge + 3))
        scattered = rng.sample(range(300, BLOCKS - 1), 100)
        blocks = runs + scattered
        taken, _s, collect = bdev.submit_and_poll(batch(blocks, [2] * len(blocks)),
                                                  RRefDeque.new(BlkReq, len(blocks)), True)
        assert taken == len(blocks)
        collect.pop_many()
        media = device.media()[: BLOCKS * BLOCK_SIZE].reshape(-1, BLOCK_SIZE)
        for block in blocks:
            assert np.array_equal(media[block], payload(block, 2)), f"block {block} misplaced"
        assert np.array_equal(media[BLOCKS - 1], payload(BLOCKS - 1, 1))
        assert device.stats().bytes_written == (len(blocks) + 1) * BLOCK_SIZE
        for order in (blocks, scattered):  # merged runs, then one command per block
            taken, _s, collect = bdev.submit_and_poll(batch(order, capacity=len(order)),
                                                      RRefDeque.new(BlkReq, len(order)), False)
            for block, req in zip(order, collect.pop_many(), strict=True):
                view = req.readonly()
                assert np.array_equal(view["data"], payload(block, 2)), block
                del view
        last = bdev.read(BLOCKS - 1, RRef.new(Block)).readonly()
        assert np.array_equal(last, payload(BLOCKS - 1, 1))
        with pytest.raises(InvalidRequest, match=f"the device has {BLOCKS} blocks"):
            bdev.read(BLOCKS, RRef.new(Block))
    finally:
        kernel.shutdown()
        device.close()


def test_out_of_range_block_is_a_clear_error(kernel, dev):
    bdev = kernel.load("nvme", device=dev)
    drv = kernel.domain("nvme").impl
    submit = batch([1, BLOCKS + 5, 2], [1, 1, 1])
    with pytest.raises(InvalidRequest, match=rf"block {BLOCKS + 5} \(request 1\) is out of range: "
                                         rf"the device has {BLOCKS} blocks"):
        drv.submit_and_poll(submit, RRefDeque.new(BlkReq, 3), True)
    assert len(submit) == 3 and not dev.media().any()  # nothing moved or written
    taken, _s, _c = drv.submit_and_poll(batch([4], [2]), RRefDeque.new(BlkReq, 1), True)
    assert taken == 1  # the driver still works
    for bad in (BLOCKS, -1):  # through the proxy: an error value, the driver lives
        with pytest.raises(InvalidRequest, match="out of range"):
            bdev.read(bad, RRef.new(Block))
    assert kernel.domain("nvme").state == "running" and bdev.num_blocks() == BLOCKS


@pytest.mark.parametrize("blocks", [[BLOCKS], [3, BLOCKS + 5, 7], [BLOCKS - 1, BLOCKS]])
def test_a_command_the_controller_fails_names_its_status(kernel, dev, blocks):
    """The driver's own range check is bypassed (it believes the namespace is larger), so
    the controller itself fails the command: single block, batch, and a merged run."""
    from redleaf_lab import RpcError

    bdev = kernel.load("nvme", device=dev)
    kernel.domain("nvme").impl.blocks = BLOCKS + 64
    with pytest.raises(RpcError) as err:
        bdev.submit_and_poll(batch(blocks), RRefDeque.new(BlkReq, len(blocks)), False)
    assert "LBA Out of Range" in str(err.value.__cause__ or err.value)


def test_a_dead_driver_cannot_write_the_controller_its_successor_drives(kernel, dev):
    """The kernel binds the device to the driver domain it gives it to and revokes it on
    a crash: a late register write from the dead incarnation (its thread not yet
    unwound) is refused, so it cannot ring a doorbell of the re-initialized controller."""
    from redleaf_lab.errors import DeviceRevokedError
    from redleaf_lab.kernel.context import thread_state

    kernel.load("nvme", device=dev)
    first = kernel.domain("nvme")
    kernel.panic("nvme")
    kernel.restart("nvme")
    second = kernel.domain("nvme")
    stack = thread_state().stack
    stack.append(first)  # run as the dead incarnation's leftover thread would
    try:
        with pytest.raises(DeviceRevokedError, match=f"belongs to domain {second.id}"):
            dev.write32(0x1000 + 8, 1)  # an I/O queue's doorbell
    finally:
        stack.pop()
    dev.write32(REG_CC, dev.read32(REG_CC))  # trusted root code may still write
    ident = kernel.domain("nvme").impl.identify()  # the successor is undisturbed
    assert ident[3] == BLOCKS and second.state == "running"


def test_crash_between_take_and_put_reclaims_the_batch(kernel, dev):
    """The controller dies mid-batch: the requests the driver took out of `submit` (a
    handle-free batch, owned by the driver) are reclaimed with the driver's heap."""
    from redleaf_lab import RpcError
    from redleaf_lab._core.heap import RECLAIMED

    baseline = kernel.heap.stats().live_objects
    bdev = kernel.load("nvme", device=dev)
    submit = batch([1, 2, 3, 4], [1, 1, 1, 1], capacity=4)
    collect = RRefDeque.new(BlkReq, 3)  # room for 3: one request stays in `submit`
    taken_ids = [int(i) for i in submit._slots[:3]]
    dev.fatal()
    with pytest.raises(RpcError, match="nvme"):
        bdev.submit_and_poll(submit, collect, True)
    assert kernel.domain("nvme").state != "running"
    assert [kernel.heap.free_reason(i) for i in taken_ids] == [RECLAIMED] * 3
    del submit, collect
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline


class Workload:
    """Verified writes/reads of blocks with checksums and sequence numbers."""

    def __init__(self, bdev, dev: SimNvme, seed: int) -> None:
        self.bdev, self.dev = bdev, dev
        self.rng = random.Random(seed)
        self.acked: dict[int, int] = {}
        self.seq = 0

    def step(self) -> None:
        blocks = self.rng.sample(range(64), self.rng.randint(1, 16))
        if self.rng.random() < 0.5:
            self.seq += 1
            seqs = [self.seq] * len(blocks)
            taken, _s, collect = self.bdev.submit_and_poll(batch(blocks, seqs),
                                                           RRefDeque.new(BlkReq, 16), True)
            assert taken == len(blocks) and len(collect) == taken
            self.acked.update(dict.fromkeys(blocks, self.seq))
        else:
            taken, _s, collect = self.bdev.submit_and_poll(batch(blocks),
                                                           RRefDeque.new(BlkReq, 16), False)
            assert taken == len(blocks)
            for r in collect.pop_many():
                view = r.readonly()
                self.check(view["data"], int(view["block"]))
                del view

    def check(self, data: np.ndarray, block: int) -> None:
        if block not in self.acked:
            assert not data.any(), f"block {block} never written but not zero"
            return
        assert zlib.crc32(data[:-4].tobytes()) == int(data[-4:].view("<u4")[0]), block
        assert np.array_equal(data, payload(block, self.acked[block])), f"block {block} stale"

    def verify_media(self) -> None:
        for block in range(64):
            self.check(self.dev.media()[block * 4096 : (block + 1) * 4096], block)


@pytest.mark.slow
def test_recovery_under_500_crashes_with_verified_data(kernel, dev):
    kernel.load("nvme", device=dev)
    shadow = make_shadow(kernel, "nvme", GENEROUS)
    baseline = kernel.heap.stats().live_objects
    work = Workload(shadow, dev, seed=11)
    modes = ["periodic", "random", "async", "cfs"]
    timers = []
    for i in range(640):
        mode = modes[i % 4]
        if mode == "periodic":
            kernel.faults.next_call("nvme")
        elif mode == "random":
            kernel.faults.probability("nvme", 0.7, seed=i)
        elif mode == "async":  # from another thread, at whatever point the driver is at
            timer = threading.Timer(0.0001 * (i % 7), kernel.panic, ("nvme", "async"))
            timer.start()
            timers.append(timer)
        else:
            dev.fatal_after(random.Random(i).randint(1, 8))
        work.step()
        kernel.faults.clear("nvme")
        dev.fatal_after(0)
        if mode == "async":
            timers.pop().join()
    for _ in range(20):
        work.step()
    assert kernel.crashes("nvme") >= 500, kernel.crashes("nvme")
    work.verify_media()
    gc.collect()
    assert kernel.heap.stats().live_objects == baseline
