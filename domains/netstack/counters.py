"""Counters: one named count per event and per drop reason of the stack.

Interface: `Counters.add(name, n=1)`; `drop(reason)` counts a dropped frame under
`drop_<reason>` and in `dropped`; `items()` is a sorted tuple of (name, count) pairs,
what crosses the Socket interface. Every place that discards input calls `drop` with a
reason, so the sum of the `drop_*` counters is `dropped`: tests check that each bad
frame lands in a counter, and `%redleaf net` shows them.

Owned by one Stack; no lock (the stack's callers serialize, see netstack.py).
"""


class Counters:
    def __init__(self) -> None:
        self._counts = {"dropped": 0}

    def add(self, name: str, n: int = 1) -> None:
        self._counts[name] = self._counts.get(name, 0) + n

    def drop(self, reason: str) -> None:
        key = "drop_" + reason
        self._counts[key] = self._counts.get(key, 0) + 1
        self._counts["dropped"] += 1

    def get(self, name: str) -> int:
        return self._counts.get(name, 0)

    def items(self) -> tuple:
        return tuple(sorted(self._counts.items()))
