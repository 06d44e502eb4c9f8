"""The hash tables' shared contract: FNV-1a 64 over a key's 8 little-endian bytes, the
status codes, and argument checks.

FNV-1a (Fowler/Noll/Vo, draft-eastlake-fnv): start at the 64-bit offset basis, then for
each byte `h ^= byte; h *= prime (mod 2**64)`. Keys are hashed as 8 bytes, low byte
first (what the C reference does with a uint64_t on x86-64).

Pure functions and constants; no state, safe for any thread and any domain.
"""

from __future__ import annotations

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

INSERTED = 1  # set: a new key was stored
UPDATED = 0  # set: an existing key got its new value
FULL = -1  # set: a new key and no free slot (an error value, not an exception)

MIN_LOG2, MAX_LOG2 = 1, 26


def fnv1a64(key: int) -> int:
    """FNV-1a 64 of the 8 little-endian bytes of `key`."""
    h = FNV_OFFSET
    for shift in (0, 8, 16, 24, 32, 40, 48, 56):
        h = ((h ^ ((key >> shift) & 0xFF)) * FNV_PRIME) & MASK64
    return h


def check_capacity(capacity: int) -> int:
    """`capacity` if it is a power of two of 2**MIN_LOG2..2**MAX_LOG2, else ValueError."""
    if type(capacity) is not int or capacity < 2 or capacity & (capacity - 1) \
            or capacity > 1 << MAX_LOG2:
        raise ValueError(f"capacity must be a power of two of 2..2**{MAX_LOG2}, "
                         f"got {capacity!r}")
    return capacity


def check_word(what: str, value: int) -> int:
    """`value` if it is an int of 0..2**64-1 (a key or a value), else ValueError."""
    if type(value) is not int or not 0 <= value <= MASK64:
        raise ValueError(f"{what} must be an int of 0..2**64-1, got {value!r}")
    return value
