"""swapper: returns the two deques it is given, swapped, for the proxy's pair paths.

Modes: 0 is correct; 1 returns the same deque twice; 2 returns a deque it already gave
back on an earlier call (it no longer owns it). Both buggy results are panics.
"""


class Swapper:
    def __init__(self) -> None:
        self._given = None

    def swap(self, a, b, mode: int):
        if mode == 1:
            return (len(a), a, a)
        if mode == 2 and self._given is not None:
            return (len(a), self._given, a)
        self._given = a
        return (len(a), b, a)


def init(ctx) -> Swapper:
    return Swapper()
