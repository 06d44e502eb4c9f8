"""Test domain: holds a device capability and heap objects (quiesce-before-reclaim)."""


class DmaUser:
    def __init__(self, device) -> None:
        self._device = device
        self._items = []

    def put(self, data) -> int:
        self._items.append(data)
        return len(self._items)

    def allocate(self, n: int) -> int:
        return len(self._items)

    def churn(self, n: int) -> int:
        return 0

    def count(self) -> int:
        return len(self._items)


def init(ctx, device) -> DmaUser:
    return DmaUser(device)
