"""Test driver: a membdev whose reads do nothing (for the demo's read check).

It writes like `drivers/membdev`, but `read` and the read side of
`submit_and_poll` hand the caller's buffers back untouched and report success.
A read check that compares against what the buffers held before the read (the
old demo's mixed mode) cannot tell it from a working driver; one that reads
into poisoned buffers must.
"""

from redleaf_lab.api import BLOCK_SIZE


class NoReadBDev:
    def __init__(self, store) -> None:
        self._store = store

    def read(self, block: int, data):
        return data  # the bug: nothing is read

    def write(self, block: int, data) -> None:
        self._store.write_from(block, data.array())

    def submit_and_poll(self, submit, collect, write: bool):
        batch = submit.take_batch(collect.capacity - len(collect))
        taken = len(batch)
        if taken:
            blocks = self._store.check_blocks(batch.get("block"))
            if write:
                self._store.write_many(blocks, batch.get("data"))
            batch.set("data_len", BLOCK_SIZE)  # claims a full block was transferred
            collect.put_batch(batch)
        return (taken, submit, collect)

    def num_blocks(self) -> int:
        return self._store.num_blocks

    def stats(self) -> tuple:
        return (0, 0, 0)


def init(ctx, store) -> NoReadBDev:
    return NoReadBDev(store)
