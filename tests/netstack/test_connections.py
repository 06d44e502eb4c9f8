"""Connection-heavy runs through the domains (wirenet -> netstack -> httpd) with an
in-process client: 1,000 sequential connections and 200 concurrent keep-alive ones;
afterwards no socket, TCP connection or heap object is left over. Also: socket misuse
through the proxy gives error values, and the leak check catches a stack that forgets
to forget its connections."""

from __future__ import annotations

import errno
from pathlib import Path

from redleaf_lab.api import RRef
from redleaf_lab.interfaces.socket import (
    DGRAM,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    STREAM,
    SockBuf,
    contents,
    fill,
)

from .frames import SYN as SYN_FLAG
from .frames import Host, tcp
from .wire import SERVER_NUMBER, Peer, Wire

REQUEST = b"GET /1K.bin HTTP/1.1\r\nHost: 10.9.0.2\r\n\r\n"
RESPONSE_BYTES = None


def boot(kernel):
    wire = Wire()
    net = kernel.load(str(Path(__file__).parent / "wirenet"), wire=wire)
    stack = kernel.load("netstack", net=net, address=(10, 9, 0, 2),
                        options=(("time_wait", 0.2), ("seed", 1)))
    httpd = kernel.load("httpd", sockets=stack, files=None, options=(("backlog", 256),))
    return wire, stack, httpd


def leftovers(census: dict[str, int], peer: Peer) -> dict[str, int]:
    """What a finished run must not leave: the listener and echo sockets stay."""
    left = {k: v for k, v in census.items() if k.startswith("tcp_") and v and k != "tcp_listeners"}
    if census["sockets"] != 2:
        left["sockets"] = census["sockets"]
    if peer.stack.tcp.connections:
        left["peer_connections"] = len(peer.stack.tcp.connections)
    return left


