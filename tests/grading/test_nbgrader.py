"""nbgrader's own pipeline on the labs, in a throwaway course folder: generate_assignment
makes the student versions (solutions stubbed, hidden tests removed), `redleaf-lab grade`
gives them 0 without crashing, and nbgrader autograde scores lab 1's instructor version
full and its student version 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redleaf_lab.grading import course
from redleaf_lab.grading import notebook as nbmod
from redleaf_lab.grading.grader import format_grade, grade

LABS = ["00-tour", "01-domains-and-proxies", "02-shadow-recovery", "03-nvme-driver", "04-ixgbe-driver",
        "05-rv6", "06-network-stack", "07-maglev-and-kv", "08-language-overheads"]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("course")
    course.make_course(root, [nbmod.lab_notebook(lab) for lab in LABS])
    return root, dict(zip(LABS, course.generate(root, LABS), strict=True))


def _text(path: Path) -> str:
    return "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])


@pytest.mark.parametrize("lab", LABS)
def test_student_versions_have_stubs_and_no_hidden_tests(
        released: tuple[Path, dict[str, Path]], lab: str) -> None:
    text = _text(released[1][lab])
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert text.count("raise NotImplementedError()") >= 2
    assert "hidden=True" not in text and "commands=80" not in text
    instructor = _text(nbmod.lab_notebook(lab))
    assert "BEGIN HIDDEN TESTS" in instructor


@pytest.mark.parametrize("lab", LABS)
def test_a_student_version_scores_zero_without_crashing_the_grader(
        released: tuple[Path, dict[str, Path]], lab: str) -> None:
    result = grade(lab[:2], released[1][lab])
    report = format_grade(result)
    assert result.total == 20 and result.score == 0, report
    assert all(t.status == "failed" for t in result.tests), report
    assert all("NotImplementedError" in t.message for t in result.tests), report


def test_nbgrader_autograde_scores_lab1(released: tuple[Path, dict[str, Path]]) -> None:
    root, versions = released
    lab = "01-domains-and-proxies"
    scores = course.autograde(root, lab, {"teacher": nbmod.lab_notebook(lab),
                                          "student": versions[lab]})
    assert scores == {"teacher": (20.0, 20.0), "student": (0.0, 20.0)}
