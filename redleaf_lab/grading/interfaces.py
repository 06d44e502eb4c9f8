"""Interfaces the graded exercises load drivers under, so that a student's recovery rule
(registered for the graded interface) applies to the exercise's shadow and to nothing else.

`GradedBDev` is `BDev` under another name: the shadow looks rules up along the
interface's MRO, so a rule registered for `GradedBDev` wins over BDev's own (the rescue
rule) for drivers loaded with `provides = "redleaf_lab.grading.interfaces:GradedBDev"`,
while every other BDev driver keeps BDev's rules.
"""

from __future__ import annotations

from ..interfaces.bdev import BDev


class GradedBDev(BDev):
    """BDev, for drivers that run a student's recovery rules."""
