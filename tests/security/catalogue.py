"""All catalogues of the red-team suite, one module per attack class."""

from __future__ import annotations

import importlib

from tests.security.harness import Attempt

CLASSES = (
    "capabilities",
    "private",
    "modules",
    "classes",
    "callee",
    "copying",
    "unwind",
    "process",
    "sandbox",
)


def all_attempts() -> list[Attempt]:
    out: list[Attempt] = []
    for name in CLASSES:
        try:
            module = importlib.import_module(f"tests.security.attempts_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.security.attempts_{name}":
                raise
            continue
        out.extend(module.ATTEMPTS)
    return out


def by_class() -> dict[str, int]:
    counts = {}
    for name in CLASSES:
        module = importlib.import_module(f"tests.security.attempts_{name}")
        counts[name] = len(module.ATTEMPTS)
    return counts
