"""TCP data transfer with hand-built segments: out-of-order and duplicate segments, the
receive window down to zero and its probes (both directions), retransmission after a
timeout (RFC 6298) and after three duplicate ACKs (RFC 5681), MSS, keep-alive, and a
whole transfer over a wire that loses every Nth frame."""

from __future__ import annotations

from redleaf_lab.domains.netstack.sockets import SO_KEEPALIVE, STREAM
from redleaf_lab.domains.netstack.tcp_rto import MIN_RTO, Rto

from .frames import ACK, FIN, PSH, SYN, Host, tcp
from .wire import SERVER_NUMBER, Peer, Wire

C = 40000


def setup(**options):
    host = Host(**options)
    host.listen()
    siss, fd = host.handshake()
    return host, siss + 1, fd


def test_out_of_order_segments_are_reassembled_and_acked_immediately():
    host, nxt, fd = setup()
    out = host.feed(tcp(C, 80, 1001 + 10, nxt, ACK, b"KLMNOPQRST"))
    assert out[0].ack == 1001  # a duplicate ACK at once (RFC 5681 4.2)
    out = host.feed(tcp(C, 80, 1001 + 20, nxt, ACK, b"UVWXYZ"))
    assert out[0].ack == 1001 and host.sockets.recv(fd, 100)[0] < 0  # nothing in order yet
    out = host.feed(tcp(C, 80, 1001, nxt, ACK | PSH, b"ABCDEFGHIJ"))
    assert host.sockets.recv(fd, 100) == (26, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert out[-1].ack == 1027
    assert host.count("tcp_out_of_order") == 2


def test_duplicate_and_overlapping_segments_deliver_each_byte_once():
    host, nxt, fd = setup()
    host.feed(tcp(C, 80, 1001, nxt, ACK, b"hello "))
    out = host.feed(tcp(C, 80, 1001, nxt, ACK, b"hello "))  # an exact duplicate
    assert out and out[0].ack == 1007
    host.feed(tcp(C, 80, 1004, nxt, ACK, b"lo world"))  # overlaps 3 old bytes
    assert host.sockets.recv(fd, 100) == (11, b"hello world")
    assert host.count("drop_tcp_duplicate") == 1 and host.count("tcp_duplicate_bytes") == 3


def test_zero_receive_window_probe_and_window_update():
    host, nxt, fd = setup(rcv_buffer=4096)
    seq = 1001
    for _ in range(4):
        out = host.feed(tcp(C, 80, seq, nxt, ACK, b"x" * 1024))
        seq += 1024
    assert out[-1].win == 0 and out[-1].ack == seq
    # a window probe (one byte beyond a zero window) is answered, its byte dropped
    out = host.feed(tcp(C, 80, seq, nxt, ACK, b"y"))
    assert out[0].ack == seq and out[0].win == 0
    assert host.count("tcp_zero_window_probes_received") == 1
    n, _data = host.sockets.recv(fd, 3000)
    assert n == 3000
    (update,) = host.flush()
    assert update.win >= 1460 and update.ack == seq  # the window update (3.8.6.2.2)
    host.feed(tcp(C, 80, seq, nxt, ACK, b"y"))
    assert host.sockets.recv(fd, 5000) == (1097, b"x" * 1096 + b"y")


def test_zero_send_window_is_probed_with_backoff_until_it_opens():
    host, nxt, fd = setup()
    host.feed(tcp(C, 80, 1001, nxt, ACK, win=0))
    assert host.sockets.send(fd, b"z" * 3000) == 3000
    assert host.flush() == []  # nothing may be sent into a zero window
    probes = []
    for _ in range(20):
        out = host.advance(0.5)
        probes += out
        for _probe in out:  # each probe is answered with the window still closed
            host.feed(tcp(C, 80, 1001, nxt, ACK, win=0))
    assert 3 <= len(probes) <= 6 and all(len(p.data) == 1 and p.seq == nxt for p in probes)
    assert host.count("tcp_window_probes") == len(probes)
    out = host.feed(tcp(C, 80, 1001, nxt, ACK, win=65535))
    assert sum(len(s.data) for s in out) == 3000 and out[0].seq == nxt
    assert host.conn().state == "ESTABLISHED"  # probes never give up while ACKs come


def test_retransmission_timeout_backs_off_and_karn_skips_the_sample():
    host, nxt, fd = setup()
    rto_before = host.conn().rto.rto
    host.sockets.send(fd, b"data")
    (first,) = host.flush()
    assert host.advance(rto_before * 0.9) == []
    (again,) = host.advance(rto_before * 0.2)
    assert again.seq == first.seq and again.data == b"data"
    assert host.conn().rto.rto == 2 * rto_before and host.count("tcp_retransmits") == 1
    host.feed(tcp(C, 80, 1001, nxt + 4, ACK))  # acks a retransmitted segment: no sample
    assert host.conn().rto.rto == rto_before and host.conn().rtx_at is None


def test_rto_estimator_follows_rfc_6298():
    rto = Rto()
    assert rto.rto == 1.0
    rto.sample(0.1)  # 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    assert abs(rto.srtt - 0.1) < 1e-9 and abs(rto.rto - 0.3) < 1e-9
    rto.sample(0.3)  # 2.3
    assert abs(rto.rttvar - (0.75 * 0.05 + 0.25 * 0.2)) < 1e-9
    assert abs(rto.srtt - (0.875 * 0.1 + 0.125 * 0.3)) < 1e-9
    for _ in range(50):
        rto.sample(0.0001)
    assert rto.rto == MIN_RTO
    for _ in range(20):
        rto.backoff()
    assert rto.rto == 60.0


def test_fast_retransmit_after_three_duplicate_acks():
    host, nxt, fd = setup()
    host.sockets.send(fd, bytes(1460 * 5))
    segments = host.flush()
    assert len(segments) == 5 and all(len(s.data) == 1460 for s in segments)
    for _ in range(2):
        assert host.feed(tcp(C, 80, 1001, nxt, ACK)) == []
    (resent,) = host.feed(tcp(C, 80, 1001, nxt, ACK))
    assert resent.seq == nxt and len(resent.data) == 1460
    assert host.count("tcp_fast_retransmits") == 1


def test_mss_option_limits_segments_and_absent_means_536():
    host = Host()
    host.listen()
    _siss, fd = host.handshake(mss=700)
    host.sockets.send(fd, bytes(2000))
    assert [len(s.data) for s in host.flush()] == [700, 700, 600]
    host2 = Host()
    host2.listen()
    _siss, fd2 = host2.handshake(mss=None)
    host2.sockets.send(fd2, bytes(1200))
    assert [len(s.data) for s in host2.flush()] == [536, 536, 128]


def test_keepalive_probes_then_aborts_a_silent_peer():
    host, nxt, fd = setup(keepalive_interval=10.0, keepalive_probes=3)
    assert host.sockets.setsockopt(fd, SO_KEEPALIVE, 60) == 0
    assert host.advance(59) == []
    (probe,) = host.advance(2)
    assert probe.seq == nxt - 1 and probe.has(ACK)  # SEG.SEQ = SND.NXT - 1
    host.feed(tcp(C, 80, 1001, nxt, ACK))  # answered: the idle clock restarts
    assert host.advance(30) == []
    sent = []
    for _ in range(12):
        sent += host.advance(10)
    assert host.count("tcp_keepalive_probes") == 4 and host.conn() is None
    assert sent[-1].flags & 0x04  # the abort sends RST
    assert host.sockets.recv(fd, 10)[0] == -110  # ETIMEDOUT


def test_transfer_over_a_wire_that_drops_every_7th_frame_is_byte_exact():
    from redleaf_lab.domains.netstack.sockets import Sockets
    from redleaf_lab.domains.netstack.stack import Stack
    from redleaf_lab.domains.netstack.tcp import TcpOptions

    from .wire import SERVER_IP, SERVER_MAC

    wire = Wire(drop_every=7)  # loses every 7th frame the server sends
    client = Peer(wire)
    server = Stack(SERVER_MAC, SERVER_IP, options=TcpOptions(time_wait=1.0), seed=5)
    sockets = Sockets(server)
    listener = sockets.socket(STREAM)
    sockets.bind(listener, 80)
    sockets.listen(listener, 4)
    payload = bytes(range(256)) * 600  # 153,600 bytes
    fd = client.socket(STREAM)
    client.connect(fd, SERVER_NUMBER, 80)
    got, accepted, now = bytearray(), None, 0.0
    for _ in range(20000):
        now += 0.005
        client.exchange(0.005)
        for frame in list(wire.inbound):
            server.input(frame, now)
        wire.inbound.clear()
        server.tick(now)
        if accepted is None:
            accepted = sockets.accept(listener)[0]
            if accepted >= 0:
                assert sockets.send(accepted, payload) == len(payload)
                sockets.close(accepted)
            else:
                accepted = None
        server.flush_acks()
        for frame in server.drain():
            wire.transmit(frame)
        n, data = client.recv(fd, 1 << 20)
        if n > 0:
            got += data
        if n == 0:
            break
    assert bytes(got) == payload
    assert wire.dropped > 10 and server.counters.get("tcp_retransmits") + \
        server.counters.get("tcp_fast_retransmits") > 0
    client.close(fd)
    for _ in range(400):
        now += 0.01
        client.exchange(0.01)
        for frame in list(wire.inbound):
            server.input(frame, now)
        wire.inbound.clear()
        server.tick(now)
        for frame in server.drain():
            wire.transmit(frame)
    assert not server.tcp.connections and not client.stack.tcp.connections


def test_fin_before_missing_data_waits_for_it():
    host, nxt, fd = setup()
    host.feed(tcp(C, 80, 1004, nxt, FIN | ACK, b"def"))
    assert host.conn().state == "ESTABLISHED"
    host.feed(tcp(C, 80, 1001, nxt, ACK, b"abc"))
    assert host.conn().state == "CLOSE-WAIT"
    assert host.sockets.recv(fd, 10) == (6, b"abcdef")
    assert host.sockets.recv(fd, 10) == (0, b"")


def test_sequence_numbers_wrap_around_2_to_the_32():
    host = Host()
    listener = host.listen()
    host.stack.tcp.random.getrandbits = lambda bits: 0xFFFFFFF0  # our ISS just below 2^32
    out = host.feed(tcp(C, 80, 0xFFFFFFFA, 0, SYN, mss=1460))  # theirs too
    assert out[0].seq == 0xFFFFFFF0
    host.feed(tcp(C, 80, 0xFFFFFFFB, 0xFFFFFFF1, ACK))
    fd = host.sockets.accept(listener)[0]
    host.feed(tcp(C, 80, 0xFFFFFFFB, 0xFFFFFFF1, ACK, b"0123456789"))  # crosses 2^32
    assert host.sockets.recv(fd, 100) == (10, b"0123456789")
    host.sockets.send(fd, b"x" * 3000)
    sent = host.flush()
    assert sent[0].seq == 0xFFFFFFF1 and sent[1].seq == (0xFFFFFFF1 + 1460) & 0xFFFFFFFF
    host.feed(tcp(C, 80, 5, (0xFFFFFFF1 + 3000) & 0xFFFFFFFF, ACK))
    assert host.conn().snd_una == (0xFFFFFFF1 + 3000) & 0xFFFFFFFF and not host.conn().sndbuf
