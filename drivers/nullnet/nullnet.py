"""nullnet: a Net driver with no device (RedLeaf's nullnet), to measure isolation alone.

Interface: `Net` (redleaf_lab.interfaces.net). `submit_and_poll` moves the packets
from `packets` to `collect` with one registry call (as many as `collect` has room
for): a receive "receives" every buffer it is lent at once (each with length
`FRAME`), a transmit "sends" every frame at once and hands the buffer straight back.
So the deque moves of a call (proxy, shadow) and one registry call are all the work:
what is left is the cost of crossing domains. It holds no buffer between calls, and
its link is always up.

Ownership: the buffers move from one of the caller's deques to the other while both
are this domain's (during the call); a crash reclaims both (the caller's pool counts
the packets as dropped).
"""

FRAME = 60
SPEED_MBPS = 10_000


class NullNet:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._counts = [0, 0]  # packets "received", packets "sent"
        self._promiscuous = False

    def submit_and_poll(self, packets, collect, tx: bool):
        if tx:  # "sent": the buffers go straight back, as many as `collect` has room for
            n = packets.move_to(collect)
            self._counts[1] += n
        else:  # "received": every buffer lent, with its length set
            n = min(len(packets), collect.capacity - len(collect))
            packets.move_exact(collect, n, "len", FRAME)
            self._counts[0] += n
        return (n, packets, collect)

    def stats(self) -> tuple:
        rx, tx = self._counts[0], self._counts[1]
        return (rx, tx, rx * FRAME, tx * FRAME, 0)

    def buffers_held(self) -> tuple:
        return (0, 0)

    def link_status(self) -> tuple:
        return (True, SPEED_MBPS)

    def promiscuous(self, on: bool) -> bool:
        was, self._promiscuous = self._promiscuous, bool(on)
        return was

    def mac_address(self) -> int:
        return 0x0000_5E00_53FF  # a documentation address (RFC 7042)


def init(ctx) -> NullNet:
    return NullNet(ctx)
