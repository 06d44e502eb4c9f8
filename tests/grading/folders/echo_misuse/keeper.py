"""lab 01's misuse exercise as a folder: echo hands the block back and keeps the handle."""


class Keeper:
    def __init__(self):
        self.last = None

    def ping(self, x: int) -> int:
        return x

    def peek(self, data) -> int:
        return 0

    def echo(self, data):
        if self.last is not None:
            self.last.array()[0] = 1  # the caller owns this block now: refused
        self.last = data
        return data


def init(ctx):
    return Keeper()
