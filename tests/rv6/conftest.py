"""Fixtures for the Rv6 tests: a booted Rv6 (membdev behind its shadow, rv6fs, core) and
helpers to move images in and out of a MemStore.

Images are small (1024 blocks, 4 MiB) unless a test needs more, so mounts, fsck and the
power-cut campaign stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import redleaf_lab
from redleaf_lab.devices import MemStore
from redleaf_lab.rv6img import default_files, fsck, mkfs
from redleaf_lab.rv6img.system import Rv6System, boot_rv6

SMALL = 1024


@pytest.fixture
def big_kernel() -> Iterator[redleaf_lab.Kernel]:
    k = redleaf_lab.boot(heap_bytes=128 << 20, max_objects=1 << 16)
    try:
        yield k
    finally:
        if not k._closed:
            assert k.shutdown() == {"objects": 0, "bytes": 0}


@pytest.fixture
def rv6(big_kernel) -> Rv6System:
    return boot_rv6(big_kernel, mkfs(SMALL, default_files()))


def store_of(image: np.ndarray) -> MemStore:
    store = MemStore(len(image))
    store.write_many(np.arange(len(image)), image)
    return store


def image_of(store: MemStore) -> np.ndarray:
    out = np.empty((store.num_blocks, 4096), np.uint8)
    store.read_many(np.arange(store.num_blocks), out)
    return out


def assert_clean(image: np.ndarray) -> None:
    problems = fsck(image)
    assert problems == [], "\n".join(problems)
