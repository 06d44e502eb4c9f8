"""Every escape attempt of the catalogues is refused, and nothing is damaged after it."""

from __future__ import annotations

import pytest

from tests.security import catalogue
from tests.security.harness import Attempt, Lab, judge

ATTEMPTS = catalogue.all_attempts()


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
def test_attempt_is_refused_and_nothing_is_damaged(lab: Lab, attempt: Attempt) -> None:
    outcome = lab.run(attempt)
    problems = judge(attempt, outcome)
    problems += [f"damage: {d}" for d in lab.integrity()]
    assert not problems, f"{attempt.name}:\n  " + "\n  ".join(problems)


def test_the_suite_is_large_and_names_are_unique() -> None:
    names = [a.name for a in ATTEMPTS]
    assert len(names) >= 150, len(names)
    assert len(set(names)) == len(names), sorted({n for n in names if names.count(n) > 1})
    assert all(n.replace("_", "").isalnum() and n.islower() for n in names)
