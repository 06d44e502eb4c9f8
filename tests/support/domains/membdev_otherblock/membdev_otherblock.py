"""Test driver: a membdev whose reads return the next block's data (for the demo's read check).

Writes land where they should; a read of block b fills the buffer with block
b + 1 (modulo the device size) and reports success, and keeps the request's
`block` field as the caller set it. Only a check that knows which block each
stamp belongs to catches it.
"""

import numpy as np

from redleaf_lab.api import BLOCK_SIZE


class OtherBlockBDev:
    def __init__(self, store) -> None:
        self._store = store

    def _neighbour(self, blocks):
        return (blocks + 1) % self._store.num_blocks

    def read(self, block: int, data):
        view = data.array()
        self._store.read_into(int(self._neighbour(np.int64(block))), view)
        del view
        return data

    def write(self, block: int, data) -> None:
        self._store.write_from(block, data.array())

    def submit_and_poll(self, submit, collect, write: bool):
        batch = submit.take_batch(collect.capacity - len(collect))
        taken = len(batch)
        if taken:
            blocks = self._store.check_blocks(batch.get("block"))
            if write:
                self._store.write_many(blocks, batch.get("data"))
            else:
                landed = np.empty((taken, BLOCK_SIZE), dtype=np.uint8)
                self._store.read_many(self._neighbour(blocks), landed)  # the bug
                batch.set("data", landed)
            batch.set("data_len", BLOCK_SIZE)
            collect.put_batch(batch)
        return (taken, submit, collect)

    def num_blocks(self) -> int:
        return self._store.num_blocks

    def stats(self) -> tuple:
        return (0, 0, 0)


def init(ctx, store) -> OtherBlockBDev:
    return OtherBlockBDev(store)
