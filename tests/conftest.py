"""Shared fixtures: a fresh kernel per test, and the test domains' folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import redleaf_lab
from redleaf_lab.kernel.kernel import Kernel

TEST_DOMAINS = Path(__file__).parent / "support" / "domains"


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = redleaf_lab.boot(heap_bytes=64 << 20, max_objects=1 << 16)
    try:
        yield k
    finally:
        if not k._closed:
            k.shutdown()


@pytest.fixture
def domains() -> Path:
    return TEST_DOMAINS
