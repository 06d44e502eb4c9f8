"""The README's ten-line example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import redleaf_lab


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S)
    assert example is not None
    namespace: dict[str, object] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "domain 'kvstore' panicked" in out
    kernel = namespace["kernel"]
    assert isinstance(kernel, redleaf_lab.Kernel)
    assert kernel.shutdown()["objects"] == 0
