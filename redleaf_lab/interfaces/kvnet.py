"""KVServer: the network-attached key-value store's interface (issue 17; domains/kvnet).

The server answers memcached's UDP text protocol (get, set, delete) for one IPv4
address and UDP port, received from a `Net` port, in place in the receive buffer (the
reply goes out in the frame that brought the request, as RedLeaf's store does), and
ARP requests for its address. `run(rounds, batch)` serves; `stats()` counts.

Errors: malformed requests are answered ERROR or dropped, and counted; they never stop
the server. Concurrency: one caller at a time (like `NetApp`).
"""

from __future__ import annotations

from ..idl import Interface

STATS = ("gets", "sets", "deletes", "hits", "errors", "dropped", "keys", "ignored")


class KVServer(Interface):
    def run(self, rounds: int, batch: int) -> tuple[int, int, int]:
        """`rounds` rounds of up to `batch` frames; (received, sent, buffers lost in
        driver crashes) so far."""
        ...

    def stats(self) -> tuple[int, int, int, int, int, int, int, int]:
        """Counters named by STATS: requests by kind, get hits, ERROR replies, dropped
        malformed datagrams, keys stored, frames not for this server."""
        ...
