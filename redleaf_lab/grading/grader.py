"""`redleaf-lab grade`: run a student's notebook against the lab's visible and hidden
tests, each in a fresh process with a time limit, and add up the points.

Interface: `grade(lab, notebook=None, timeout_s=60) -> Grade`. The tests are the test
cells of the INSTRUCTOR notebook (labs/NN-*.ipynb, hidden tests included), matched by
grade_id, as nbgrader's autograde restores them; the student's code is the solution cells
of `notebook` (default: the instructor's own, which must score full points), or a domain
folder standing for one exercise's solution cell (folders.py). Every test
runs in its own `python -m redleaf_lab.grading.runner` process (so its own kernel, heap
and device models): a test that hangs is killed at `timeout_s`, one that crashes the
process (a fault in the C core, an abort) or panics, leaks or fails loses that test's
points and nothing else. Results keep the checker's message.
Ownership: the child processes are this module's; each is killed (its process group) if
it outlives its time limit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import notebook as nbmod
from .folders import folder_cells

DEFAULT_TIMEOUT_S = 60.0


@dataclass
class TestResult:
    grade_id: str
    points: float
    score: float
    status: str  # passed | failed | timeout | crashed
    message: str
    seconds: float


@dataclass
class Grade:
    lab: str
    notebook: str
    tests: list[TestResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tests)

    def as_dict(self) -> dict[str, object]:
        return {"lab": self.lab, "notebook": self.notebook, "score": self.score,
                "total": self.total, "tests": [asdict(t) for t in self.tests]}


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_test(cells: dict[str, str], test: nbmod.Test, timeout_s: float) -> TestResult:
    job = json.dumps({"cells": cells, "test": test.source})
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "redleaf_lab.grading.runner"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        out, err = proc.communicate(job, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return TestResult(test.grade_id, test.points, 0.0, "timeout",
                          f"no result within {timeout_s:g} s: the code hangs (an endless loop "
                          "or a wait that never ends); the test was killed",
                          time.monotonic() - started)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        how = (_signal_name(proc.returncode) if proc.returncode < 0
               else f"exit status {proc.returncode}")
        tail = err.strip().splitlines()[-1:] if err.strip() else []
        return TestResult(test.grade_id, test.points, 0.0, "crashed",
                          f"the test process crashed ({how})" + (f": {tail[0]}" if tail else ""),
                          seconds)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return TestResult(test.grade_id, test.points, 0.0, "crashed",
                          "the test process ended without a result (did the code close stdout "
                          "or exit?)", seconds)
    if result["passed"]:
        return TestResult(test.grade_id, test.points, test.points, "passed", "", seconds)
    message = str(result["error"])
    if result["cell_errors"]:
        message += " (solution cells that raised: " + "; ".join(result["cell_errors"]) + ")"
    return TestResult(test.grade_id, test.points, 0.0, "failed", message, seconds)


def grade(lab: str, student: str | Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
          only: str | None = None) -> Grade:
    """Grade `student` (a notebook, or a domain folder for a lab's domain exercises;
    None: the instructor solutions) for `lab`."""
    instructor = nbmod.lab_notebook(lab)
    tests = nbmod.exercises(nbmod.read(instructor))
    if not tests:
        raise ValueError(f"{instructor.name} has no graded test cells")
    prefix = None
    if student is not None and Path(student).is_dir():  # a domain folder, not a notebook
        cells, prefix = folder_cells(instructor.stem, Path(student))
    else:
        source_nb = nbmod.read(Path(student)) if student is not None else nbmod.read(instructor)
        cells = nbmod.solutions(source_nb)
    result = Grade(instructor.stem, str(student or instructor))
    for test in tests:
        if only is not None and only not in test.grade_id:
            continue
        if prefix is not None and not test.grade_id.startswith(prefix + "-"):
            continue
        result.tests.append(run_test(cells, test, timeout_s))
    return result


def format_grade(result: Grade) -> str:
    lines = [f"{result.lab}: {result.notebook}"]
    width = max([len(t.grade_id) for t in result.tests] + [8])
    for t in result.tests:
        lines.append(f"  {t.grade_id:<{width}} {t.score:4g}/{t.points:<4g} {t.status:<8} "
                     f"{t.seconds:5.1f} s" + (f"  {t.message}" if t.message else ""))
    lines.append(f"  {'total':<{width}} {result.score:4g}/{result.total:<4g}")
    return "\n".join(lines)
