"""The Binder / repo2docker layout (environment.yml, apt.txt, postBuild at the root): in a
fresh virtual environment, postBuild builds the C core, installs the package and the
"RedLeaf Lab" kernelspec, and lab 0 (the tour) then runs on that kernel.

The repository is taken as committed (`git archive HEAD`, so half-edited files of a
working tree never reach the build), with the working tree's postBuild, apt.txt and
environment.yml on top. The fresh environment gets the dependencies of this one through a
.pth file (environment.yml installs them on Binder: resolving them again here would
download the world), pip, setuptools and wheel included; what postBuild builds and
installs is its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TOUR = textwrap.dedent("""
    import os, nbformat, nbclient
    import redleaf_lab
    assert redleaf_lab.__file__.startswith(os.environ["EXPECT_ROOT"]), redleaf_lab.__file__
    nb = nbformat.read("00-tour.ipynb", 4)
    nbclient.NotebookClient(nb, kernel_name="redleaf-lab", timeout=120,
                            resources={"metadata": {"path": "."}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "leak check: {'objects': 0" in outputs, outputs[-2000:]
    print("tour ok")
""")


@pytest.mark.slow
def test_postbuild_in_a_fresh_venv_then_the_tour_runs(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    repo = tmp_path / "repo"
    repo.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    for name in ("postBuild", "apt.txt", "environment.yml"):
        shutil.copy(ROOT / name, repo / name)
    assert os.access(repo / "postBuild", os.X_OK)
    assert "build-essential" in (repo / "apt.txt").read_text()

    fresh = tmp_path / "fresh"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv",
                    "--without-pip", str(fresh)],
                   check=True)
    python = fresh / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PATH": f"{fresh / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(fresh), "REDLEAF_SKIP_STUDENT_LABS": "1",
           "JUPYTER_PATH": "", "PYTHONPATH": "", "EXPECT_ROOT": str(repo)}
    env.pop("PYTHONHOME", None)
    built = subprocess.run(["./postBuild"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "C core and kernelspec installed" in built.stdout
    spec = fresh / "share" / "jupyter" / "kernels" / "redleaf-lab" / "kernel.json"
    assert str(python) in spec.read_text()
    tour = subprocess.run([str(python), "-c", RUN_TOUR], cwd=repo / "labs", env=env,
                          capture_output=True, text=True, timeout=300)
    assert tour.returncode == 0 and "tour ok" in tour.stdout, tour.stderr[-3000:]
