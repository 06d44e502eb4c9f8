"""`bench recovery` runs the paper's experiment: one panic per faulted period, clean and
faulted stretches of the same lengths in ABBA order, totals (bytes over time), a 10 ms
timeline with the crash instants, and goals flagged met or MISSED.

The run here is short (0.1 s panic periods instead of 1 s) and checks behaviour only:
counts, structure and flags, never a speed. The old benchmark panicked in every other
faulted half-second slice and reported a median of slice ratios, with no timeline.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from redleaf_lab.bench import recovery


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return recovery.measure(seconds=0.3, batch=32, stretches=2, panic_every=0.1)


def test_one_panic_per_faulted_period_and_none_in_clean_stretches(
        result: dict[str, Any]) -> None:
    assert result["stretch_periods"] == [2, 1]
    for op in ("read", "write"):
        assert result[f"{op}_faulted_periods"] == 3
        assert result[f"{op}_panics"] == 3
        stretches = result["timeline"][op]
        assert [s["condition"] for s in stretches] == ["clean", "faulted", "faulted", "clean"]
        for s, periods in zip(stretches, [2, 2, 1, 1], strict=True):
            if s["condition"] == "clean":
                assert s["crash_s"] == []
            else:  # the k-th panic is armed at (k + 0.5) periods into the stretch
                assert len(s["crash_s"]) == periods
                assert all(t >= (k + 0.5) * 0.1 for k, t in enumerate(s["crash_s"]))
    assert result["crashes"] == 6
    assert result["goals"]["read_panics==faulted_seconds"]["status"] == "met"


def test_totals_are_bytes_over_time_and_the_timeline_has_10ms_bins(
        result: dict[str, Any]) -> None:
    for op in ("read", "write"):
        stretches = result["timeline"][op]
        for condition, key in (("clean", f"{op}_mbps"), ("faulted", f"{op}_crash_mbps")):
            mine = [s for s in stretches if s["condition"] == condition]
            total = sum(s["bytes"] for s in mine) / sum(s["seconds"] for s in mine) / 1e6
            assert result[key] == pytest.approx(total)
        assert result[f"{op}_ratio"] == pytest.approx(result[f"{op}_crash_mbps"]
                                                     / result[f"{op}_mbps"])
        lengths = [2, 2, 1, 1]  # periods of the stretches, ABBA
        assert [len(s["mbps"]) for s in stretches] == [10 * n for n in lengths]
        assert all(s["sample_s"] == 0.01 for s in stretches)
    json.dumps(result)  # what --json prints


def test_the_table_states_method_timeline_and_goal_flags(result: dict[str, Any]) -> None:
    table = recovery.format_table(result)
    assert "method: Same work in both conditions" in table and "ABBA" in table
    assert "total bytes / total time" in table
    assert "timeline (one character per 100 ms, '!' = a crash" in table
    assert table.count("  read  faulted") == 2 and "!" in table
    for name, goal in result["goals"].items():
        assert goal["status"] in ("met", "MISSED") and goal["met"] == (goal["status"] == "met")
        assert goal["goal"] in table, name


def test_a_missed_goal_is_flagged_missed(result: dict[str, Any]) -> None:
    missed = dict(result, read_ratio=0.5, write_panics=2, recovery_ms_p50=None)
    flags = {g.name: g.status for g in recovery.goals(missed)}
    assert flags == {"read_ratio>=0.97": "MISSED", "write_ratio>=0.95": flags[
        "write_ratio>=0.95"], "recovery_ms_p50<2": "MISSED",
        "read_panics==faulted_seconds": "met", "write_panics==faulted_seconds": "MISSED"}
    table = recovery.format_table(missed)
    reads = next(line for line in table.splitlines() if line.startswith("reads "))
    writes = next(line for line in table.splitlines() if line.startswith("writes "))
    assert "ratio MISSED" in reads and "panics MISSED" in writes
    assert "recovery time p50 (ms)" in table and "n/a" in table
    assert table.count("MISSED") >= 5  # 3 in the goals list, 2 in the rows


def test_a_met_goal_is_flagged_met(result: dict[str, Any]) -> None:
    fine = dict(result, read_ratio=0.99, write_ratio=0.99, recovery_ms_p50=0.5)
    assert all(g.status == "met" for g in recovery.goals(fine))
    assert "MISSED" not in recovery.format_table(fine)
