"""Deliberately broken Maglev populations: the balance test must tell them from the real one."""

from __future__ import annotations


def populate_first_come(prefs: list, m: int) -> list:
    """Backend 0 fills every slot of its preference list first (no turns)."""
    entry = [-1] * m
    for i, (offset, skip) in enumerate(prefs):
        for j in range(m):
            slot = (offset + j * skip) % m
            if entry[slot] < 0:
                entry[slot] = i
                if i == 0 and j > m // 2:
                    break
    return entry


def populate_unordered_skip(prefs: list, m: int) -> list:
    """Turns are taken, but a backend that finds its slot taken skips its turn."""
    entry = [-1] * m
    cursor = [offset for offset, _ in prefs]
    filled = 0
    while filled < m:
        for i, (_offset, skip) in enumerate(prefs):
            c = cursor[i]
            cursor[i] = (c + skip) % m
            if entry[c] < 0:
                entry[c] = i
                filled += 1
                if filled == m:
                    break
    return entry
