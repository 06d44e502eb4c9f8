"""The retransmission timeout (RFC 6298) and congestion window (RFC 5681) of one
connection.

Interface: `Rto.sample(rtt)` feeds one round-trip measurement (section 2.2 for the
first, 2.3 after), `rto` is the current timeout, `backoff()` doubles it after an
expiry (5.5), `reset_backoff()` returns to the computed value when new data is acked.
Karn's rule (section 3) is the caller's: it only times segments never retransmitted.

Deviation, said plainly: the minimum RTO is 200 ms (Linux's TCP_RTO_MIN), not the 1 s
of section 2.4, which the RFC allows ("MAY"); with 1 s a driver restart on a LAN would
stall each affected connection for a whole second. The initial RTO is 1 s (2.1).

`Window` keeps cwnd and ssthresh (RFC 5681 section 3.1, initial window per RFC 6928):
slow start below ssthresh, congestion avoidance above, `on_timeout` and fast
retransmit/recovery (3.2). Owned by one connection; no lock.
"""

ALPHA, BETA, K = 0.125, 0.25, 4
GRANULARITY = 0.001
MIN_RTO, MAX_RTO, INITIAL_RTO = 0.2, 60.0, 1.0


class Rto:
    def __init__(self) -> None:
        self.srtt = 0.0
        self.rttvar = 0.0
        self.measured = False
        self.base = INITIAL_RTO
        self.rto = INITIAL_RTO

    def sample(self, rtt: float) -> None:
        if not self.measured:
            self.srtt = rtt
            self.rttvar = rtt / 2
            self.measured = True
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        self.base = min(MAX_RTO, max(MIN_RTO, self.srtt + max(GRANULARITY, K * self.rttvar)))
        self.rto = self.base

    def backoff(self) -> None:
        self.rto = min(MAX_RTO, self.rto * 2)

    def reset_backoff(self) -> None:
        self.rto = self.base


class Window:
    def __init__(self, mss: int) -> None:
        self.mss = mss
        self.cwnd = min(10 * mss, max(2 * mss, 14600))
        self.ssthresh = 1 << 30
        self.dupacks = 0
        self.recovering = False

    def on_ack(self, acked: int) -> None:
        """New data acknowledged (RFC 5681 3.1)."""
        self.dupacks = 0
        if self.recovering:  # full acknowledgment ends fast recovery (3.2 step 6)
            self.recovering = False
            self.cwnd = self.ssthresh
            return
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, self.mss)
        else:
            self.cwnd += max(1, self.mss * self.mss // self.cwnd)

    def on_dupack(self, flight: int) -> bool:
        """A duplicate ACK; True when it is the third (fast retransmit now)."""
        self.dupacks += 1
        if self.dupacks == 3:
            self.ssthresh = max(flight // 2, 2 * self.mss)
            self.cwnd = self.ssthresh + 3 * self.mss
            self.recovering = True
            return True
        if self.dupacks > 3:
            self.cwnd += self.mss  # inflate during recovery (3.2 step 4)
        return False

    def on_timeout(self, flight: int) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss  # loss window (3.1)
        self.dupacks = 0
        self.recovering = False
