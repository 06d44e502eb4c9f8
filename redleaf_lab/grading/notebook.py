"""The graded cells of a lab notebook, read from nbgrader's cell metadata.

Interface: `lab_notebook(lab)` finds labs/NN-*.ipynb (the instructor version) from "3",
"03" or a path; `exercises(nb)` lists its test cells (nbgrader `grade: true` with
`points`) as `Test(grade_id, points, source)`; `solutions(nb)` the sources of its solution
cells (`solution: true`) by grade_id, in notebook order. Cells are plain Python here:
IPython magics are not allowed in solution or test cells (the grader runs them outside
IPython). Reading only; nothing here writes a notebook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABS = Path(__file__).resolve().parents[2] / "labs"


@dataclass(frozen=True)
class Test:
    grade_id: str
    points: float
    source: str


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _meta(cell: dict[str, Any]) -> dict[str, Any]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def lab_notebook(lab: str, labs: Path = LABS) -> Path:
    """labs/NN-*.ipynb for "3", "03", "03-nvme-driver" or a path to a notebook."""
    path = Path(lab)
    if path.suffix == ".ipynb":
        if not path.exists():
            raise ValueError(f"no notebook at {lab}")
        return path
    number = lab.split("-", 1)[0]
    if not number.isdigit():
        raise ValueError(f"{lab!r} is not a lab number or notebook")
    found = sorted(labs.glob(f"{int(number):02d}-*.ipynb"))
    if not found:
        known = ", ".join(p.stem for p in sorted(labs.glob("*.ipynb"))) or "none"
        raise ValueError(f"no lab {int(number):02d} in {labs} (labs: {known})")
    return found[0]


def read(path: Path) -> dict[str, Any]:
    try:
        nb: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read notebook {path}: {exc}") from None
    return nb


def exercises(nb: dict[str, Any]) -> list[Test]:
    tests = []
    for cell in nb.get("cells", []):
        meta = _meta(cell)
        if cell.get("cell_type") == "code" and meta.get("grade") and meta.get("points"):
            tests.append(Test(str(meta["grade_id"]), float(meta["points"]), _source(cell)))
    return tests


def solutions(nb: dict[str, Any]) -> dict[str, str]:
    return {str(_meta(c)["grade_id"]): _source(c) for c in nb.get("cells", [])
            if c.get("cell_type") == "code" and _meta(c).get("solution")}
