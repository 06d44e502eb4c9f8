"""TCP's state machine (RFC 9293 3.3.2 and 3.10), driven segment by segment with
hand-built frames: every transition, simultaneous open and close, RST in each state,
challenge ACKs (RFC 5961), and the segments a host must answer with RST."""

from __future__ import annotations

import errno

import pytest
from redleaf_lab.domains.netstack.sockets import POLLIN, STREAM

from .frames import ACK, FIN, RST, SERVER_IP, SYN, Host, tcp

SERVER = int.from_bytes(SERVER_IP, "big")
C = 40000  # client port


def established(host: Host):
    host.listen()
    siss, fd = host.handshake()
    return siss + 1, fd  # server's next sequence number, the accepted descriptor


def test_passive_open_listen_syn_received_established():
    host = Host()
    host.listen()
    out = host.feed(tcp(C, 80, 1000, 0, SYN, mss=1200))
    assert host.conn().state == "SYN-RECEIVED"
    assert out[0].has(SYN | ACK) and out[0].ack == 1001 and out[0].mss == 1460
    host.feed(tcp(C, 80, 1001, out[0].seq + 1, ACK))
    assert host.conn().state == "ESTABLISHED" and host.conn().mss == 1200


def test_active_open_syn_sent_established_and_simultaneous_open():
    host = Host()
    fd = host.sockets.socket(STREAM)
    assert host.sockets.connect(fd, int.from_bytes(bytes([10, 9, 0, 1]), "big"), 80) == -errno.EINPROGRESS
    (syn,) = host.flush()
    assert syn.has(SYN) and not syn.has(ACK) and syn.mss == 1460
    conn = host.stack.tcp.connections[(bytes([10, 9, 0, 1]), 80, syn.sport)]
    assert conn.state == "SYN-SENT"
    out = host.feed(tcp(80, syn.sport, 5000, syn.seq + 1, SYN | ACK, mss=1000))
    assert conn.state == "ESTABLISHED" and out[0].ack == 5001 and conn.mss == 1000
    # simultaneous open: a SYN without ACK answers our SYN (3.10.7.3, figure 8)
    fd2 = host.sockets.socket(STREAM)
    host.sockets.connect(fd2, int.from_bytes(bytes([10, 9, 0, 1]), "big"), 81)
    (syn2,) = host.flush()
    conn2 = host.stack.tcp.connections[(bytes([10, 9, 0, 1]), 81, syn2.sport)]
    out = host.feed(tcp(81, syn2.sport, 7000, 0, SYN))
    assert conn2.state == "SYN-RECEIVED" and out[0].has(SYN | ACK) and out[0].ack == 7001
    host.feed(tcp(81, syn2.sport, 7001, syn2.seq + 1, ACK))
    assert conn2.state == "ESTABLISHED"


def test_passive_close_close_wait_last_ack_closed():
    host = Host()
    nxt, fd = established(host)
    out = host.feed(tcp(C, 80, 1001, nxt, FIN | ACK))
    assert host.conn().state == "CLOSE-WAIT" and out[0].ack == 1002
    assert host.sockets.recv(fd, 100) == (0, b"")  # end of stream
    host.sockets.close(fd)
    (fin,) = host.flush()
    assert fin.has(FIN | ACK) and host.conn().state == "LAST-ACK"
    host.feed(tcp(C, 80, 1002, fin.seq + 1, ACK))
    assert host.conn() is None and host.count("tcp_to_LAST-ACK") == 1


def test_active_close_fin_wait_1_fin_wait_2_time_wait_closed():
    host = Host(time_wait=2.0)
    nxt, fd = established(host)
    host.sockets.close(fd)
    (fin,) = host.flush()
    assert fin.has(FIN) and host.conn().state == "FIN-WAIT-1"
    host.feed(tcp(C, 80, 1001, nxt + 1, ACK))
    assert host.conn().state == "FIN-WAIT-2"
    out = host.feed(tcp(C, 80, 1001, nxt + 1, FIN | ACK))
    assert host.conn().state == "TIME-WAIT" and out[0].ack == 1002
    # a retransmitted FIN in TIME-WAIT is acknowledged again (3.10.7.4, eighth)
    again = host.feed(tcp(C, 80, 1001, nxt + 1, FIN | ACK))
    assert again and again[0].ack == 1002 and host.conn().state == "TIME-WAIT"
    host.advance(1.0)
    assert host.conn() is not None
    host.advance(1.5)
    assert host.conn() is None


def test_fin_wait_1_straight_to_time_wait_on_fin_ack():
    host = Host()
    nxt, fd = established(host)
    host.sockets.close(fd)
    host.flush()
    host.feed(tcp(C, 80, 1001, nxt + 1, FIN | ACK))  # acks our FIN and brings theirs
    assert host.conn().state == "TIME-WAIT"


def test_simultaneous_close_closing_then_time_wait():
    host = Host()
    nxt, fd = established(host)
    host.sockets.close(fd)
    (fin,) = host.flush()
    out = host.feed(tcp(C, 80, 1001, nxt, FIN | ACK))  # their FIN crosses ours
    assert host.conn().state == "CLOSING" and out[0].ack == 1002
    host.feed(tcp(C, 80, 1002, fin.seq + 1, ACK))
    assert host.conn().state == "TIME-WAIT"


