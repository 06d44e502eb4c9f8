"""`%rv6 CMDLINE` under a real InteractiveShell: Rv6 boots on the session's kernel beside
its own membdev and runs the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "redleaf_lab")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "redleaf_lab")


def test_rv6_magic_runs_a_pipeline(shell: InteractiveShell,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("rv6", "echo one two | wc")
    assert capsys.readouterr().out == "1 2 8\n"
    shell.run_line_magic("rv6", "nosuch")
    assert capsys.readouterr().out == "sh: nosuch: not found\n[exit status 127]\n"
    kernel = shell.user_ns["kernel"]
    assert {"rv6disk", "rv6fs", "rv6", "membdev"} <= set(kernel.domains)
