"""Goals and method statements, the same in every benchmark's table and JSON.

Every benchmark says how it measured (`method`: which paths share the same work, what
is interleaved, what a median or total is taken over) and checks its goals. A `Goal`
is a named comparison of one measured value with a target; `status` is "met" or
"MISSED" (a value that could not be measured is MISSED, never met).

    goal = Goal("proxy_over_plain<=5", "proxy call <= 5 x plain call", value, 5.0, "<=")
    goals_json([goal])   -> {"proxy_over_plain<=5": {"goal": ..., "value": ..., "target": 5.0,
                             "comparison": "<=", "met": False, "status": "MISSED"}}
    goal_lines([goal])   -> the table's lines, one per goal, ending in met or MISSED
    method_lines(text)   -> "method: ..." wrapped for the table

Pure data and formatting; no state.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MET, MISSED = "met", "MISSED"


@dataclass(frozen=True)
class Goal:
    """`value comparison target`, e.g. 0.93 >= 0.97 (MISSED)."""

    name: str
    description: str
    value: float | None
    target: float
    comparison: str  # ">=", "<=", "<" or "=="

    @property
    def met(self) -> bool:
        v = self.value
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False
        if self.comparison == ">=":
            return v >= self.target
        if self.comparison == "<=":
            return v <= self.target
        if self.comparison == "<":
            return v < self.target
        if self.comparison == "==":
            return v == self.target
        raise ValueError(f"unknown comparison {self.comparison!r}")

    @property
    def status(self) -> str:
        return MET if self.met else MISSED

    def as_json(self) -> dict[str, Any]:
        return {"goal": self.description, "value": self.value, "target": self.target,
                "comparison": self.comparison, "met": self.met, "status": self.status}


def goals_json(goals: Iterable[Goal]) -> dict[str, dict[str, Any]]:
    return {g.name: g.as_json() for g in goals}


def _figure(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def goal_lines(goals: Iterable[Goal]) -> list[str]:
    """One line per goal: description, measured value, target, then met or MISSED."""
    goals = list(goals)
    width = max((len(g.description) for g in goals), default=0)
    lines = [f"goals ({sum(g.met for g in goals)} of {len(goals)} met):"]
    for g in goals:
        lines.append(f"  {g.description:<{width}}  measured {_figure(g.value):>9}  "
                     f"goal {g.comparison} {_figure(g.target):<7}  {g.status}")
    return lines


def method_lines(method: str, width: int = 100) -> list[str]:
    """The method statement, wrapped, each paragraph prefixed."""
    lines: list[str] = []
    for i, paragraph in enumerate(p for p in method.split("\n\n") if p.strip()):
        lines += textwrap.wrap(" ".join(paragraph.split()), width=width,
                               initial_indent="method: " if i == 0 else "        ",
                               subsequent_indent="        ")
    return lines
