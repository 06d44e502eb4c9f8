"""One graded test in a fresh process: `python -m redleaf_lab.grading.runner` reads
{"cells": {grade_id: source}, "test": source} as JSON on stdin, runs the solution cells
(an error in one is recorded, the next still runs, as when a student runs all cells), then
the test cell, and prints {"passed": bool, "error": "Type: message" or null} as the last
line of stdout.

Each cell is compiled under its own file name and registered in linecache, so the checkers
can read a student's function source (`inspect.getsource`) as they do under IPython. This
process is disposable: the grader (grader.py) kills it at the time limit, and a crash of
the kernel or the C core ends only this one test.
"""

from __future__ import annotations

import json
import linecache
import sys
from typing import Any


def _run(source: str, filename: str, namespace: dict[str, Any]) -> None:
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    job = json.loads(sys.stdin.read())
    namespace: dict[str, Any] = {"__name__": "__main__"}
    cell_errors = []
    for grade_id, source in job["cells"].items():
        try:
            _run(source, f"<cell {grade_id}>", namespace)
        except Exception as exc:
            cell_errors.append(f"{grade_id}: {_describe(exc)}")
    result: dict[str, Any] = {"passed": False, "error": None, "cell_errors": cell_errors}
    try:
        _run(job["test"], "<test>", namespace)
        result["passed"] = True
    except BaseException as exc:  # a test fails with anything, SystemExit included
        result["error"] = _describe(exc)
    sys.stdout.flush()
    print("\n" + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
