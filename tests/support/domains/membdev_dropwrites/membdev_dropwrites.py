"""Test driver: a membdev that silently drops writes (for the demo's read and media checks).

Reads work like `drivers/membdev`; a write is acknowledged (the request comes back
with `data_len` set to a full block) but nothing reaches the store. The read-back
and the media check must both see the acknowledged writes missing.
"""

import numpy as np

from redleaf_lab.api import BLOCK_SIZE


class DropWritesBDev:
    def __init__(self, store) -> None:
        self._store = store

    def read(self, block: int, data):
        view = data.array()
        self._store.read_into(block, view)
        del view
        return data

    def write(self, block: int, data) -> None:
        self._store.check_block(block)  # the bug: checked, acknowledged, never stored

    def submit_and_poll(self, submit, collect, write: bool):
        batch = submit.take_batch(collect.capacity - len(collect))
        taken = len(batch)
        if taken:
            blocks = self._store.check_blocks(batch.get("block"))
            if not write:
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


def init(ctx, store) -> DropWritesBDev:
    return DropWritesBDev(store)
