"""The "ixgbe" workload: 64-byte forwarding through a shadow of the ixgbe driver, in Mpps.

It creates an embedded 82599 model (`devices.sim_ixgbe.SimIxgbe`) with its traffic
generator on the wire (inline processing by default: the model runs on each tail
write; `threaded=True` gives it its own C thread), loads `drivers/ixgbe` with it as
the `device` capability, and runs ixy-fwd's loop (`interfaces.net.Forwarder`: receive
a batch, touch one byte per packet, send it back out) through a shadow, so a panic is
recovered transparently: the new incarnation resets the NIC, the pool replaces the
buffers that were in flight and counts them as dropped. `sample()` reports frames
forwarded as operations (the sampler turns them into Mpps) and their bytes.

Modes: "forward" (the loop above) and "receive" (receive only: buffers go straight
back to the RX ring, no transmit). `check()` compares what the model's sink verified
(IPv4/UDP checksums, per-flow sequence) with what the loop sent: `wrong` must be 0.

`redleaf_lab.live` imports this module, which registers "ixgbe": it is one of
`LabSession.boot`'s default workloads, and `session.add_workload("ixgbe")` adds it.

Threads: one traffic thread per workload (the only caller of its shadow); `close()`
stops the driver domain before it frees the model.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..devices.sim_ixgbe import SimIxgbe
from ..errors import RpcError
from ..idl.shadow import ShadowPolicy, make_shadow
from ..interfaces.net import Forwarder
from .workloads import Workload, register_workload

FRAME_BYTES = 64


class NetWorkload(Workload):
    """Forwarding (or receiving) 64-byte frames through a shadow of the ixgbe driver."""

    name = "ixgbe"
    domain = "ixgbe"
    modes = ("forward", "receive")
    unit = "Mpps"

    def __init__(self, kernel: Any, batch: int = 32, policy: ShadowPolicy | None = None,
                 threaded: bool = False, rate_pps: float | None = None) -> None:
        super().__init__()
        if self.domain in kernel.domains:
            raise ValueError(f"{self.domain} is already loaded in this kernel")
        self.kernel = kernel
        self.batch = batch
        self.device = SimIxgbe(kernel.heap, wire="generator", threaded=threaded,
                               packet_size=FRAME_BYTES, rate_pps=rate_pps if threaded else None)
        kernel.load(self.domain, device=self.device)
        self.shadow = make_shadow(kernel, self.domain, policy or ShadowPolicy(
            max_restarts=50, window_s=1.0, max_attempts=5))
        self.dropped = 0  # buffers lost in driver crashes (packets in flight), all runs
        self.sent = 0
        self._dropped_before = 0  # the totals of the runs before the current one
        self._sent_before = 0
        self._loop: Forwarder | None = None

    def traffic(self, stop: threading.Event) -> None:
        loop = self._loop = Forwarder(self.shadow, self.batch,
                                      touch_bytes=self.mode == "forward")
        receive_only = self.mode == "receive"
        try:
            while not stop.is_set():
                try:
                    n = self._receive(loop) if receive_only else loop.step()
                except RpcError as err:  # the shadow gave up: count it, go on
                    self.errors += 1
                    self.last_error = str(err)
                    time.sleep(0.05)
                    continue
                self.ops_done += n
                self.bytes_done += n * FRAME_BYTES
                self.dropped = self._dropped_before + loop.dropped
                self.sent = self._sent_before + loop.sent
        finally:
            self._dropped_before, self._sent_before = self.dropped, self.sent
            self._loop = None
            loop.release()

    @staticmethod
    def _receive(loop: Forwarder) -> int:
        """Receive a batch and lend the buffers straight back to the RX ring."""
        n, loop.free, loop.got = loop.net.submit_and_poll(loop.free, loop.got, False)
        loop.received += n
        if n:
            loop.got.move_to(loop.free)
        else:
            loop.reconcile()
        return n

    def check(self) -> dict[str, Any]:
        """The model's sink against what the loop sent (call with the traffic stopped)."""
        stats = self.device.stats()
        wrong = stats.sink_bad + stats.sink_seq_errors
        # lost_writes/wrong_reads: the keys every workload's check has (the demo sums
        # them); a network drops packets by design, so nothing acknowledged can be lost
        return {"sent": self.sent, "sink_ok": stats.sink_ok, "wrong": wrong,
                "dropped_in_crashes": self.dropped, "rx_missed": stats.rx_missed,
                "lost_writes": 0, "wrong_reads": wrong}

    def close(self) -> None:
        super().close()
        if self.domain in self.kernel.domains and not self.kernel._closed:
            self.kernel.stop(self.domain)
        self.device.close()


register_workload("ixgbe", NetWorkload)
