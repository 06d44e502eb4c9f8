"""Test domain: a middle link of a call chain A -> B -> C."""

from redleaf_lab.api import RpcError


class Link:
    def __init__(self, nxt) -> None:
        self._next = nxt
        self.handled = 0

    def call(self, crash_at_leaf: bool, handle: bool) -> int:
        if not handle:
            return self._next.call(crash_at_leaf, handle) + 1
        try:
            return self._next.call(crash_at_leaf, handle) + 1
        except RpcError:
            self.handled += 1
            return -1

    def alive(self) -> int:
        return 1


def init(ctx, next) -> Link:
    return Link(next)
