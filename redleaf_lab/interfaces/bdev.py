"""BDev: the block-device interface (RedLeaf's `BDev` plus the batched NVMe form).

Blocks are 4 KiB (`BLOCK_SIZE`). Ownership rules, as in RedLeaf:

* `read` moves the caller's buffer into the driver, which fills it and moves it
  back: zero copy across the boundary, and a crash in between takes the buffer
  with it (a shadow then retries with a fresh buffer);
* `write` borrows the caller's buffer for the call: the caller keeps it, so a
  shadow can simply retry after a crash;
* `submit_and_poll` moves two deques of requests across in one call (one
  registry move each, however many requests they hold). The driver takes
  requests from `submit`, does the I/O, appends them to `collect` and hands both
  deques back with how many requests it took. A `BlkReq` is `data` (4096 bytes),
  `data_len` (set to the bytes transferred) and `block` (the block number).
  The capacity 32 in the annotation documents the queue depth; the proxy checks
  the element layout at run time, so deques of any capacity are accepted.

Errors: a block number outside the device is a caller bug that the driver
reports by panicking; through a proxy the caller sees `RpcError` (whose
`.original` is the driver's `ValueError`).

Concurrency contract: any number of threads may call a BDev driver at once,
directly or through one shadow (which does not serialize calls). Every request
of a call is complete when the call returns: read data is in the caller's
buffers and written data is on the device. Calls on distinct blocks do not
affect each other; two calls in flight at once on the same block race, as on
a real disk (one write wins; a read returns either version). `stats()` may be
read at any time. How the drivers keep it: nvme gives each concurrent caller a
queue pair of its own, up to what the controller grants, then shares pairs
under a lock (drivers/nvme/nvme.py, tests/drivers/test_nvme_concurrency.py);
membdev keeps no per-call state (each call copies its own requests to or from
the store, which copies distinct blocks independently).
"""

from __future__ import annotations

from ..heap import BlkReq, Block, RRef, RRefDeque
from ..idl import Borrowed, Interface


class BDev(Interface):
    def read(self, block: int, data: RRef[Block]) -> RRef[Block]:
        """Fill `data` with the contents of `block` and hand the buffer back."""
        ...

    def write(self, block: int, data: Borrowed[RRef[Block]]) -> None:
        """Write the borrowed buffer to `block`."""
        ...

    def submit_and_poll(
        self, submit: RRefDeque[BlkReq, 32], collect: RRefDeque[BlkReq, 32], write: bool
    ) -> tuple[int, RRefDeque[BlkReq, 32], RRefDeque[BlkReq, 32]]:
        """Take requests from `submit` (as many as `collect` has room for), read or write
        them, append them to `collect`; returns (taken, submit, collect)."""
        ...

    def num_blocks(self) -> int:
        """The device size in blocks."""
        ...

    def stats(self) -> tuple[int, int, int]:
        """(blocks read, blocks written, submit_and_poll batches) of this incarnation."""
        ...