def to_state(host: Host, state: str):
    """Bring a connection to `state`; returns (our next seq, their next seq)."""
    host.listen()
    if state == "SYN-RECEIVED":
        (synack,) = host.feed(tcp(C, 80, 1000, 0, SYN))
        return synack.seq + 1, 1001
    iss, fd = host.handshake()
    nxt = iss + 1
    theirs = 1001
    if state == "ESTABLISHED":
        return nxt, theirs
    if state == "CLOSE-WAIT":
        host.feed(tcp(C, 80, theirs, nxt, FIN | ACK))
        return nxt, theirs + 1
    if state == "LAST-ACK":
        host.feed(tcp(C, 80, theirs, nxt, FIN | ACK))
        host.sockets.close(fd)
        host.flush()
        return nxt + 1, theirs + 1
    host.sockets.close(fd)
    host.flush()
    if state == "FIN-WAIT-1":
        return nxt + 1, theirs
    if state == "FIN-WAIT-2":
        host.feed(tcp(C, 80, theirs, nxt + 1, ACK))
        return nxt + 1, theirs
    if state == "CLOSING":
        host.feed(tcp(C, 80, theirs, nxt, FIN | ACK))
        return nxt + 1, theirs + 1
    if state == "TIME-WAIT":
        host.feed(tcp(C, 80, theirs, nxt + 1, FIN | ACK))
        return nxt + 1, theirs + 1
    raise AssertionError(state)


STATES = ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT",
          "CLOSING", "LAST-ACK", "TIME-WAIT"]


@pytest.mark.parametrize("state", STATES)
def test_rst_in_each_state_closes_the_connection(state):
    host = Host()
    _ours, theirs = to_state(host, state)
    assert host.conn().state == state
    out = host.feed(tcp(C, 80, theirs, 0, RST))
    assert host.conn() is None and out == []
    if state == "SYN-RECEIVED":
        assert 80 in host.stack.tcp.listeners  # a passive open returns to LISTEN
    assert host.count("tcp_resets_received") == 1


@pytest.mark.parametrize("state", ["ESTABLISHED", "FIN-WAIT-2", "CLOSE-WAIT"])
def test_in_window_rst_that_is_not_exact_gets_a_challenge_ack(state):
    host = Host()
    _ours, theirs = to_state(host, state)
    out = host.feed(tcp(C, 80, theirs + 100, 0, RST))
    assert host.conn().state == state and out[0].has(ACK) and out[0].ack == theirs
    assert host.count("tcp_challenge_acks") == 1
    out = host.feed(tcp(C, 80, theirs + 200_000, 0, RST))  # outside the window: ignored
    assert out == [] and host.conn().state == state


def test_rst_in_syn_sent_refuses_the_connection_and_reports_it():
    host = Host()
    fd = host.sockets.socket(STREAM)
    host.sockets.connect(fd, int.from_bytes(bytes([10, 9, 0, 1]), "big"), 80)
    (syn,) = host.flush()
    host.feed(tcp(80, syn.sport, 0, syn.seq + 1, RST | ACK))
    assert host.sockets.send(fd, b"x") == -errno.ECONNREFUSED
    assert host.sockets.poll((fd,), (POLLIN,))[0]  # the error wakes a poller
    # a RST whose ACK does not acknowledge our SYN is dropped (3.10.7.3)
    fd2 = host.sockets.socket(STREAM)
    host.sockets.connect(fd2, int.from_bytes(bytes([10, 9, 0, 1]), "big"), 80)
    (syn2,) = host.flush()
    out = host.feed(tcp(80, syn2.sport, 0, syn2.seq + 5, RST | ACK))
    assert out == [] and host.stack.tcp.connections


def test_syn_in_established_gets_a_challenge_ack_not_a_reset():
    host = Host()
    _ours, _theirs = to_state(host, "ESTABLISHED")
    out = host.feed(tcp(C, 80, 9999, 0, SYN))
    assert host.conn().state == "ESTABLISHED" and out[0].has(ACK) and not out[0].has(RST)


def test_segments_without_a_connection_get_rst_as_3_10_7_1_says():
    host = Host()
    (rst,) = host.feed(tcp(C, 81, 500, 0, SYN))  # closed port, no ACK
    assert rst.has(RST | ACK) and rst.seq == 0 and rst.ack == 501
    (rst,) = host.feed(tcp(C, 81, 500, 777, ACK, b"abc"))  # with ACK: SEQ = SEG.ACK
    assert rst.has(RST) and rst.seq == 777
    assert host.feed(tcp(C, 81, 500, 777, RST)) == []  # a RST is never answered
    host.listen()
    (rst,) = host.feed(tcp(C, 80, 500, 4242, ACK))  # an ACK to a listener
    assert rst.has(RST) and rst.seq == 4242
    assert host.count("drop_tcp_no_connection") == 3


def test_bad_ack_in_syn_received_gets_rst_and_no_state_change():
    host = Host()
    ours, theirs = to_state(host, "SYN-RECEIVED")
    (rst,) = host.feed(tcp(C, 80, theirs, ours + 1000, ACK))
    assert rst.has(RST) and rst.seq == ours + 1000 and host.conn().state == "SYN-RECEIVED"


def test_backlog_full_drops_syns_and_listener_close_resets_pending():
    host = Host()
    fd = host.listen(backlog=2)
    host.feed(tcp(40001, 80, 10, 0, SYN), tcp(40002, 80, 10, 0, SYN))
    assert host.feed(tcp(40003, 80, 10, 0, SYN)) == []
    assert host.count("drop_tcp_backlog_full") == 1
    host.sockets.close(fd)
    out = host.flush()
    assert sorted(s.dport for s in out if s.has(RST)) == [40001, 40002]
    assert not host.stack.tcp.connections


def test_syn_received_retransmits_syn_ack_then_gives_up():
    host = Host()
    host.listen()
    host.feed(tcp(C, 80, 10, 0, SYN))
    resent = []
    for _ in range(100):  # RTO 1 s doubling: 1+2+4+8+16+32 s
        resent += host.advance(1.0)
    assert sum(1 for s in resent if s.has(SYN | ACK)) == 5
    assert host.conn() is None and host.count("tcp_timeouts") == 1
