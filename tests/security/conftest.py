"""Fixtures of the red-team suite: a `Lab` (kernel + victims) per attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.harness import Lab


@pytest.fixture
def lab(kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    the_lab = Lab(kernel, tmp_path)
    monkeypatch.chdir(the_lab.watch)  # relative writes land in the watched directory
    yield the_lab
