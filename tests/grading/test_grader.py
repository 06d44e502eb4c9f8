"""`redleaf-lab grade`: instructor solutions score full points, deliberately wrong ones
(tests/grading/wrong/) partial points with the checker's message, and code that hangs,
crashes the process, panics trusted code or keeps RRefs loses only its own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from redleaf_lab.grading.grader import format_grade, grade

from .conftest import WRONG, student_notebook


@pytest.mark.parametrize("lab", ["0", "1", "2", "3", "4", "5", "6", "7", "8"])
def test_instructor_solutions_score_full_points(lab: str) -> None:
    result = grade(lab)
    assert len(result.tests) >= 4, format_grade(result)
    assert result.score == result.total == 20, format_grade(result)


# (solution cell, wrong file, points expected of the lab's 20, message part)
WRONG_SOLUTIONS = [
    ("lab00-panic-times", "lab00_panic_times_membdev_only.py", 15,
     "panic_times(lab, 'nvme', 5) crashed nvme 0 times"),
    ("lab00-revive", "lab00_revive_always_restarts.py", 15, "kvstore is running"),
    ("lab01-checksum-domain", "lab01_checksum_hoards.py", 15,
     "your checksum domain owns 32 heap objects"),
    ("lab01-checksum-domain", "lab01_checksum_adler.py", 10, "zlib.crc32 of the block is"),
    ("lab01-misuse-domain", "lab01_misuse_honest.py", 10,
     "the second echo() returned normally"),
    ("lab02-batch-rule", "lab02_batch_reuses_moved.py", 10,
     "calls lost their requests across"),
    ("lab02-read-rule", "lab02_read_copies.py", 10, "keep() kept something (bytes)"),
    ("lab03-submit", "lab03_submit_nlb.py", 10, "NLB, which is 0-based"),
    ("lab03-complete", "lab03_complete_no_phase_flip.py", 15,
     "the expected phase tag inverts"),
    ("lab04-rx-refill", "lab04_rx_arms_whole_ring.py", 10, "the RX ring is not refilled"),
    ("lab04-tx-cleanup", "lab04_tx_ignores_dd.py", 15, "the clean-up gave back"),
    ("lab05-bmap", "lab05_bmap_allocates_on_read.py", 15, "bmap(..., alloc=False) allocated"),
    ("lab05-log-write", "lab05_log_forgets_pin.py", 15, "log_write must pin it"),
    ("lab06-rto", "lab06_rto_no_maximum.py", 15, "2.5: at most 60 s"),
    ("lab06-ipv4", "lab06_ipv4_accepts_fragments.py", 15, "was not dropped as ip_fragment"),
    ("lab07-populate", "lab07_populate_no_backends.py", 15, "populate([], M) must return"),
    ("lab07-rewrite", "lab07_rewrite_zero_udp.py", 15, "must keep 0"),
    ("lab08-cstyle", "lab08_cstyle_never_full.py", 15, "returned INSERTED, expected FULL"),
    ("lab08-vector", "lab08_vector_loops_per_key.py", 15, "it loops over the keys in Python"),
]


@pytest.mark.parametrize(("cell", "wrong", "points", "message"), WRONG_SOLUTIONS,
                         ids=[w[1].removesuffix(".py") for w in WRONG_SOLUTIONS])
def test_a_wrong_solution_scores_partial_points_with_its_message(
        tmp_path: Path, cell: str, wrong: str, points: int, message: str) -> None:
    lab = cell[3:5]
    student = student_notebook(lab, {cell: (WRONG / wrong).read_text()}, tmp_path)
    result = grade(lab, student)
    report = format_grade(result)
    assert result.score == points, report
    failed = [t for t in result.tests if t.status != "passed"]
    exercise = "-".join(cell.split("-")[:2])  # lab03-submit, lab04-rx, lab00-crash, ...
    assert failed and all(t.grade_id.startswith(exercise) for t in failed), report
    assert all(t.status == "failed" for t in failed), report
    assert any(message in t.message for t in failed), report


def test_an_endless_loop_is_killed_and_loses_only_its_tests(tmp_path: Path) -> None:
    student = student_notebook(
        "03", {"lab03-complete": (WRONG / "lab03_complete_spins_forever.py").read_text()},
        tmp_path)
    result = grade("03", student, timeout_s=3, only="lab03-complete-visible")
    assert [t.status for t in result.tests] == ["timeout"], format_grade(result)
    assert "no result within 3 s" in result.tests[0].message
    assert result.score == 0


def test_a_crashed_process_loses_only_its_tests(tmp_path: Path) -> None:
    student = student_notebook(
        "02", {"lab02-batch-rule": (WRONG / "lab02_batch_crashes_process.py").read_text()},
        tmp_path)
    result = grade("02", student)
    by_id = {t.grade_id: t for t in result.tests}
    assert by_id["lab02-batch-visible"].status == "crashed", format_grade(result)
    assert "SIGSEGV" in by_id["lab02-batch-visible"].message
    assert by_id["lab02-read-visible"].status == by_id["lab02-read-hidden"].status == "passed"
    assert result.score == 10


def test_a_panic_in_trusted_code_is_graded_and_contained(tmp_path: Path) -> None:
    student = student_notebook(
        "02", {"lab02-batch-rule": (WRONG / "lab02_batch_panics_caller.py").read_text()},
        tmp_path)
    result = grade("02", student, only="lab02-batch")
    assert [t.status for t in result.tests] == ["failed", "failed"], format_grade(result)
    assert "RuntimeError: the shadow's keep step blew up" in result.tests[0].message


def test_rrefs_kept_by_the_student_are_reported(tmp_path: Path) -> None:
    student = student_notebook(
        "02", {"lab02-batch-rule": (WRONG / "lab02_batch_keeps_rrefs.py").read_text()},
        tmp_path)
    result = grade("02", student, only="lab02-batch-visible")
    assert result.tests[0].status == "failed", format_grade(result)
    assert "heap objects are still alive after the check" in result.tests[0].message
