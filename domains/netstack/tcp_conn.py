"""One TCP connection: the transmission control block and its state machine (RFC 9293).

Interface (used by tcp.py and the socket layer, never by applications directly):
* `open_active(now)` sends the SYN (SYN-SENT); `open_passive(seg, now)` answers a SYN
  that reached a listener (SYN-RECEIVED);
* `arrive(seg, now)`: RFC 9293 section 3.10.7.4 "SEGMENT ARRIVES", step by step;
* `send(data)`, `receive(limit)`, `close()`, `abort()`: the user calls of 3.10.2-3.10.5
  (errors are returned as negative errno values by the socket layer, not raised here);
* `output(now)`: sends what the windows allow; `tick(now)`: the timers (retransmission
  RFC 6298, persist/zero-window probes 3.8.6.1, keep-alive RFC 1122 4.2.3.6, TIME-WAIT
  2*MSL); `flush_ack()`: a delayed ACK that no data segment carried.

Buffers: `sndbuf` holds the bytes from SND.UNA on (sent-unacked, then unsent);
`sndbuf_seq` is the sequence number of its first byte. `rcvbuf` holds in-order bytes
the application has not read; out-of-order segments wait in `ooo` (seq -> (data, fin)).
No window scaling, SACK or timestamps. `snd_max` is the highest sequence sent, so an
ACK of data sent before a timeout rewound SND.NXT (go-back-N) stays acceptable.

Ownership: a connection belongs to the Tcp layer (tcp.py) that created it; the socket
layer holds a reference while a descriptor names it. Single-threaded (the Stack's lock).
"""

import errno

from .tcp_rto import Rto, Window
from .tcp_segment import ACK, FIN, PSH, RST, SYN, add, le, lt
from .tcp_states import (  # noqa: F401 (re-exported for tcp.py and sockets.py)
    CAN_RECEIVE,
    CAN_SEND,
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    DEFAULT_MSS,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    LISTEN,
    OUR_MSS,
    SYN_RECEIVED,
    SYN_SENT,
    SYNCHRONIZED,
    TIME_WAIT,
)
from .tcp_timers import tick


