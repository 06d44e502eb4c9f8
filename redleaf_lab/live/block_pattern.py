"""What the block workloads write, the poison their reads land in, and the checks of both.

Every write of block `b` at version `v` (v >= 1) stores a whole 4 KiB pattern that
only (b, v) produces: word 0 is `b`, word 1 is `v`, and the other 510 little-endian
64-bit words are a fill computed from both (`block_contents`). A block never written
holds zeros (the media starts zeroed).

Reads go into buffers first filled with `POISON_BYTE`: its first word is far above
any block number, so no write ever produces it, and a read that leaves the buffer
alone is seen at once. `WriteRecord` is the record of acknowledged writes:
`issued[b]` is the newest version sent for `b` (acknowledged or not: a shadow that
gives up may leave a write landed but unacknowledged), `acked[b]` the newest one the
driver acknowledged. A block read back is right if it holds zeros and no write to it
was acknowledged, or the full pattern of a version v with acked[b] <= v <= issued[b]
(`wrong_blocks`). So a driver whose read does nothing, one that returns another
block's data, and one that drops writes are all caught.

Not thread safe: a `WriteRecord` belongs to one traffic thread.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..heap import BLOCK_SIZE

WORDS = BLOCK_SIZE // 8
POISON_BYTE = 0xDB  # poison word 0xDBDB...DB: no block number, so no write produces it
_MIX_BLOCK = np.uint64(0x9E37_79B9_7F4A_7C15)
_MIX_VERSION = np.uint64(0xC2B2_AE3D_27D4_EB4F)
_MIX_WORD = (np.arange(WORDS, dtype=np.uint64) * np.uint64(0x0000_0100_0000_01B3))


def block_contents(blocks: npt.ArrayLike, versions: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """The (n, 512) words that writing version `versions[i]` of `blocks[i]` stores."""
    b = np.asarray(blocks, dtype=np.uint64).reshape(-1)
    v = np.broadcast_to(np.asarray(versions, dtype=np.uint64), b.shape)
    with np.errstate(over="ignore"):
        seed = b * _MIX_BLOCK ^ v * _MIX_VERSION
        words = seed[:, None] + _MIX_WORD[None, :]
    words[:, 0] = b
    words[:, 1] = v
    return words


def poison(n: int) -> npt.NDArray[np.uint8]:
    """`n` blocks of poison, to read into."""
    return np.full((n, BLOCK_SIZE), POISON_BYTE, dtype=np.uint8)


class WriteRecord:
    """Versions sent and acknowledged per block (see the module docstring)."""

    def __init__(self, num_blocks: int) -> None:
        self.issued = np.zeros(num_blocks, dtype=np.int64)
        self.acked = np.zeros(num_blocks, dtype=np.int64)

    def sending(self, blocks: npt.ArrayLike, version: int) -> None:
        self.issued[np.asarray(blocks)] = version

    def acknowledged(self, blocks: npt.ArrayLike, version: int) -> None:
        self.acked[np.asarray(blocks)] = version

    def wrong_blocks(self, blocks: npt.ArrayLike, data: npt.NDArray[np.uint8]
                     ) -> npt.NDArray[np.bool_]:
        """For each (block, 4 KiB of data read or stored), True where the data is wrong."""
        numbers = np.asarray(blocks, dtype=np.int64).reshape(-1)
        words = np.ascontiguousarray(data).reshape(len(numbers), BLOCK_SIZE).view("<u8")
        if not len(numbers):
            return np.zeros(0, dtype=bool)
        acked, issued = self.acked[numbers], self.issued[numbers]
        zero = ~words.any(axis=1)
        version = words[:, 1].astype(np.int64)  # wraps for poison: out of range below
        in_range = (words[:, 0] == numbers.astype(np.uint64)) & (version >= np.maximum(acked, 1)) \
            & (version <= issued)
        exact = np.zeros(len(numbers), dtype=bool)
        if in_range.any():
            expect = block_contents(numbers[in_range], version[in_range])
            exact[in_range] = (words[in_range] == expect).all(axis=1)
        right = (zero & (acked == 0)) | exact
        return ~right

    def lost_writes(self, media: npt.NDArray[np.uint8]) -> int:
        """Acknowledged blocks whose stored version is older than acknowledged (or gone)."""
        written = np.flatnonzero(self.acked > 0)
        stored = media[written, 8:16].copy().view("<u8").reshape(-1).astype(np.int64)
        return int(np.count_nonzero(stored < self.acked[written]))

    def bad_blocks(self, media: npt.NDArray[np.uint8]) -> int:
        """Blocks on the media that hold neither zeros (never acknowledged) nor the exact
        pattern of a version sent for them (lost writes included)."""
        wrong = 0
        for start in range(0, len(self.acked), 1024):  # bounded temporaries
            stop = min(start + 1024, len(self.acked))
            wrong += int(np.count_nonzero(self.wrong_blocks(np.arange(start, stop),
                                                            media[start:stop])))
        return wrong
