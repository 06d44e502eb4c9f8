"""Test domain: the end of a call chain; panics on request."""

from .shapes import Answer


class Leaf:
    def call(self, crash_at_leaf: bool, handle: bool) -> int:
        if crash_at_leaf:
            raise RuntimeError("leaf panics on purpose")
        return Answer(1).value

    def alive(self) -> int:
        return 1


def init(ctx) -> Leaf:
    return Leaf()
