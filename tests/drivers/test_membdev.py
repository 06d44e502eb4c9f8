"""membdev and MemStore: single-block and batched I/O, bad block numbers, restarts.

A bad block number is a caller error the driver reports as an error value
(InvalidRequest, checked before any data moves): it crosses the proxy and the
driver keeps running.
The store is a capability, so data written before a crash is there after a
restart.
"""

from __future__ import annotations

import numpy as np
import pytest

from redleaf_lab import InvalidRequest, RpcError
from redleaf_lab.devices import MemStore
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque

BLOCKS = 64


@pytest.fixture
def store() -> MemStore:
    return MemStore(BLOCKS)


@pytest.fixture
def bdev(kernel, store):
    return kernel.load("membdev", store=store)


def pattern(block: int, salt: int = 0) -> np.ndarray:
    return ((np.arange(BLOCK_SIZE) * (block + 3) + salt) % 251).astype(np.uint8)


def batch_of(blocks: list[int], salt: int = 0, capacity: int = 32) -> RRefDeque:
    submit = RRefDeque.new(BlkReq, capacity)
    requests = []
    for block in blocks:
        req = RRef.new(BlkReq)
        view = req.array()
        view["block"] = block
        view["data"] = pattern(block, salt)
        del view
        requests.append(req)
    assert submit.push_many(requests) == []
    return submit


# -- MemStore ----------------------------------------------------------------------------
def test_memstore_single_and_batched_copies(store):
    store.write_from(5, pattern(5))
    out = np.zeros(BLOCK_SIZE, np.uint8)
    store.read_into(np.int64(5), out)
    assert np.array_equal(out, pattern(5))
    blocks = np.array([1, 63, 0])
    store.write_many(blocks, np.stack([pattern(b, 9) for b in blocks]))
    got = np.empty((3, BLOCK_SIZE), np.uint8)
    store.read_many(blocks, got)
    assert all(np.array_equal(got[i], pattern(b, 9)) for i, b in enumerate(blocks))
    assert store.num_blocks == BLOCKS and store.nbytes == BLOCKS * BLOCK_SIZE


