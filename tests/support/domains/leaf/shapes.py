"""A second module of the leaf domain: a dataclass with postponed annotations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    value: int
