"""Test domain: busy loops, naps, threads and RRef misuse."""

import time

from redleaf_lab.api import Block, InvalidRequest, RRef


class Spinner:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._kept = []
        self._views = []
        self._given = None

    def ping(self, x: int) -> int:
        return x

    def spin(self, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
        return n

    def nap(self, seconds: float) -> int:
        self._ctx.sleep(seconds)
        return 1

    def _forever(self) -> None:
        n = 0
        while True:
            n += 1

    def spawn_spinners(self, n: int) -> int:
        for _ in range(n):
            self._ctx.spawn(self._forever)
        return n

    def hold(self, data) -> int:
        self._kept.append(data)
        return len(self._kept)

    def peek_and_keep_view(self, data) -> int:
        view = data.array()
        self._views.append(view)
        return int(view[0])

    def write_borrowed(self, data) -> int:
        data.write(b"x")
        return 0

    def give(self):
        self._given = RRef.new(Block, 9)
        return self._given

    def refuse(self, why: str) -> int:
        raise InvalidRequest(why)

    def give_foreign(self):
        return self._given  # already given away by give(): the caller owns it


def init(ctx) -> Spinner:
    return Spinner(ctx)
