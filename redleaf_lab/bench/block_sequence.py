"""The block sequence every path of `bench nvme` walks: the C baseline's own, reproduced.

The C host loop (csrc/nvme_host.c, `nvm_host_bench`) picks the starting LBA of each
command itself: sequential rows walk 0, nlb, 2 nlb, ... and wrap to 0 when the next
command would not fit (NSZE // nlb starts in a round); random rows step a xorshift64 generator
(x ^= x << 13; x ^= x >> 7; x ^= x << 17, from x = seed | 1) once per command and
take lba = (x mod (NSZE - nlb + 1)) // nlb * nlb, uniform over the whole namespace.
`command_lbas` reproduces that sequence exactly, and `request_blocks` expands each
command into its nlb 4 KiB blocks, which is what the Python paths submit: so the
Python driver (direct, proxy, shadow) and the C loop read or write the same blocks
in the same order (each run from the start of the sequence).

xorshift64 is linear over GF(2), so a long stream is made in numpy: the 64x64 bit
matrix of one step is raised to the power K to start J lanes K steps apart, and the
lanes then step together (`xorshift_stream`); `xorshift_reference` is the plain
one-step-at-a-time version the tests compare it with.

Pure functions; no state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_MASK = (1 << 64) - 1
C_SEED = 1  # the seed `SimNvme.bench_host` hands the C loop by default


def _step(x: int) -> int:
    x ^= (x << 13) & _MASK
    x ^= x >> 7
    x ^= (x << 17) & _MASK
    return x


def xorshift_reference(count: int, seed: int = C_SEED) -> list[int]:
    """The first `count` states after `seed | 1`, one step at a time (for tests)."""
    x, out = seed | 1, []
    for _ in range(count):
        x = _step(x)
        out.append(x)
    return out


def _apply(matrix: list[int], x: int) -> int:
    """A GF(2)-linear map given by the images of the 64 basis bits, applied to `x`."""
    out, bit = 0, 0
    while x:
        if x & 1:
            out ^= matrix[bit]
        x >>= 1
        bit += 1
    return out


def _power(matrix: list[int], n: int) -> list[int]:
    result = [1 << b for b in range(64)]
    while n:
        if n & 1:
            result = [_apply(matrix, v) for v in result]
        matrix = [_apply(matrix, v) for v in matrix]
        n >>= 1
    return result


def xorshift_stream(count: int, seed: int = C_SEED, lanes: int = 1024
                    ) -> npt.NDArray[np.uint64]:
    """The same states as `xorshift_reference(count, seed)`, made with numpy."""
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    lanes = max(1, min(lanes, count))
    steps = -(-count // lanes)
    jump = _power([_step(1 << b) for b in range(64)], steps)
    starts, x = [], seed | 1
    for _ in range(lanes):
        starts.append(x)
        x = _apply(jump, x)
    state = np.array(starts, dtype=np.uint64)
    out = np.empty((lanes, steps), dtype=np.uint64)
    s13, s7, s17 = np.uint64(13), np.uint64(7), np.uint64(17)
    for i in range(steps):
        state ^= state << s13
        state ^= state >> s7
        state ^= state << s17
        out[:, i] = state
    return out.reshape(-1)[:count]


def command_lbas(count: int, random: bool, nlb: int, nsze: int, seed: int = C_SEED
                 ) -> npt.NDArray[np.int64]:
    """The starting LBA of each of the C loop's first `count` commands."""
    if nlb < 1 or nsze < nlb:
        raise ValueError(f"need 1 <= nlb <= nsze, got nlb={nlb}, nsze={nsze}")
    if random:
        span = np.uint64(nsze - nlb + 1)
        return ((xorshift_stream(count, seed) % span) // np.uint64(nlb) * np.uint64(nlb)
                ).astype(np.int64)
    # lba = lba + 2 nlb > nsze ? 0 : lba + nlb, from 0: the starts 0, nlb, ... while a
    # whole command fits, nsze // nlb of them, then round again
    return (np.arange(count, dtype=np.int64) % (nsze // nlb)) * nlb


def request_blocks(count: int, random: bool, nsze: int, nlb: int = 1, seed: int = C_SEED
                   ) -> npt.NDArray[np.int64]:
    """The 4 KiB blocks of the C loop's commands (nlb each, consecutive), `count` of them
    (a whole number of commands), in order: what a Python path submits, one request per
    block."""
    commands = -(-count // nlb)
    lbas = command_lbas(commands, random, nlb, nsze, seed)
    return (lbas[:, None] + np.arange(nlb, dtype=np.int64)[None, :]).reshape(-1)
