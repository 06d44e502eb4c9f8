# Hands the block back and never touches it again: nothing to refuse.
class Keeper:
    def ping(self, x: int) -> int:
        return x

    def peek(self, data) -> int:
        return 0

    def echo(self, data):
        return data


def init(ctx):
    return Keeper()


misuse_domain = init
