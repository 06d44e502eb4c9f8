"""nbgrader course folders for the labs: student versions and autograding by nbgrader
itself (generate_assignment, autograde), with the labs in their instructor form.

Interface:
* `make_course(root, labs)`: root/nbgrader_config.py and root/source/<lab>/<lab>.ipynb
  for each lab notebook (labs/NN-*.ipynb); the assignment name is the notebook's stem.
* `generate(root, labs)`: nbgrader's generate_assignment for each lab (one process, its
  NbGraderAPI) -> root/release/<lab>/<lab>.ipynb, the student versions (solutions replaced
  by `raise NotImplementedError()`, hidden tests removed).
* `autograde(root, lab, {student: notebook}) -> {student: (score, max_score)}`: puts each
  notebook in root/submitted/<student>/<lab>/, runs `nbgrader autograde` once (hidden tests
  restored) and reads the scores from nbgrader's gradebook.
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


def _env() -> dict[str, str]:
    # nbgrader runs `alembic` (its database migrations) from PATH: this environment's bin
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
            f"{os.environ.get('PATH', '')}"}


def generate(root: Path, labs: list[str]) -> list[Path]:
    proc = subprocess.run([sys.executable, "-m", "redleaf_lab.grading.course", "generate",
                           str(root), *labs], capture_output=True, text=True, timeout=600,
                          env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return [root / "release" / lab / f"{lab}.ipynb" for lab in labs]


def _generate_here(root: Path, labs: list[str]) -> int:
    """In this process: one NbGraderAPI for every lab (nbgrader's import costs seconds)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    namespace = {"get_config": lambda: config}
    exec((root / "nbgrader_config.py").read_text(), namespace)
    api = NbGraderAPI(config=config)
    for lab in labs:
        result = api.generate_assignment(lab, force=True)
        if not result.get("success"):
            print(result.get("error") or result.get("log"), file=sys.stderr)
            return 1
    return 0


def autograde(root: Path, lab: str,
              submissions: dict[str, Path]) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    for student, notebook in submissions.items():
        target = root / "submitted" / student / lab
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, target / f"{lab}.ipynb")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", lab, "--force"],
                          cwd=root, capture_output=True, text=True, timeout=600, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader autograde failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in submissions:
            submission = gb.find_submission(lab, student)
            scores[student] = (float(submission.score), float(submission.max_score))
    return scores


def student_versions(out: Path, labs: list[Path] | None = None) -> list[Path]:
    """Generate every graded lab's student version into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="redleaf-course-") as tmp:
        root = Path(tmp)
        chosen = labs if labs is not None else graded_labs()
        make_course(root, chosen)
        for lab, released in zip(chosen, generate(root, [lab.stem for lab in chosen]),
                                 strict=True):
            shutil.copy(released, out / lab.name)
            written.append(out / lab.name)
    return written


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "generate":
        return _generate_here(Path(argv[1]), argv[2:])
    if len(argv) != 2 or argv[0] != "student":
        print("usage: python -m redleaf_lab.grading.course student OUT_DIR", file=sys.stderr)
        return 2
    for path in student_versions(Path(argv[1])):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
