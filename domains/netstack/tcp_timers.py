"""TCP's timers for one connection: retransmission (RFC 6298 section 5), the persist
timer's zero-window probes (RFC 9293 3.8.6.1), keep-alive (RFC 1122 4.2.3.6) and
TIME-WAIT's 2*MSL (RFC 9293 3.4.2).

Interface: `tick(conn, now)`, called for every connection by the Tcp layer at most every
10 ms (the stack's timer granularity); it reads and sets the deadlines the connection
keeps (`rtx_at`, `persist_at`, `timewait_until`, the keep-alive clock `last_heard`).
Functions over a Connection (tcp_conn.py); same single-threaded ownership.
"""

import errno

from .tcp_segment import ACK, SYN, add
from .tcp_states import (
    CLOSE_WAIT,
    ESTABLISHED,
    FIN_WAIT_1,
    LAST_ACK,
    MAX_RETRIES,
    OUR_MSS,
    SYN_RECEIVED,
    SYN_RETRIES,
    SYN_SENT,
    TIME_WAIT,
)


def tick(conn, now: float) -> None:
    if conn.state == TIME_WAIT:
        if now >= conn.timewait_until:
            conn.drop_connection()
        return
    if conn.rtx_at is not None and now >= conn.rtx_at:
        retransmit_timeout(conn, now)
    if conn.persist_at is not None and now >= conn.persist_at:
        probe_window(conn, now)
    if conn.keepalive_idle and conn.state in (ESTABLISHED, CLOSE_WAIT):
        keepalive(conn, now)

def retransmit_timeout(conn, now: float) -> None:
    """RFC 6298 5.4-5.6: retransmit the earliest unacknowledged segment, back off."""
    if conn.in_flight() == 0:
        conn.rtx_at = None
        return
    conn.retries += 1
    limit = SYN_RETRIES if conn.state in (SYN_SENT, SYN_RECEIVED) else MAX_RETRIES
    if conn.retries > limit:
        conn.layer.counters.add("tcp_timeouts")
        conn.abort_with(errno.ETIMEDOUT)
        return
    conn.layer.counters.add("tcp_retransmits")
    conn.rto.backoff()
    conn.timed_seq = None  # Karn's rule
    if conn.state == SYN_SENT:
        conn.emit(SYN, conn.iss, mss=OUR_MSS)
    elif conn.state == SYN_RECEIVED:
        conn.emit(SYN | ACK, conn.iss, mss=OUR_MSS)
    else:
        conn.cc.on_timeout(conn.in_flight())
        conn.snd_nxt = conn.snd_una  # go back N: output() resends from SND.UNA (and
        # the FIN again when SND.NXT reaches `fin_seq`)
        conn.rtx_at = None
        conn.output(now)
    conn.rtx_at = now + conn.rto.rto

def probe_window(conn, now: float) -> None:
    """Zero-window probe (3.8.6.1): one new byte (or the FIN) beyond the window."""
    conn.persist_at = None
    if conn.snd_wnd != 0 or conn.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, LAST_ACK):
        return
    offset = (conn.snd_nxt - conn.sndbuf_seq) & 0xFFFFFFFF
    conn.layer.counters.add("tcp_window_probes")
    if offset < len(conn.sndbuf):
        conn.emit(ACK, conn.snd_nxt, bytes(conn.sndbuf[offset:offset + 1]))
        conn.probe_out = True
    else:
        conn.send_ack()
    conn.rto.backoff()
    conn.persist_at = now + conn.rto.rto

def keepalive(conn, now: float) -> None:
    """RFC 1122 4.2.3.6: after `keepalive_idle` s of silence, probe with SEG.SEQ =
    SND.NXT-1 (the peer must answer with an ACK); give up after the probes."""
    idle = now - conn.last_heard
    if idle < conn.keepalive_idle:
        return
    due = conn.keepalive_idle + conn.keepalive_sent * conn.keepalive_interval
    if idle < due:
        return
    if conn.keepalive_sent >= conn.keepalive_probes:
        conn.layer.counters.add("tcp_keepalive_timeouts")
        conn.abort_with(errno.ETIMEDOUT)
        return
    conn.keepalive_sent += 1
    conn.layer.counters.add("tcp_keepalive_probes")
    conn.emit(ACK, add(conn.snd_nxt, -1))

