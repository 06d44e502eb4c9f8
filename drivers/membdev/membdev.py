"""membdev: an in-memory block device driver domain (RedLeaf's memdisk).

Interface: `BDev` (redleaf_lab.interfaces.bdev): single-block `read`/`write`
and the batched `submit_and_poll`. The data lives in the `store` capability (a
trusted `MemStore` created by whoever loads the driver), not in the domain: a
crash reclaims the driver's heap objects and its counters, but the kernel hands
the same store to the restarted incarnation, so every completed write is still
there.

Ownership: `read` gets the caller's buffer moved in and moves it back filled;
`write` only borrows its buffer. `submit_and_poll` owns both deques for the
duration of the call: it takes the requests out as one handle-free batch
(RRefDeque.take_batch: one registry call, no handle per request), reads their
block numbers and data with one registry gather each (or scatters the data
read), does the I/O with one store gather or scatter, and puts the batch onto
`collect` in one call: no Python work per request.

Errors: a bad block number is reported as InvalidRequest (an error value: it
crosses the proxy and the driver keeps running), checked before any data moves.
In `submit_and_poll` the deques were moved in, so the caller loses that batch.

Concurrency: any number of callers at once (the BDev contract). A call keeps all its
state in locals and in the requests it was handed; the store copies distinct blocks
independently. The three counters are statistics, incremented without a lock.
"""

import numpy as np

from redleaf_lab.api import BLOCK_SIZE, InvalidRequest


class MemBDev:
    def __init__(self, ctx, store) -> None:
        self._ctx = ctx
        self._store = store
        self._reads = 0
        self._writes = 0
        self._batches = 0

    def _check(self, blocks) -> None:
        try:
            self._store.check_blocks(blocks)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def read(self, block: int, data):
        self._check(np.array([block], dtype=np.int64))
        view = data.array()
        self._store.read_into(block, view)
        del view
        self._reads += 1
        return data

    def write(self, block: int, data) -> None:
        self._check(np.array([block], dtype=np.int64))
        self._store.write_from(block, data.array())
        self._writes += 1

    def submit_and_poll(self, submit, collect, write: bool):
        room = collect.capacity - len(collect)
        batch = submit.take_batch(room)  # handle-free: one registry call, no RRef per request
        taken = len(batch)
        if taken:
            blocks = batch.get("block")
            try:
                self._check(blocks)
            except InvalidRequest:
                submit.put_batch(batch)
                raise
            if write:
                self._store.write_many(blocks, batch.get("data"))  # one gather from the heap
                self._writes += taken
            else:
                landed = np.empty((taken, BLOCK_SIZE), dtype=np.uint8)
                self._store.read_many(blocks, landed)
                batch.set("data", landed)  # one scatter into the heap
                self._reads += taken
            batch.set("data_len", BLOCK_SIZE)
            collect.put_batch(batch)
        self._batches += 1
        return (taken, submit, collect)

    def num_blocks(self) -> int:
        return self._store.num_blocks

    def stats(self) -> tuple:
        return (self._reads, self._writes, self._batches)


def init(ctx, store) -> MemBDev:
    return MemBDev(ctx, store)
