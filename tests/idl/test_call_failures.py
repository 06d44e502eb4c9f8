"""A call that fails part-way undoes what it did: loans end, moves go back (issue 12.6).

The proxy lends borrowed arguments and then moves the others. If a later step fails (a
moved argument that was already moved away, a second loan of a stale handle), every loan
already made must end, in reverse order, or the lender's object could never be freed or
moved again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from redleaf_lab import Block, HeapError, RRef, StaleRefError, UseAfterMoveError
from redleaf_lab.idl import Borrowed, Interface


class LendThenMove(Interface):
    def both(self, seen: Borrowed[RRef[Block]], kept: RRef[Block]) -> int: ...

    def two_loans(self, a: Borrowed[RRef[Block]], b: Borrowed[RRef[Block]]) -> int: ...

    def keep(self, data: RRef[Block]) -> int: ...


SOURCE = """
class Keeper:
    def __init__(self):
        self.kept = []

    def both(self, seen, kept):
        self.kept.append(kept)
        return int(seen.array()[0])

    def two_loans(self, a, b):
        return int(a.array()[0]) + int(b.array()[0])

    def keep(self, data):
        self.kept.append(data)
        return len(self.kept)


def init(ctx):
    return Keeper()
"""


@pytest.fixture
def keeper(kernel, tmp_path: Path):
    folder = tmp_path / "keeper"
    folder.mkdir()
    (folder / "domain.toml").write_text(
        'name = "keeper"\nentry = "keeper.py"\n'
        'provides = "tests.idl.test_call_failures:LendThenMove"\n')
    (folder / "keeper.py").write_text(SOURCE)
    return kernel.load(folder)


def test_a_failed_move_ends_the_loan_made_before_it(keeper):
    lent = RRef.new(Block, 1)
    moved_away = RRef.new(Block, 2)
    assert keeper.keep(moved_away) == 1
    with pytest.raises((UseAfterMoveError, StaleRefError)):
        keeper.both(lent, moved_away)  # `seen` is lent first, then `kept` fails to move
    assert keeper.keep(lent) == 2  # the loan ended: the lender can move its block again


def test_a_failed_second_loan_ends_the_first(keeper):
    first = RRef.new(Block, 1)
    stale = RRef.new(Block, 2)
    keeper.keep(stale)
    with pytest.raises((UseAfterMoveError, StaleRefError)):
        keeper.two_loans(first, stale)
    assert keeper.keep(first) == 2


def test_loans_survive_a_normal_call_and_then_end(keeper):
    a, b = RRef.new(Block, 3), RRef.new(Block, 4)
    assert keeper.two_loans(a, b) == 7
    assert keeper.keep(a) == 1 and keeper.keep(b) == 2
    with pytest.raises(HeapError):  # moved away: the handle is no longer ours
        a.array()
