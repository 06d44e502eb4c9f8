"""The red-team suite can fail: with one defence switched off, its attempt gets through.

Each case removes one defence for the length of the test (monkeypatch) and runs an
attempt of the catalogue that this defence alone stops. The judge, or the integrity
check, must then report the attempt as having got through or done damage: a suite that
passed whatever the kernel did would prove nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from redleaf_lab.kernel.safety import audit, facades, formatting
from redleaf_lab.kernel.safety.classes import ClassPolicy
from redleaf_lab.sealed import Sealed
from tests.security import catalogue
from tests.security.harness import Lab, judge

BY_NAME = {a.name: a for a in catalogue.all_attempts()}


def _no_facades(self: Any, module: Any) -> Any:
    return module  # the module itself, with all its imports


def _no_receiver_guard(receiver: Any, where: str) -> None:
    return None  # any object may be `self`


def _no_host_backstop(event: str, args: Any) -> None:
    return None  # every audited operation allowed


def _no_format_check(fmt: str) -> None:
    return None  # any replacement field allowed


DEFENCES = {
    "proc_ndarray_dump_writes_host_file": (audit, "_why", _no_host_backstop),
    "proc_str_format_unbound": (formatting, "check_format_string", _no_format_check),
    # attempt name: (object, attribute, replacement)
    "mod_alias_contextlib_os_mkdir": (facades.FacadeMaker, "__call__", _no_facades),
    "priv_method_called_with_foreign_self": (ClassPolicy, "stranger",
                                             staticmethod(_no_receiver_guard)),
    "copy_shallow_borrow_stays_live": (Sealed, "__copy__", None),
}


@pytest.mark.parametrize("name", sorted(DEFENCES))
def test_attempt_gets_through_without_its_defence(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    owner, attribute, replacement = DEFENCES[name]
    if replacement is None:
        monkeypatch.delattr(owner, attribute)
        if owner is Sealed:  # copy.copy falls back to pickling's hooks: remove those too
            monkeypatch.delattr(Sealed, "__reduce_ex__")
            monkeypatch.delattr(Sealed, "__reduce__")
    else:
        monkeypatch.setattr(owner, attribute, replacement)
    facades._SHARED.clear()  # façades built before the patch would still hold
    try:
        attempt = BY_NAME[name]
        outcome = lab.run(attempt)
        problems = judge(attempt, outcome) + lab.integrity()
    finally:
        facades._SHARED.clear()
    assert problems, f"{name} was still refused with its defence removed: {outcome}"
