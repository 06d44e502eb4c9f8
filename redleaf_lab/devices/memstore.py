"""MemStore: an in-memory array of 4 KiB blocks, the "device" behind drivers/membdev.

RedLeaf's memdisk keeps its data outside the driver domain so that it survives
a driver crash; MemStore is that memory. It is trusted kernel-side code: the
caller creates it and hands it to the driver as a capability (`[needs] store =
"object"`), and the kernel passes the same object to every incarnation.

Interface: `read_into(block, dest)` / `write_from(block, src)` copy one block
between the store and a caller's uint8 array of BLOCK_SIZE bytes;
`read_many(blocks, dest)` / `write_many(blocks, src)` do a whole batch with one
numpy gather / scatter (`dest`/`src` shaped (n, BLOCK_SIZE)). Every block
number is checked before any data moves: a bad one raises `ValueError`
naming the block and the device size, and nothing is read or written.

Ownership: the store owns its array; callers never get a view of it, only
copies, so a driver cannot keep a reference into the device memory.
Thread safety: copies of distinct blocks are independent; concurrent writes
to the same block race, as on a real disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..heap.layout import BLOCK_SIZE
from ..sealed import Sealed


class MemStore(Sealed):
    """`num_blocks` blocks of BLOCK_SIZE bytes, zero-filled."""

    block_size = BLOCK_SIZE

    def __init__(self, num_blocks: int) -> None:
        if type(num_blocks) is not int or num_blocks <= 0:
            raise ValueError(f"MemStore needs a positive number of blocks, got {num_blocks!r}")
        self._blocks = np.zeros((num_blocks, BLOCK_SIZE), dtype=np.uint8)

    @property
    def num_blocks(self) -> int:
        return int(self._blocks.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._blocks.nbytes)

    # -- checks -----------------------------------------------------------------
    def check_block(self, block: Any) -> int:
        """Return `block` as an int, or raise ValueError if it is not on the device."""
        if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
            raise ValueError(f"block number must be an integer, got {block!r}")
        index = int(block)
        if not 0 <= index < self._blocks.shape[0]:
            raise ValueError(
                f"block {index} is out of range: the device has {self._blocks.shape[0]} "
                f"blocks (0..{self._blocks.shape[0] - 1})"
            )
        return index

    def check_blocks(self, blocks: npt.ArrayLike) -> np.ndarray:
        """Return `blocks` as an int64 array, or raise ValueError naming the first bad one."""
        arr = np.asarray(blocks)
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"block numbers must be a 1-D integer array, got {arr.dtype}{arr.shape}")
        n = self._blocks.shape[0]
        bad = np.flatnonzero((arr < 0) | (arr >= n)) if arr.size else arr[:0]
        if bad.size:
            raise ValueError(
                f"block {int(arr[bad[0]])} (request {int(bad[0])}) is out of range: "
                f"the device has {n} blocks (0..{n - 1})"
            )
        return arr.astype(np.int64, copy=False)

    @staticmethod
    def _check_buffer(array: np.ndarray, shape: tuple[int, ...], what: str) -> None:
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.shape != shape:
            got = f"{array.dtype}{array.shape}" if isinstance(array, np.ndarray) else repr(array)
            raise ValueError(f"{what} must be a uint8 array of shape {shape}, got {got}")

    # -- one block ---------------------------------------------------------------
    def read_into(self, block: Any, dest: np.ndarray) -> None:
        """Copy block `block` into `dest` (uint8, BLOCK_SIZE bytes)."""
        index = self.check_block(block)
        self._check_buffer(dest, (BLOCK_SIZE,), "the destination")
        dest[...] = self._blocks[index]

    def write_from(self, block: Any, src: np.ndarray) -> None:
        """Copy `src` (uint8, BLOCK_SIZE bytes) into block `block`."""
        index = self.check_block(block)
        self._check_buffer(src, (BLOCK_SIZE,), "the source")
        self._blocks[index] = src

    # -- batches -----------------------------------------------------------------
    def read_many(self, blocks: npt.ArrayLike, dest: np.ndarray) -> None:
        """Copy blocks[i] into dest[i] for every i (one gather)."""
        index = self.check_blocks(blocks)
        self._check_buffer(dest, (index.size, BLOCK_SIZE), "the destination")
        np.take(self._blocks, index, axis=0, out=dest)

    def write_many(self, blocks: npt.ArrayLike, src: np.ndarray) -> None:
        """Copy src[i] into blocks[i] for every i (one scatter; the last write to a
        block repeated in the batch wins)."""
        index = self.check_blocks(blocks)
        self._check_buffer(src, (index.size, BLOCK_SIZE), "the source")
        self._blocks[index] = src

    def snapshot(self) -> np.ndarray:
        """A copy of the whole device (for tests and checks)."""
        return self._blocks.copy()

    def __repr__(self) -> str:
        return f"<MemStore {self.num_blocks} x {BLOCK_SIZE} B>"
