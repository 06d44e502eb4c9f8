"""`redleaf-lab grade LAB [NOTEBOOK] [--json]`: the course's `make grade` (grading/grader.py).
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    grade = sub.add_parser("grade", help="grade a lab notebook: points per exercise and total")
    grade.add_argument("lab", help="lab number (3, 03) or the instructor notebook's path")
    grade.add_argument("notebook", nargs="?", default=None,
                       help="the student's notebook (default: the instructor solutions)")
    grade.add_argument("--json", action="store_true", help="print the result as JSON")
    grade.add_argument("--timeout", type=float, default=60.0, help="seconds per test")
    grade.add_argument("--only", default=None, help="run the tests whose grade_id has this")
    grade.set_defaults(func=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    from ..grading.grader import format_grade, grade

    result = grade(args.lab, args.notebook, timeout_s=args.timeout, only=args.only)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_grade(result))
    return 0

