"""midcrash: a block driver that panics in the middle of a batch, for the rescue tests.

Like membdev, but when its `trip` capability fires (the test decides which calls; the
capability outlives incarnations), `submit_and_poll` takes half of the requests out of
`submit` and panics: when it dies, half of the call's requests are held by the driver
itself and half are still nested in the `submit` deque it now owns. A shadow must take
both halves back, in order, without copying.
"""

import numpy as np

from redleaf_lab.api import BLOCK_SIZE


class MidCrash:
    def __init__(self, store, trip) -> None:
        self._store = store
        self._trip = trip

    def read(self, block: int, data):
        view = data.array()
        self._store.read_into(block, view)
        del view
        return data

    def write(self, block: int, data) -> None:
        self._store.write_from(block, data.array())

    def submit_and_poll(self, submit, collect, write: bool):
        if self._trip.fire():
            held = submit.take_batch(len(submit) // 2)
            raise RuntimeError(f"midcrash: panic holding {len(held)} of the requests")
        batch = submit.take_batch(collect.capacity - len(collect))
        taken = len(batch)
        blocks = batch.get("block")
        if write:
            self._store.write_many(blocks, batch.get("data"))
        else:
            landed = np.empty((taken, BLOCK_SIZE), dtype=np.uint8)
            self._store.read_many(blocks, landed)
            batch.set("data", landed)
        batch.set("data_len", BLOCK_SIZE)
        collect.put_batch(batch)
        return (taken, submit, collect)

    def num_blocks(self) -> int:
        return self._store.num_blocks

    def stats(self) -> tuple:
        return (0, 0, 0)


def init(ctx, store, trip) -> MidCrash:
    return MidCrash(store, trip)
