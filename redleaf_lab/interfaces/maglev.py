"""Balancer: the Maglev load balancer's interface (issue 17; domains/maglev).

The balancer receives UDP frames for its virtual address (VIP) from a `Net` port,
picks a backend per flow (5-tuple) with Maglev's consistent-hashing table and a
flow-tracking table, rewrites the destination MAC and IPv4 address (and both
checksums) and sends the frames back out, in batches.

Backends are numbered by the caller (0..MAX_BACKENDS-1) and named by their address:
`set_backend(index, mac, ip)` adds one (or changes its MAC), `remove_backend(index)`
takes it out; both rebuild the lookup table (Maglev §3.4). `set_health(index, ok)`
marks a backend down without removing it: tracked flows leave it, new flows avoid it.
A tracked flow keeps its backend while that backend is present and healthy.

Errors: a bad index or address is `InvalidRequest` (an error value). Frames that are not
IPv4/UDP to the VIP with a 20-byte IP header, or that arrive while no backend is
healthy, are dropped and counted. Concurrency: one caller at a time (like `NetApp`).
"""

from __future__ import annotations

from ..idl import Interface

MAX_BACKENDS = 1024


class Balancer(Interface):
    def run(self, rounds: int, batch: int) -> tuple[int, int, int]:
        """`rounds` rounds of up to `batch` frames; (received, sent, dropped) so far."""
        ...

    def set_backend(self, index: int, mac: int, ip: int) -> int:
        """Add backend `index` (MAC as 48-bit number, first byte in the low bits; IPv4 as a
        32-bit number) or change its MAC; returns the number of backends."""
        ...

    def remove_backend(self, index: int) -> int:
        """Take backend `index` out; returns how many table entries changed backend."""
        ...

    def set_health(self, index: int, healthy: bool) -> bool:
        """Mark backend `index` up or down; returns its previous health."""
        ...

    def stats(self) -> tuple[int, int, int, int, int, int]:
        """(received, forwarded, dropped, flows tracked, table misses, flows moved off an
        unhealthy or removed backend)."""
        ...

    def backend_of(self, src_ip: int, dst_ip: int, src_port: int, dst_port: int) -> int:
        """The backend a UDP flow goes to now (its tracked one, else the table's); -1 if
        none is healthy. Tracks nothing (for tests and the lab)."""
        ...
