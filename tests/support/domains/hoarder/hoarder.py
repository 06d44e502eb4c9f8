"""Test domain: owns many heap objects, to check reclamation."""

from redleaf_lab.api import Block, RRef, RRefDeque


class Hoarder:
    def __init__(self) -> None:
        self._items = []
        self._deque = RRefDeque.new(Block, 8)

    def put(self, data) -> int:
        if self._deque.push_back(data) is not None:
            self._items.append(data)
        return len(self._items) + len(self._deque)

    def allocate(self, n: int) -> int:
        for i in range(n):
            self._items.append(RRef.new(Block, i % 256))
        return len(self._items)

    def churn(self, n: int) -> int:
        total = 0
        for i in range(n):
            block = RRef.new(Block, i % 256)
            total += int(block.readonly()[0])
            block.drop()
        return total

    def count(self) -> int:
        return len(self._items) + len(self._deque)


def init(ctx) -> Hoarder:
    return Hoarder()
