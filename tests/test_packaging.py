"""Packaging stays honest: environment.yml lists what pyproject.toml lists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].strip().lower().replace("_", "-")
            for r in requirements}


def _conda_dependencies() -> set[str]:
    names = set()
    in_dependencies = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if not line.startswith(" "):
            in_dependencies = line.startswith("dependencies:")
            continue
        match = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)
        if in_dependencies and match:
            names.add(match.group(1).lower().replace("_", "-"))
    return names - {"python", "pip", "c-compiler"}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["dev"])
    assert _conda_dependencies() == wanted


def test_ci_runs_the_readme_test_command():
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:6])
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make demo" in opening and "make test" in opening
    assert "make test" in ci


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["redleaf-lab"] == "redleaf_lab.cli:main"
