"""`redleaf-lab grade LAB FOLDER`: a student's domain folder is loaded through the loader
(safe-subset check) and graded by the exercise's visible and hidden tests; a wrong folder
loses points with the checker's message, an unsafe one is refused with the loader's rule
(0 points for those tests, the grader goes on), and bad folders are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redleaf_lab.cli import main
from redleaf_lab.grading.grader import format_grade, grade

FOLDERS = Path(__file__).parent / "folders"


def test_a_good_folder_scores_its_exercise_full() -> None:
    result = grade("01", FOLDERS / "checksum_good")
    report = format_grade(result)
    assert [t.grade_id for t in result.tests] == ["lab01-checksum-visible",
                                                 "lab01-checksum-hidden"], report
    assert result.score == result.total == 10, report


def test_the_folder_picks_its_exercise_by_the_interface_it_provides() -> None:
    result = grade("1", FOLDERS / "echo_misuse")
    assert [t.grade_id for t in result.tests] == ["lab01-misuse-visible",
                                                 "lab01-misuse-hidden"]
    assert result.score == 10, format_grade(result)


def test_a_wrong_folder_loses_points_with_the_checkers_message() -> None:
    result = grade("01", FOLDERS / "checksum_wrong")
    report = format_grade(result)
    assert result.score == 0 and all(t.status == "failed" for t in result.tests), report
    assert "zlib.crc32 of the block is" in result.tests[0].message, report


def test_an_unsafe_folder_is_refused_by_the_loader_and_the_grader_goes_on() -> None:
    result = grade("01", FOLDERS / "checksum_unsafe")
    report = format_grade(result)
    assert [t.status for t in result.tests] == ["failed", "failed"], report
    message = result.tests[0].message
    assert "your checksum domain did not load" in message, report
    # the loader's rule, naming the student's own file and line (not the grader's copy)
    assert f"{FOLDERS / 'checksum_unsafe' / 'crc.py'}:3: [import] import of 'os' refused" \
        in message, report
    assert result.score == 0


def test_the_folder_is_not_written(tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in (FOLDERS / "checksum_good").iterdir() if p.is_file()}
    grade("01", FOLDERS / "checksum_good", only="visible")
    after = {p: p.read_bytes() for p in (FOLDERS / "checksum_good").iterdir() if p.is_file()}
    assert before == after


@pytest.mark.parametrize(("lab", "folder", "message"), [
    ("03", "checksum_good", "has no exercise whose answer is a domain folder"),
    ("01", ".", "is not a domain folder"),
])
def test_bad_folder_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str],
                                                  lab: str, folder: str, message: str) -> None:
    assert main(["grade", lab, str(FOLDERS / folder)]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_for_another_interface_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "domain.toml").write_text('name = "x"\nentry = "x.py"\n'
                                          'provides = "redleaf_lab.interfaces.kv:KV"\n')
    assert main(["grade", "01", str(tmp_path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "provides 'redleaf_lab.interfaces.kv:KV'" in err and "Checksum" in err


def test_grade_folder_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "01", str(FOLDERS / "checksum_good"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["score"] == result["total"] == 10
