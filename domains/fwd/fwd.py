"""fwd: the forwarding application (ixy-fwd) as a domain over a `Net` capability.

Interface: `NetApp.run(rounds, batch)`: `rounds` rounds of the `Forwarder` loop
(redleaf_lab.interfaces.net): receive up to `batch` frames, change one byte of each
(one gather and one scatter per batch), transmit them on the same port. Returns the
totals (received, sent, dropped) over this incarnation's life; dropped counts the
buffers lost in driver crashes (the `net` capability is usually a shadow, which
restarts the driver; the pool replaces the lost buffers).

Ownership: the packet pool and the loop's deques belong to this domain; buffers are
lent to the driver only inside `submit_and_poll` and while they sit on its rings.
"""

from redleaf_lab.interfaces.net import Forwarder


class Fwd:
    def __init__(self, ctx, net) -> None:
        self._ctx = ctx
        self._net = net
        self._loop = None
        self._received = 0
        self._sent = 0

    def run(self, rounds: int, batch: int) -> tuple:
        loop = self._loop
        if loop is None or loop.batch != batch:
            pool = None
            if loop is not None:  # keep the buffers, change the batch size
                self._received += loop.received
                self._sent += loop.sent
                loop.release()
                pool = loop.pool
            loop = self._loop = Forwarder(self._net, batch, pool)
        loop.run(rounds)
        return (self._received + loop.received, self._sent + loop.sent, loop.dropped)


def init(ctx, net) -> Fwd:
    return Fwd(ctx, net)
