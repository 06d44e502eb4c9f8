"""`ctx.lock()`: bounded, with a timeout, and never a forever-wait in a dead incarnation.

A thread can enter a domain just after its crash chose which threads to unwind (it passed
the gate a moment before). If it then waits on a lock that an unwound thread held, it
must not wait for ever: the lock raises DomainUnwind once the incarnation is dead.
"""

from __future__ import annotations

import threading

import pytest

from redleaf_lab.errors import DomainUnwind
from redleaf_lab.kernel.domain import DomainContext


@pytest.fixture
def ctx(kernel, domains):
    kernel.load(domains / "spinner")
    return DomainContext(kernel.domain("spinner"))


def test_acquire_with_a_timeout_gives_up(ctx):
    lock = ctx.lock()
    assert lock.acquire()
    assert lock.acquire(timeout=0.02) is False
    lock.release()
    assert lock.acquire(timeout=0.02) is True


def test_a_waiter_in_a_dead_incarnation_is_unwound(kernel, ctx):
    lock = ctx.lock()
    lock.acquire()  # held by a thread that will never release it (it was unwound)
    outcome: list[BaseException | bool] = []

    def waiter() -> None:
        try:
            outcome.append(lock.acquire())
        except BaseException as exc:  # the test records what ended the wait
            outcome.append(exc)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert kernel.panic("spinner")
    thread.join(timeout=2)
    assert not thread.is_alive(), "the waiter is still waiting on a dead incarnation's lock"
    assert len(outcome) == 1 and isinstance(outcome[0], DomainUnwind)