@pytest.mark.parametrize("block", [-1, BLOCKS, 10**12])
def test_memstore_rejects_out_of_range_blocks(store, block):
    with pytest.raises(ValueError, match=rf"block {block} is out of range: the device has 64"):
        store.read_into(block, np.zeros(BLOCK_SIZE, np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        store.write_many([0, block], np.zeros((2, BLOCK_SIZE), np.uint8))


def test_memstore_batch_is_all_or_nothing(store):
    with pytest.raises(ValueError, match=r"block 64 \(request 1\)"):
        store.write_many([3, 64], np.full((2, BLOCK_SIZE), 7, np.uint8))
    assert not store.snapshot().any()


@pytest.mark.parametrize("bad", [1.0, "3", True, None])
def test_memstore_rejects_non_integer_blocks(store, bad):
    with pytest.raises(ValueError, match="must be an integer"):
        store.write_from(bad, np.zeros(BLOCK_SIZE, np.uint8))


def test_memstore_checks_buffer_shapes(store):
    with pytest.raises(ValueError, match="uint8 array of shape"):
        store.read_into(0, np.zeros(BLOCK_SIZE, np.int32))
    with pytest.raises(ValueError, match="uint8 array of shape"):
        store.write_many([0, 1], np.zeros((3, BLOCK_SIZE), np.uint8))
    with pytest.raises(ValueError, match="positive number of blocks"):
        MemStore(0)


# -- the driver, single blocks -----------------------------------------------------------------
def test_write_then_read_moves_the_buffer_and_back(kernel, bdev, store):
    src = RRef.new(Block, pattern(7))
    assert bdev.write(7, src) is None
    assert src.owner() == 1  # a write only borrows
    assert np.array_equal(store.snapshot()[7], pattern(7))
    out = bdev.read(7, RRef.new(Block))
    assert out.owner() == 1 and np.array_equal(out.readonly(), pattern(7))
    assert bdev.num_blocks() == BLOCKS
    assert bdev.stats() == (1, 1, 0)


@pytest.mark.parametrize("block", [BLOCKS, -1, 10**9])
def test_bad_block_number_is_an_error_value_and_the_driver_lives(kernel, bdev, block):
    with pytest.raises(InvalidRequest, match=rf"block {block} \(request 0\) is out of range: "
                                              "the device has 64 blocks"):
        bdev.read(block, RRef.new(Block))
    with pytest.raises(InvalidRequest):
        bdev.write(block, RRef.new(Block))
    assert kernel.domain("membdev").state == "running" and kernel.crashes("membdev") == 0
    assert bdev.num_blocks() == BLOCKS


def test_store_survives_a_driver_restart(kernel, bdev):
    bdev.write(3, RRef.new(Block, pattern(3)))
    kernel.panic("membdev")
    with pytest.raises(RpcError):
        bdev.num_blocks()
    fresh = kernel.restart("membdev")
    assert np.array_equal(fresh.read(3, RRef.new(Block)).readonly(), pattern(3))
    assert fresh.stats() == (1, 0, 0)  # counters are per incarnation


# -- the driver, batches ------------------------------------------------------------------------
def test_batched_write_then_read(kernel, bdev, store):
    blocks = list(range(40, 64)) + list(range(8))
    taken, submit, collect = bdev.submit_and_poll(batch_of(blocks, 5),
                                                  RRefDeque.new(BlkReq, 32), True)
    assert taken == 32 and len(submit) == 0 and len(collect) == 32
    done = collect.pop_many()
    assert all(int(r.readonly()["data_len"]) == BLOCK_SIZE for r in done)
    assert all(np.array_equal(store.snapshot()[b], pattern(b, 5)) for b in blocks)

    reads = batch_of(blocks, 99)  # stale contents that the read must overwrite
    taken, reads, collect = bdev.submit_and_poll(reads, collect, False)
    assert taken == 32
    for req in collect.pop_many():
        view = req.readonly()
        assert np.array_equal(view["data"], pattern(int(view["block"]), 5))
        del view
    assert bdev.stats() == (32, 32, 2)


def test_batch_takes_only_what_collect_has_room_for(kernel, bdev):
    collect = batch_of([1, 2, 3], capacity=5)  # 2 free slots
    taken, submit, collect = bdev.submit_and_poll(batch_of([10, 11, 12, 13]), collect, True)
    assert (taken, len(submit), len(collect)) == (2, 2, 5)
    order = [int(r.readonly()["block"]) for r in collect.pop_many()]
    assert order == [1, 2, 3, 10, 11]


def test_batch_with_a_bad_block_writes_nothing(kernel, bdev, store):
    baseline = kernel.heap.stats().live_objects
    with pytest.raises(InvalidRequest, match=r"block 999 \(request 2\) is out of range"):
        bdev.submit_and_poll(batch_of([1, 2, 999]), RRefDeque.new(BlkReq, 32), True)
    assert not store.snapshot().any()
    assert kernel.domain("membdev").state == "running"
    assert kernel.heap.stats().live_objects == baseline  # the lost batch was freed


def test_empty_batch(kernel, bdev):
    taken, submit, collect = bdev.submit_and_poll(RRefDeque.new(BlkReq, 32),
                                                  RRefDeque.new(BlkReq, 32), False)
    assert (taken, len(submit), len(collect)) == (0, 0, 0)
    assert bdev.stats() == (0, 0, 1)


def test_crash_reclaims_the_requests_in_flight(kernel, bdev):
    baseline = kernel.heap.stats().live_objects
    submit = batch_of([1, 2, 3])
    kernel.faults.next_call("membdev")
    with pytest.raises(RpcError):
        bdev.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), False)
    del submit
    assert kernel.heap.stats().live_objects == baseline
