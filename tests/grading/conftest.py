"""Fixtures of the grading tests: student notebooks made from the instructor labs."""

from __future__ import annotations

import json
from pathlib import Path

from redleaf_lab.grading import notebook as nbmod

WRONG = Path(__file__).parent / "wrong"


def student_notebook(lab: str, replace: dict[str, str], folder: Path) -> Path:
    """The instructor notebook of `lab` with the solution cells `replace` (grade_id ->
    source) swapped in; written under `folder`."""
    path = nbmod.lab_notebook(lab)
    nb = json.loads(path.read_text())
    found = set()
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in replace:
            cell["source"] = replace[grade_id]
            found.add(grade_id)
    assert found == set(replace), f"no solution cells {set(replace) - found} in {path.name}"
    out = folder / path.name
    out.write_text(json.dumps(nb))
    return out