def response_done(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return len(body) >= length


def settle(peer: Peer, httpd, rounds: int = 60) -> None:
    for _ in range(rounds):
        peer.exchange(0.05)
        httpd.run(1, 0)


def test_1000_sequential_and_200_concurrent_keepalive_connections_leave_nothing(kernel):
    wire, stack, httpd = boot(kernel)
    peer = Peer(wire, time_wait=0.5)
    settle(peer, httpd, 2)
    objects_before = kernel.heap.stats().live_objects
    for _ in range(1000):
        fd = peer.socket(STREAM)
        assert peer.connect(fd, SERVER_NUMBER, 80) == -errno.EINPROGRESS
        got, sent = b"", False
        for _ in range(100):
            peer.exchange(0.0005)
            httpd.run(1, 0)
            if not sent and peer.poll((fd,), (POLLOUT,))[0]:
                assert peer.send(fd, REQUEST) == len(REQUEST)
                sent = True
            n, data = peer.recv(fd, 1 << 16)
            got += data if n > 0 else b""
            if response_done(got):
                break
        assert got.startswith(b"HTTP/1.1 200 OK") and response_done(got)
        peer.close(fd)
    settle(peer, httpd)
    census = dict(stack.census())
    assert leftovers(census, peer) == {}
    assert dict(httpd.stats())["accepted"] == 1000 and dict(httpd.stats())["open"] == 0

    # 200 concurrent keep-alive connections, three requests each, interleaved
    fds = [peer.socket(STREAM) for _ in range(200)]
    for fd in fds:
        peer.connect(fd, SERVER_NUMBER, 80)
    done = dict.fromkeys(fds, 0)
    buffers = dict.fromkeys(fds, b"")
    asked = dict.fromkeys(fds, False)
    for _ in range(2000):
        peer.exchange(0.0005)
        httpd.run(1, 0)
        for fd in fds:
            if done[fd] == 3:
                continue
            if not asked[fd] and peer.poll((fd,), (POLLOUT,))[0]:
                peer.send(fd, REQUEST)
                asked[fd] = True
            n, data = peer.recv(fd, 1 << 16)
            if n > 0:
                buffers[fd] += data
            if asked[fd] and response_done(buffers[fd]):
                done[fd] += 1
                buffers[fd], asked[fd] = b"", False
        if all(v == 3 for v in done.values()):
            break
    assert all(v == 3 for v in done.values())
    stats = dict(httpd.stats())
    assert stats["accepted"] == 1200 and stats["requests"] == 1600 and stats["open"] == 200
    for fd in fds:
        peer.close(fd)
    settle(peer, httpd)
    assert leftovers(dict(stack.census()), peer) == {}
    assert dict(httpd.stats())["open"] == 0
    assert kernel.heap.stats().live_objects == objects_before  # no heap object leaked
    # (no assertion on retransmissions: the stack's clock is real time, and a loaded
    # machine that pauses this thread past an RTO makes a correct stack retransmit)


def test_the_leak_check_catches_a_stack_that_keeps_closed_connections():
    host = Host(time_wait=0.5)
    host.listen()
    host.stack.tcp.forget = lambda conn: None  # the deliberate bug
    host.feed(tcp(40000, 80, 10, 0, SYN_FLAG))
    for _ in range(80):
        host.advance(1.0)  # the half-open connection gives up ...
    assert host.count("tcp_timeouts") == 1
    assert host.stack.tcp.connections  # ... but stays: this is what leftovers() flags
    census = {"sockets": 2, "tcp_connections": len(host.stack.tcp.connections), "tcp_listeners": 1}
    assert leftovers(census, Peer(Wire())) == {"tcp_connections": 1}


def test_socket_misuse_through_the_proxy_is_an_error_value(kernel):
    wire, stack, _httpd = boot(kernel)
    buf = RRef.new(SockBuf)
    fill(buf, b"data")
    assert stack.bind(999, 80) == -errno.EBADF
    assert stack.send(999, buf) == -errno.EBADF
    fd = stack.socket(STREAM)
    assert stack.bind(fd, 80) == -errno.EADDRINUSE  # httpd listens there
    assert stack.send(fd, buf) == -errno.ENOTCONN
    assert stack.bind(fd, 8080) == 0 and stack.listen(fd, 4) == 0
    n, buf = stack.recv(fd, buf)
    assert n == -errno.ENOTCONN  # recv on a listening socket
    assert stack.accept(fd)[0] == -errno.EAGAIN
    assert stack.sendto(fd, buf, SERVER_NUMBER, 7) == -errno.EOPNOTSUPP
    assert stack.close(fd) == 0 and stack.close(fd) == -errno.EBADF
    assert stack.send(fd, buf) == -errno.EBADF
    assert stack.socket(99) == -errno.EINVAL
    other = stack.socket(STREAM)
    assert stack.setsockopt(other, 12345, 1) == -errno.EINVAL
    assert stack.close(other) == 0
    udp = stack.socket(DGRAM)
    assert stack.bind(udp, 7) == -errno.EADDRINUSE  # the echo service has it
    assert stack.send(udp, buf) == -errno.EDESTADDRREQ
    fill(buf, b"x" * 2000)
    assert stack.sendto(udp, buf, SERVER_NUMBER + 1, 9) == -errno.EMSGSIZE
    assert stack.connect(udp, 0, 9) == -errno.EINVAL
    assert stack.poll((udp, 4242), (POLLIN, POLLIN), 0) == (0, POLLNVAL)
    assert stack.poll((udp,), (POLLIN, POLLIN), 0) == (POLLNVAL,)  # mismatched lengths
    n, _ip, _port, buf = stack.recvfrom(udp, buf)
    assert n == -errno.EAGAIN and contents(buf, 0) == b""
    assert kernel.domains["netstack"].state == "running" and kernel.crashes("netstack") == 0
    # the connect path: EINPROGRESS, then ECONNREFUSED from the peer's RST
    peer = Peer(wire)
    tcp_fd = stack.socket(STREAM)
    assert stack.connect(tcp_fd, int.from_bytes(bytes([10, 9, 0, 1]), "big"), 5) == -errno.EINPROGRESS
    for _ in range(5):
        stack.pump(1)
        peer.exchange(0.001)
    stack.pump(1)
    fill(buf, b"late")
    assert stack.send(tcp_fd, buf) == -errno.ECONNREFUSED


def test_a_malformed_request_gets_400_and_the_connection_closed_the_server_goes_on(kernel):
    wire, stack, httpd = boot(kernel)
    assert dict(stack.census())["tcp_listeners"] == 1
    peer = Peer(wire, time_wait=0.2)
    for raw, status in ((b"BOGUS\r\n\r\n", b"400"), (b"GET / HTTP/1.1\r\nHost: x\r\nX: "
                                                   + b"a" * 9000, b"400"),
                        (REQUEST, b"200")):
        fd = peer.socket(STREAM)
        peer.connect(fd, SERVER_NUMBER, 80)
        got, sent, eof = b"", False, False
        for _ in range(200):
            peer.exchange(0.001)
            httpd.run(1, 0)
            if not sent and peer.poll((fd,), (POLLOUT,))[0]:
                while raw:
                    n = peer.send(fd, raw)
                    raw = raw[n:] if n > 0 else raw
                    peer.exchange(0.001)
                    httpd.run(1, 0)
                sent = True
            n, data = peer.recv(fd, 1 << 16)
            got += data if n > 0 else b""
            if n == 0 or n == -errno.ECONNRESET:
                eof = True
                break
            if status == b"200" and response_done(got):
                break
        assert got.startswith(b"HTTP/1.1 " + status), got[:60]
        assert eof == (status == b"400")  # a bad request: the server closes after the reply
        peer.close(fd)
    settle(peer, httpd, 20)
    assert dict(httpd.stats())["bad_requests"] == 2 and dict(httpd.stats())["requests"] == 1
