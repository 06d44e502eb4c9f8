"""`redleaf-lab grade` on the command line: --json for tools, clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redleaf_lab.cli import main


def test_grade_json_lists_points_per_test(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "1", "--only", "misuse-visible", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lab"] == "01-domains-and-proxies"
    assert [(t["grade_id"], t["score"], t["status"]) for t in result["tests"]] == [
        ("lab01-misuse-visible", 5.0, "passed")]
    assert result["score"] == result["total"] == 5.0


UNGRADED = {"cells": [{"cell_type": "code", "metadata": {}, "source": "print(1)"}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_a_notebook_without_graded_cells_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = tmp_path / "tour.ipynb"
    notebook.write_text(json.dumps(UNGRADED))
    assert main(["grade", str(notebook)]) == 2
    assert "has no graded test cells" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["grade", "99"], "no lab 99"),
    (["grade", "1", "/nonexistent/lab.ipynb"], "cannot read notebook"),
    (["grade", "lab-one"], "is not a lab number"),
])
def test_bad_input_is_a_one_line_error(capsys: pytest.CaptureFixture[str], args: list[str],
                                       message: str) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
