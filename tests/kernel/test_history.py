"""The kernel's incarnation history stays bounded, and `ps()` still counts every call.

Issue 12, item 9: `Kernel._history` kept every incarnation forever (a long demo with
thousands of restarts grew without limit) and `ps()` summed calls over all of it. Now
only the last `HISTORY_LIMIT` replaced incarnations are kept; the calls of older ones
live on in per-name counters, so the figures `ps()` shows do not change.
"""

from __future__ import annotations

from redleaf_lab.kernel import kernel as kernel_module
from redleaf_lab.kernel.kernel import DomainRow, Kernel

RESTARTS = 200


def _row(kernel: Kernel, name: str) -> DomainRow:
    return next(r for r in kernel.ps() if r.name == name)


def test_thousands_of_restarts_keep_a_bounded_history_and_exact_counts(
        kernel: Kernel) -> None:
    limit = getattr(kernel_module, "HISTORY_LIMIT", 64)
    proxy = kernel.load("echo")
    other = kernel.load("checksum")  # one long-lived incarnation: never in the history
    calls = 0
    for i in range(RESTARTS):
        for _ in range(i % 3 + 1):
            assert proxy.ping(i) == i
            calls += 1
        kernel.panic("echo")
        proxy = kernel.restart("echo")
    assert proxy.ping(1) == 1
    calls += 1
    assert len(kernel._history) <= limit < RESTARTS
    assert kernel._history[-1].incarnation == RESTARTS  # the newest replaced one is kept
    row = _row(kernel, "echo")
    assert row.calls == calls
    assert (row.incarnation, row.crashes, row.restarts) == (RESTARTS + 1, RESTARTS, RESTARTS)
    assert _row(kernel, "checksum").calls == 0 and other is not None