class Connection:
    def __init__(self, layer, local_ip: bytes, local_port: int, remote_ip: bytes,
                 remote_port: int, iss: int, options) -> None:
        self.layer = layer
        self.local_ip, self.local_port = local_ip, local_port
        self.remote_ip, self.remote_port = remote_ip, remote_port
        self.key = (remote_ip, remote_port, local_port)
        self.state = CLOSED
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.irs = self.rcv_nxt = 0
        self.rcv_capacity = options.rcv_buffer
        self.snd_capacity = options.snd_buffer
        self.rcv_adv = 0  # right edge of the window we advertised last
        self.sndbuf = bytearray()
        self.sndbuf_seq = add(iss, 1)
        self.rcvbuf = bytearray()
        self.ooo = {}
        self.mss = DEFAULT_MSS
        self.rto = Rto()
        self.cc = Window(DEFAULT_MSS)
        self.retries = 0
        self.rtx_at = None  # retransmission timer deadline
        self.persist_at = None
        self.probe_out = False  # a one-byte zero-window probe is outstanding
        self.timed_seq = None  # Karn: the segment being timed and when it left
        self.timed_at = 0.0
        self.fin_queued = False  # the user closed: a FIN follows the data
        self.fin_seq = None  # sequence number of our FIN once sent
        self.fin_received = False
        self.ack_due = False
        self.error = 0  # errno to report (ECONNRESET, ECONNREFUSED, ETIMEDOUT)
        self.timewait_until = 0.0
        self.listener = None  # the listening socket that spawned us, until accepted
        self.keepalive_idle = 0.0
        self.keepalive_interval = options.keepalive_interval
        self.keepalive_probes = options.keepalive_probes
        self.keepalive_sent = 0
        self.last_heard = 0.0
        self.options = options

    # -- helpers -----------------------------------------------------------------
    def window(self) -> int:
        """Receive window to advertise (RFC 9293 3.8.6.2.2, receiver SWS avoidance):
        the free buffer space, but the right edge never moves back and only moves
        forward by at least min(buffer/2, MSS)."""
        free = self.rcv_capacity - len(self.rcvbuf)
        edge = self.rcv_nxt + free
        old = self.rcv_adv
        if lt(old, edge) and (edge - old) & 0xFFFFFFFF < min(self.rcv_capacity // 2, self.mss):
            edge = old
        if lt(edge, self.rcv_nxt):
            edge = self.rcv_nxt
        return min(65535, (edge - self.rcv_nxt) & 0xFFFFFFFF)

    def emit(self, flags: int, seq: int, data: bytes = b"", mss: int = 0) -> None:
        wnd = self.window()
        self.rcv_adv = add(self.rcv_nxt, wnd)
        if flags & ACK:
            self.ack_due = False
        self.layer.emit(self, flags, seq, self.rcv_nxt if flags & ACK else 0, wnd, data, mss)

    def send_ack(self) -> None:
        self.emit(ACK, self.snd_nxt)

    def schedule_ack(self) -> None:
        """A delayed ACK: sent by the next data segment, else by flush_acks()."""
        self.ack_due = True
        self.layer.ack_due.add(self)

    def flush_ack(self) -> None:
        if self.ack_due and self.state != CLOSED:
            self.send_ack()

    def in_flight(self) -> int:
        return (self.snd_nxt - self.snd_una) & 0xFFFFFFFF

    def set_state(self, state: str) -> None:
        self.layer.counters.add("tcp_to_" + state)
        self.state = state

    # -- opening (3.10.1) ------------------------------------------------------------
    def open_active(self, now: float) -> None:
        self.set_state(SYN_SENT)
        self.snd_nxt = self.snd_max = add(self.iss, 1)
        self.timed_seq, self.timed_at = self.iss, now
        self.emit(SYN, self.iss, mss=OUR_MSS)
        self.arm_rtx(now)

    def open_passive(self, seg, now: float) -> None:
        """A SYN reached a listener (3.10.7.2): remember it, answer SYN,ACK."""
        self.irs = seg.seq
        self.rcv_nxt = add(seg.seq, 1)
        self.take_mss(seg.mss)
        self.snd_wnd = seg.window
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        self.set_state(SYN_RECEIVED)
        self.snd_nxt = self.snd_max = add(self.iss, 1)
        self.last_heard = now
        self.timed_seq, self.timed_at = self.iss, now
        self.emit(SYN | ACK, self.iss, mss=OUR_MSS)
        self.arm_rtx(now)

    def take_mss(self, mss: int) -> None:
        self.mss = max(64, min(mss or DEFAULT_MSS, OUR_MSS))
        self.cc = Window(self.mss)

    # -- user calls (3.10.2 - 3.10.5) --------------------------------------------------
    def send(self, data: bytes, now: float) -> int:
        room = self.snd_capacity - len(self.sndbuf)
        if room <= 0:
            return 0
        taken = data[:room]
        self.sndbuf += taken
        self.output(now)
        return len(taken)

    def send_room(self) -> int:
        return self.snd_capacity - len(self.sndbuf)

    def receive(self, limit: int) -> bytes:
        data = bytes(self.rcvbuf[:limit])
        del self.rcvbuf[:limit]
        if data and self.state in CAN_RECEIVE and lt(self.rcv_adv, add(self.rcv_nxt, self.window())):
            self.schedule_ack()  # a window update: window() moved the edge enough (3.8.6.2.2)
        return data

    def close(self, now: float) -> None:
        """CLOSE (3.10.4): queue a FIN after the data; unread data means abort (RST),
        as RFC 2525 2.17 and Linux do."""
        if self.rcvbuf and self.state in SYNCHRONIZED:
            self.layer.counters.add("tcp_close_with_unread_data")
            self.abort()
            return
        if self.state in (SYN_SENT, CLOSED, LISTEN):
            self.drop_connection()
            return
        if self.state in (SYN_RECEIVED, ESTABLISHED):
            self.fin_queued = True
            self.set_state(FIN_WAIT_1)
        elif self.state == CLOSE_WAIT:
            self.fin_queued = True
            self.set_state(LAST_ACK)
        self.output(now)

    def abort(self) -> None:
        """ABORT (3.10.5): send RST in synchronized states, forget the connection."""
        if self.state in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            self.layer.counters.add("tcp_resets_sent")
            self.emit(RST | ACK, self.snd_nxt)
        self.drop_connection()

    def drop_connection(self, error: int = 0) -> None:
        if error and not self.error:
            self.error = error
        self.state = CLOSED
        self.layer.forget(self)

    # -- output --------------------------------------------------------------------------
    def output(self, now: float) -> None:
        """Send new data within min(SND.WND, cwnd), then the FIN (3.8.6, RFC 5681)."""
        if self.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, LAST_ACK, CLOSING):
            return
        total_end = add(self.sndbuf_seq, len(self.sndbuf))
        sent_any = False
        while True:
            limit = min(self.snd_wnd, self.cc.cwnd) - self.in_flight()
            offset = (self.snd_nxt - self.sndbuf_seq) & 0xFFFFFFFF
            unsent = len(self.sndbuf) - offset
            if unsent <= 0 or limit <= 0:
                break
            size = min(unsent, self.mss, limit)
            chunk = bytes(self.sndbuf[offset:offset + size])
            last = offset + size == len(self.sndbuf)
            self.emit(ACK | (PSH if last else 0), self.snd_nxt, chunk)
            self.advance(size, now)
            sent_any = True
        if (self.fin_queued and self.snd_nxt == total_end
                and (self.fin_seq is None or self.snd_nxt == self.fin_seq)):
            self.fin_seq = self.snd_nxt
            self.emit(FIN | ACK, self.snd_nxt)
            self.advance(1, now)
            sent_any = True
        if not sent_any and self.snd_wnd == 0 and self.in_flight() == 0 and (
                len(self.sndbuf) or self.fin_queued) and self.persist_at is None:
            self.persist_at = now + self.rto.rto  # zero window: probe later (3.8.6.1)

    def advance(self, size: int, now: float) -> None:
        if self.timed_seq is None and self.snd_nxt == self.snd_max:
            self.timed_seq, self.timed_at = self.snd_nxt, now
        self.snd_nxt = add(self.snd_nxt, size)
        if lt(self.snd_max, self.snd_nxt):
            self.snd_max = self.snd_nxt
        if self.rtx_at is None:
            self.arm_rtx(now)

    def arm_rtx(self, now: float) -> None:
        self.rtx_at = now + self.rto.rto

    # -- timers (tcp_timers.py) ----------------------------------------------------------
    def tick(self, now: float) -> None:
        tick(self, now)

    def abort_with(self, error: int) -> None:
        if self.state in SYNCHRONIZED or self.state == SYN_RECEIVED:
            self.emit(RST | ACK, self.snd_nxt)
        self.drop_connection(error)

    # -- segment arrival (3.10.7.4) -----------------------------------------------------------
    def arrive(self, seg, now: float) -> None:
        self.last_heard = now
        self.keepalive_sent = 0
        if self.state == SYN_SENT:
            self.arrive_syn_sent(seg, now)
            return
        if not self.acceptable(seg):
            return
        flags = seg.flags
        # second: RST (with RFC 5961 3.2's challenge ACK for an in-window, inexact one)
        if flags & RST:
            if seg.seq != self.rcv_nxt:
                self.layer.counters.add("tcp_challenge_acks")
                self.send_ack()
                return
            self.layer.counters.add("tcp_resets_received")
            if self.state == SYN_RECEIVED and self.listener is not None:
                self.drop_connection()  # passive open: back to LISTEN (the listener stays)
            elif self.state in (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, SYN_RECEIVED):
                self.drop_connection(errno.ECONNRESET)
            else:
                self.drop_connection()
            return
        # fourth: SYN in a synchronized state: challenge ACK (RFC 5961 4.2)
        if flags & SYN:
            if self.state == SYN_RECEIVED and seg.seq == self.irs:
                self.emit(SYN | ACK, self.iss, mss=OUR_MSS)  # our SYN,ACK was lost
                return
            self.layer.counters.add("tcp_challenge_acks")
            self.send_ack()
            return
        # fifth: the ACK field
        if not flags & ACK:
            self.layer.counters.drop("tcp_no_ack")
            return
        if self.state == SYN_RECEIVED:
            if lt(self.snd_una, seg.ack) and le(seg.ack, self.snd_max):
                self.set_state(ESTABLISHED)
                self.snd_wnd = seg.window
                self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
                self.layer.established(self)
            else:
                self.layer.counters.add("tcp_resets_sent")
                self.layer.emit(self, RST, seg.ack, 0, 0, b"", 0)
                return
        if not self.process_ack(seg, now):
            return
        if self.state == TIME_WAIT:
            if flags & FIN:  # a retransmitted FIN: ACK it, restart 2 MSL
                self.send_ack()
                self.timewait_until = now + self.options.time_wait
            return
        # seventh: segment text
        if seg.data and self.state in CAN_RECEIVE:
            self.take_text(seg, now)
        elif seg.data:
            self.layer.counters.drop("tcp_data_after_fin")
        # eighth: FIN (a FIN after out-of-order text waits with that text in `ooo`)
        if seg.flags & FIN:
            fin_at = add(seg.seq, len(seg.data))
            if fin_at == self.rcv_nxt:
                self.take_fin(now)
            elif not seg.data and len(self.ooo) < 64:
                self.ooo[seg.seq] = (b"", True)
                self.send_ack()

    def acceptable(self, seg) -> bool:
        """First check (3.10.7.4): the four acceptability cases; trims the segment to
        the window. An unacceptable segment is answered with an ACK (unless RST)."""
        advertised = (self.rcv_adv - self.rcv_nxt) & 0xFFFFFFFF if le(self.rcv_nxt, self.rcv_adv) else 0
        wnd = max(advertised, self.window())
        seq, length = seg.seq, seg.length
        end = add(self.rcv_nxt, wnd)
        if length == 0:
            ok = seq == self.rcv_nxt if wnd == 0 else le(self.rcv_nxt, seq) and lt(seq, end)
        elif wnd == 0:
            ok = False
        else:
            last = add(seq, length - 1)
            ok = (le(self.rcv_nxt, seq) and lt(seq, end)) or (le(self.rcv_nxt, last) and lt(last, end))
        if not ok:
            if wnd == 0 and seq == self.rcv_nxt and seg.flags & ACK and not seg.flags & RST:
                # a zero-window probe: keep its ACK information, drop its text (3.10.7.4)
                self.layer.counters.add("tcp_zero_window_probes_received")
                seg.data = b""
                seg.flags &= ~(FIN | SYN | PSH)
                self.schedule_ack()
                return True
            if seg.flags & RST:
                self.layer.counters.drop("tcp_rst_out_of_window")
                return False
            if length and le(add(seq, length), self.rcv_nxt):
                self.layer.counters.drop("tcp_duplicate")  # all of it arrived before
            else:
                self.layer.counters.drop("tcp_out_of_window" if length else "tcp_old_ack")
            self.send_ack()
            return False
        if lt(seq, self.rcv_nxt):  # trim what we already have
            cut = (self.rcv_nxt - seq) & 0xFFFFFFFF
            if seg.flags & SYN:
                seg.flags &= ~SYN
                cut -= 1
                seg.seq = add(seg.seq, 1)
            if cut > len(seg.data):
                seg.flags &= ~FIN  # the FIN is old too
            self.layer.counters.add("tcp_duplicate_bytes", min(cut, len(seg.data)))
            seg.data = seg.data[cut:]
            seg.seq = add(seg.seq, cut)
            self.schedule_ack()
        room = (end - seg.seq) & 0xFFFFFFFF
        if len(seg.data) > room:
            seg.data = seg.data[:room]
            seg.flags &= ~FIN
            self.layer.counters.add("tcp_trimmed_to_window")
        return True

    def process_ack(self, seg, now: float) -> bool:
        """Fifth check for synchronized states: new ACKs, duplicates, window updates,
        and the FIN-acknowledged transitions. False: drop the rest of the segment."""
        ack = seg.ack
        if self.probe_out and ack == add(self.snd_nxt, 1) and self.snd_nxt == self.snd_max:
            self.snd_nxt = self.snd_max = ack  # the peer took our probe byte
        self.probe_out = False
        if lt(self.snd_max, ack):
            self.layer.counters.drop("tcp_ack_unsent")
            self.send_ack()
            return False
        if lt(self.snd_una, ack):
            acked = (ack - self.snd_una) & 0xFFFFFFFF
            data_acked = min((ack - self.sndbuf_seq) & 0xFFFFFFFF, len(self.sndbuf))
            if lt(self.sndbuf_seq, ack) or ack == add(self.sndbuf_seq, len(self.sndbuf)):
                del self.sndbuf[:data_acked]
                self.sndbuf_seq = add(self.sndbuf_seq, data_acked)
            self.snd_una = ack
            if lt(self.snd_nxt, ack):
                self.snd_nxt = ack
            if self.timed_seq is not None and lt(self.timed_seq, ack):
                self.rto.sample(now - self.timed_at)
                self.timed_seq = None
            self.rto.reset_backoff()
            self.retries = 0
            self.cc.on_ack(acked)
            self.rtx_at = None if self.snd_una == self.snd_max else now + self.rto.rto
        elif ack == self.snd_una and not seg.data and not seg.flags & (SYN | FIN) \
                and seg.window == self.snd_wnd and self.snd_max != self.snd_una:
            self.layer.counters.add("tcp_dupacks")
            if self.cc.on_dupack(self.in_flight()):
                self.fast_retransmit(now)
        # window update (3.10.7.4, fifth check, ESTABLISHED)
        if lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and le(self.snd_wl2, ack)):
            opened = self.snd_wnd == 0 and seg.window > 0
            self.snd_wnd = seg.window
            self.snd_wl1, self.snd_wl2 = seg.seq, ack
            if opened:
                self.persist_at = None
                self.rto.reset_backoff()
        fin_acked = self.fin_seq is not None and lt(self.fin_seq, self.snd_una)
        if self.state == FIN_WAIT_1 and fin_acked:
            self.set_state(FIN_WAIT_2)
        elif self.state == CLOSING and fin_acked:
            self.enter_time_wait(now)
        elif self.state == LAST_ACK and fin_acked:
            self.drop_connection()
            return False
        if self.state not in (TIME_WAIT, CLOSED):
            self.output(now)
        return True

    def fast_retransmit(self, now: float) -> None:
        """RFC 5681 3.2: resend the segment at SND.UNA after three duplicate ACKs."""
        self.layer.counters.add("tcp_fast_retransmits")
        self.timed_seq = None
        offset = (self.snd_una - self.sndbuf_seq) & 0xFFFFFFFF
        chunk = bytes(self.sndbuf[offset:offset + self.mss])
        if chunk:
            self.emit(ACK, self.snd_una, chunk)
        elif self.fin_seq == self.snd_una:
            self.emit(FIN | ACK, self.snd_una)
        self.rtx_at = now + self.rto.rto

    def take_text(self, seg, now: float) -> None:
        """Seventh check: in-order text goes to the user, later text waits in `ooo`."""
        if seg.seq != self.rcv_nxt:
            self.layer.counters.add("tcp_out_of_order")
            if len(self.ooo) < 64:
                self.ooo[seg.seq] = (seg.data, bool(seg.flags & FIN))
            self.send_ack()  # an immediate duplicate ACK (RFC 5681 4.2)
            return
        self.rcvbuf += seg.data
        self.rcv_nxt = add(self.rcv_nxt, len(seg.data))
        self.schedule_ack()
        while self.ooo:
            pulled = False
            for seq in list(self.ooo):
                data, fin = self.ooo[seq]
                end = add(seq, len(data))
                if le(seq, self.rcv_nxt):
                    del self.ooo[seq]
                    if lt(self.rcv_nxt, end):
                        fresh = data[(self.rcv_nxt - seq) & 0xFFFFFFFF:]
                        self.rcvbuf += fresh
                        self.rcv_nxt = end
                        pulled = True
                    if fin and self.rcv_nxt == end:
                        self.take_fin(now)
                        return
            if not pulled:
                break

    def take_fin(self, now: float) -> None:
        """Eighth check: the FIN, with the transitions of 3.10.7.4."""
        if self.fin_received:
            self.send_ack()
            return
        self.fin_received = True
        self.rcv_nxt = add(self.rcv_nxt, 1)
        self.ooo.clear()
        if self.state in (SYN_RECEIVED, ESTABLISHED):
            self.set_state(CLOSE_WAIT)
        elif self.state == FIN_WAIT_1:
            if self.fin_seq is not None and lt(self.fin_seq, self.snd_una):
                self.enter_time_wait(now)
            else:
                self.set_state(CLOSING)  # simultaneous close
        elif self.state == FIN_WAIT_2:
            self.enter_time_wait(now)
        self.send_ack()

    def enter_time_wait(self, now: float) -> None:
        self.set_state(TIME_WAIT)
        self.rtx_at = self.persist_at = None
        self.timewait_until = now + self.options.time_wait

    def arrive_syn_sent(self, seg, now: float) -> None:
        """3.10.7.3: the reply to our SYN."""
        flags = seg.flags
        if flags & ACK and (le(seg.ack, self.iss) or lt(self.snd_max, seg.ack)):
            if not flags & RST:
                self.layer.emit(self, RST, seg.ack, 0, 0, b"", 0)
            self.layer.counters.drop("tcp_bad_ack_in_syn_sent")
            return
        if flags & RST:
            if flags & ACK:
                self.layer.counters.add("tcp_connection_refused")
                self.drop_connection(errno.ECONNREFUSED)
            else:
                self.layer.counters.drop("tcp_rst_without_ack")
            return
        if not flags & SYN:
            self.layer.counters.drop("tcp_no_syn")
            return
        self.irs = seg.seq
        self.rcv_nxt = add(seg.seq, 1)
        self.take_mss(seg.mss)
        self.snd_wnd = seg.window
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        if flags & ACK:
            self.snd_una = seg.ack
            if self.timed_seq is not None:
                self.rto.sample(now - self.timed_at)
            self.timed_seq = None
            self.rtx_at = None
            self.retries = 0
            self.set_state(ESTABLISHED)
            self.send_ack()
            self.output(now)
        else:  # simultaneous open
            self.set_state(SYN_RECEIVED)
            self.emit(SYN | ACK, self.iss, mss=OUR_MSS)
