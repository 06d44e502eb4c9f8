"""The echo domain: the cheapest possible callee, to measure the call mechanism."""


class EchoService:
    def ping(self, x: int) -> int:
        return x

    def echo(self, data):
        return data

    def peek(self, data) -> int:
        return 0


def init(ctx) -> EchoService:
    return EchoService()
