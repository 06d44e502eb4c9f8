"""nbgrader course folders for the labs: student versions and autograding by nbgrader
itself (generate_assignment, autograde), with the labs in their instructor form.

Interface:
* `make_course(root, labs)`: root/nbgrader_config.py and root/source/<lab>/<lab>.ipynb
  for each lab notebook (labs/NN-*.ipynb); the assignment name is the notebook's stem.
* `generate(root, lab)`: `nbgrader generate_assignment` -> root/release/<lab>/<lab>.ipynb,
  the student version (solutions replaced by `raise NotImplementedError()`, hidden tests
  removed).
* `autograde(root, lab, student, notebook) -> (score, max_score)`: puts `notebook` in
  root/submitted/<student>/<lab>/, runs `nbgrader autograde` (hidden tests restored) and
  reads the score from nbgrader's gradebook.
* `python -m redleaf_lab.grading.course student OUT`: student versions of every lab with
  graded cells into OUT (`make labs-student`: build/student/).
Runs nbgrader as a subprocess of this interpreter's environment (`python -m nbgrader`);
the course folder is the caller's (a temporary one in the tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import notebook as nbmod

CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "redleaf-lab"
c.CourseDirectory.root = {root!r}
c.IncludeHeaderFooter.header = ""
c.ExecutePreprocessor.timeout = 180
c.Execute.timeout = 180
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""


def graded_labs(labs: Path = nbmod.LABS) -> list[Path]:
    """The lab notebooks that have graded cells."""
    return [p for p in sorted(labs.glob("*.ipynb")) if nbmod.exercises(nbmod.read(p))]


def make_course(root: Path, labs: list[Path]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root.resolve())))
    for lab in labs:
        folder = root / "source" / lab.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(lab, folder / lab.name)


def _nbgrader(root: Path, *args: str, timeout: float = 600) -> None:
    # nbgrader runs `alembic` (its database migrations) from PATH: this environment's bin
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root,
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def generate(root: Path, lab: str) -> Path:
    _nbgrader(root, "generate_assignment", lab)
    return root / "release" / lab / f"{lab}.ipynb"


def autograde(root: Path, lab: str, student: str, notebook: Path) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    target = root / "submitted" / student / lab
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, target / f"{lab}.ipynb")
    _nbgrader(root, "autograde", lab, "--student", student)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(lab, student)
        return float(submission.score), float(submission.max_score)


def student_versions(out: Path, labs: list[Path] | None = None) -> list[Path]:
    """Generate every graded lab's student version into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="redleaf-course-") as tmp:
        root = Path(tmp)
        chosen = labs if labs is not None else graded_labs()
        make_course(root, chosen)
        for lab in chosen:
            released = generate(root, lab.stem)
            shutil.copy(released, out / lab.name)
            written.append(out / lab.name)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "student":
        print("usage: python -m redleaf_lab.grading.course student OUT_DIR", file=sys.stderr)
        return 2
    for path in student_versions(Path(argv[1])):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
