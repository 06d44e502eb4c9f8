"""`redleaf-lab grade LAB [NOTEBOOK | DOMAIN_FOLDER] [--json]`: the course's `make grade` (grading/grader.py);
`redleaf-lab classroom up --users N`: JupyterHub on loopback (grading/classroom.py).
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    grade = sub.add_parser("grade", help="grade a lab notebook: points per exercise and total")
    grade.add_argument("lab", help="lab number (3, 03) or the instructor notebook's path")
    grade.add_argument("notebook", nargs="?", default=None,
                       help="the student's notebook, or a domain folder for a lab's domain "
                       "exercise (default: the instructor solutions)")
    grade.add_argument("--json", action="store_true", help="print the result as JSON")
    grade.add_argument("--timeout", type=float, default=60.0, help="seconds per test")
    grade.add_argument("--only", default=None, help="run the tests whose grade_id has this")
    grade.set_defaults(func=run_grade)

    classroom = sub.add_parser("classroom", help="a JupyterHub class on loopback")
    classroom.add_argument("action", choices=["up"], help="up: start the hub until Ctrl-C")
    classroom.add_argument("--users", type=int, default=3, help="dummy users student1..N")
    classroom.add_argument("--port", type=int, default=8000)
    classroom.add_argument("--dir", default=None, help="state folder (default: a temporary one)")
    classroom.add_argument("--course", action="store_true",
                           help="a course machine: Unix accounts (PAM), each student's server "
                           "runs as that user (run as root)")
    classroom.add_argument("--allowed-users", default="",
                           help="--course: comma-separated logins allowed in")
    classroom.add_argument("--group", default=None,
                           help="--course: a Unix group whose members are allowed in")
    classroom.add_argument("--python", default=None,
                           help="--course: the interpreter the students' servers run (readable "
                           "by them; default: this one)")
    classroom.set_defaults(func=run_classroom)


def run_grade(args: argparse.Namespace) -> int:
    from ..grading.grader import format_grade, grade

    result = grade(args.lab, args.notebook, timeout_s=args.timeout, only=args.only)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_grade(result))
    return 0



def run_classroom(args: argparse.Namespace) -> int:
    from ..grading.classroom import serve

    allowed = [name for name in args.allowed_users.split(",") if name]
    return serve(users=args.users, port=args.port, state_dir=args.dir, course=args.course,
                 allowed=allowed, group=args.group, python=args.python)


def add_bench_parser(bench: argparse._SubParsersAction) -> None:
    rss = bench.add_parser("kernel-rss", help="one student's kernel memory after the tour; "
                           "students per machine")
    rss.add_argument("--machine-gib", type=float, default=24.0)
    rss.add_argument("--json", action="store_true")
    rss.set_defaults(func=run_kernel_rss)


def run_kernel_rss(args: argparse.Namespace) -> int:
    from ..grading.footprint import run

    return run(machine_gib=args.machine_gib, as_json=args.json)
