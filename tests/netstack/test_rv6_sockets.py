"""Rv6's socket system calls (domains/rv6/sysnet.py) over the netstack domain on the
in-process wire: descriptors in the program's own table (files and sockets share it,
close/dup/exit reclaim them), errors as values, a program's crash resets its
connections, a stack crash resets the sockets made through it, and the Rv6 httpd
program serves the file system's files with the httpd domain's HTTP behaviour."""

from __future__ import annotations

import time

import pytest
from redleaf_lab.domains.httpd.site import builtin_files

import redleaf_lab
from redleaf_lab import Block, RRef
from redleaf_lab.interfaces.rv6 import (
    EADDRINUSE,
    EBADF,
    ECONNRESET,
    EFAULT,
    EINVAL,
    EMFILE,
    ENETDOWN,
    ENOTCONN,
    ENOTDIR,
    ENOTSOCK,
    EOPNOTSUPP,
    ESPIPE,
    NOFILE,
    O_CREATE,
    O_RDWR,
    T_SOCKET,
)
from redleaf_lab.interfaces.socket import DGRAM, POLLIN, POLLNVAL, POLLOUT, STREAM, SockBuf
from redleaf_lab.rv6img.programs import SyscallPort

from .rv6net import Client, boot, site_image
from .wire import CLIENT_IP, SERVER_NUMBER

EAGAIN = 11
FILES = dict(builtin_files())


@pytest.fixture
def big_kernel():
    k = redleaf_lab.boot(heap_bytes=128 << 20, max_objects=1 << 16)
    try:
        yield k
    finally:
        if not k._closed:
            assert k.shutdown() == {"objects": 0, "bytes": 0}


@pytest.fixture
def net(big_kernel):
    return boot(big_kernel)


def pump(port: SyscallPort, client: Client, fd: int, want: int, rounds: int = 400) -> int:
    """Step the client and poll fd until `want` is ready (the poll runs the stack)."""
    for _ in range(rounds):
        client.step(0)
        ready = port.poll((fd,), (want,), 1)[0]
        if ready:
            return ready
    raise AssertionError("never ready")


def block(data: bytes) -> RRef:
    buf = RRef.new(Block)
    buf.write(data)
    return buf


def test_a_connection_through_the_syscalls(net):
    port, client = net.port(100_000), Client(net)
    assert port.open("/f", O_CREATE | O_RDWR) == 0  # a file takes fd 0 ...
    lfd = port.socket(STREAM)
    assert lfd == 1  # ... sockets share the table
    assert port.bind(lfd, 8080) == 0 and port.listen(lfd, 4) == 0
    assert port.accept(lfd)[0] == -EAGAIN
    cfd = client.sockets.socket(STREAM)
    client.sockets.connect(cfd, SERVER_NUMBER, 8080)
    pump(port, client, lfd, POLLIN)
    fd, ip, peer_port = port.accept(lfd)
    assert fd == 2 and ip == int.from_bytes(CLIENT_IP, "big") and peer_port > 0
    client.send_all(cfd, b"ping over rv6")
    pump(port, client, fd, POLLIN)
    n, buf = port.recv(fd, RRef.new(Block), 4096)
    assert buf.tobytes()[:n] == b"ping over rv6"
    n, buf = port.send(fd, block(b"pong"), 4)
    assert n == 4
    got, _ = client.receive(cfd, lambda d: d == b"pong")
    assert got == b"pong"
    # read and write on a socket descriptor are recv and send
    n, buf = port.write(fd, block(b"via write"), 9)
    assert n == 9
    assert client.receive(cfd, lambda d: d == b"via write")[0] == b"via write"
    client.send_all(cfd, b"via read")
    pump(port, client, fd, POLLIN)
    n, buf = port.read(fd, buf, 4096)
    assert buf.tobytes()[:n] == b"via read"
    # the descriptor is a socket to fstat, seek and readdir
    assert port.fstat(fd)[:4] == (0, 0, 0, T_SOCKET)
    assert port.seek(fd, 0, 0) == -ESPIPE
    assert port.readdir(fd)[0] == -ENOTDIR
    # close: the peer sees the end of the stream; the number is free for a file
    assert port.close(fd) == 0
    data, last = client.receive(cfd, lambda d: False, timeout=2)
    assert data == b"" and last == 0
    assert port.open("/f", O_RDWR) == 2
    assert port.close(lfd) == 0
    assert net.census()["sockets"] == 0


def test_dup_shares_the_socket_and_the_last_close_closes_it(net):
    port = net.port(100_000)
    fd = port.socket(DGRAM)
    assert port.bind(fd, 5353) == 0
    copy = port.dup(fd)
    assert copy == fd + 1
    assert port.close(fd) == 0
    assert net.census()["udp_endpoints"] == 1  # still open through the copy
    assert port.bind(copy, 5354) == -EINVAL  # bound already: it is the same socket
    assert port.close(copy) == 0
    assert net.census()["udp_endpoints"] == 0 and net.census()["sockets"] == 0
    assert port.close(copy) == -EBADF


def test_datagrams_and_poll_over_files_and_sockets(net):
    port, client = net.port(100_000), Client(net)
    fd = port.socket(DGRAM)
    assert port.bind(fd, 9999) == 0
    f = port.open("/g", O_CREATE | O_RDWR)
    # a file is ready at once; a socket with nothing queued is not (POLLOUT is)
    assert port.poll((f, fd), (POLLIN, POLLIN), 0) == (POLLIN, 0)
    assert port.poll((fd,), (POLLOUT,), 0) == (POLLOUT,)
    assert port.poll((fd, 99), (POLLIN, POLLIN), 0) == (0, POLLNVAL)
    cfd = client.sockets.socket(DGRAM)
    client.sockets.sendto(cfd, b"datagram", SERVER_NUMBER, 9999)
    pump(port, client, fd, POLLIN)
    n, ip, sport, buf = port.recvfrom(fd, RRef.new(Block), 4096)
    assert buf.tobytes()[:n] == b"datagram" and ip == int.from_bytes(CLIENT_IP, "big")
    n, buf = port.sendto(fd, buf, n, ip, sport)
    assert n == 8
    got = b""
    for _ in range(200):
        client.step(0)
        port.poll((fd,), (POLLIN,), 1)
        k, _ip, _p, data = client.sockets.recvfrom(cfd, 4096)
        if k > 0:
            got = data
            break
    assert got == b"datagram"
    # a timed poll waits (about) its timeout when nothing comes
    start = time.monotonic()
    assert port.poll((fd,), (POLLIN,), 60) == (0,)
    assert time.monotonic() - start >= 0.05


def test_misuse_is_an_error_value(net, big_kernel):
    port = net.port(100_000)
    f = port.open("/h", O_CREATE | O_RDWR)
    tcp, udp = port.socket(STREAM), port.socket(DGRAM)
    sockbuf = RRef.new(SockBuf)
    cases = [
        (lambda: port.socket(3), -EINVAL),
        (lambda: port.socket("tcp"), -EINVAL),
        (lambda: port.bind(f, 80), -ENOTSOCK),  # a file is not a socket
        (lambda: port.bind(42, 80), -EBADF),
        (lambda: port.bind(tcp, 70000), -EINVAL),
        (lambda: port.bind(tcp, "80"), -EINVAL),
        (lambda: port.listen(udp, 1), -EOPNOTSUPP),
        (lambda: port.listen(tcp, 1), -EINVAL),  # not bound
        (lambda: port.accept(tcp)[0], -EINVAL),
        (lambda: port.connect(tcp, 0, 80), -EINVAL),
        (lambda: port.send(tcp, RRef.new(Block), 1)[0], -ENOTCONN),
        (lambda: port.send(tcp, RRef.new(Block), 4097)[0], -EINVAL),  # over the buffer
        (lambda: port.recv(tcp, RRef.new(Block), -1)[0], -EINVAL),
        (lambda: port.send(tcp, b"not an RRef", 3)[0], -EFAULT),
        (lambda: port.send(tcp, sockbuf, 3)[0], -EFAULT),  # an RRef of another layout
        (lambda: port.recvfrom(udp, [], 3)[0], -EFAULT),
        (lambda: port.sendto(udp, RRef.new(Block), 10, "1.2.3.4", 9)[0], -EINVAL),
        (lambda: port.recvfrom(udp, RRef.new(Block), 10)[0], -EAGAIN),
        (lambda: port.poll((tcp,), (POLLIN, POLLIN), 0), (POLLNVAL,)),
        (lambda: port.poll("fds", (), 0), ()),
        (lambda: port.poll(tuple(range(NOFILE + 1)), (POLLIN,) * (NOFILE + 1), 0),
         (POLLNVAL,) * (NOFILE + 1)),
    ]
    for i, (call, want) in enumerate(cases):
        assert call() == want, f"case {i}"
    assert port.bind(tcp, 8081) == 0
    other = net.port(100_001)  # another process: its own table, the same port space
    theirs = other.socket(STREAM)
    assert other.bind(theirs, 8081) == -EADDRINUSE
    assert other.close(tcp if tcp != theirs else theirs + 1) == -EBADF  # not its socket
    # after close, every call on the number is EBADF
    assert port.close(tcp) == 0
    assert port.send(tcp, RRef.new(Block), 1)[0] == -EBADF
    assert port.listen(tcp, 1) == -EBADF
    for fd in (udp, f):
        assert port.close(fd) == 0
    assert other.close(theirs) == 0
    assert net.census()["sockets"] == 0
    assert big_kernel.domains["netstack"].state == "running"
    assert big_kernel.domains["rv6"].state == "running"
    sockbuf.drop()


def test_no_stack_attached_is_enetdown(big_kernel):
    from redleaf_lab.rv6img.system import boot_rv6

    rv6 = boot_rv6(big_kernel, site_image())
    assert SyscallPort(rv6.core, 100_000).socket(STREAM) == -ENETDOWN


def test_a_process_holds_at_most_nofile_descriptors(net):
    port, other = net.port(100_000), net.port(100_001)
    fds = [port.socket(DGRAM) for _ in range(NOFILE)]
    assert all(fd >= 0 for fd in fds)
    assert port.socket(DGRAM) == -EMFILE
    assert port.open("/x", O_CREATE | O_RDWR) == -EMFILE
    mine = other.socket(DGRAM)
    assert mine >= 0  # the limit is per process
    for fd in fds:
        assert port.close(fd) == 0
    assert other.close(mine) == 0
    assert net.census()["sockets"] == 0


HOG = b'''
from redleaf_lab.interfaces.socket import STREAM


def main(u, argv):
    fds = []
    while True:
        fd = u.sys.socket(STREAM)
        if fd < 0:
            break
        fds.append(fd)
    u.puts(1, "hog %d %s\\n" % (len(fds), u.strerror(fd)))
    if "crash" in argv:
        raise RuntimeError("hog crashes holding its sockets")
    return 0
'''


def test_exhausting_programs_get_errors_and_their_end_gives_everything_back(big_kernel):
    net = boot(big_kernel, {"/hog": HOG})
    status, out = net.rv6.run("hog")
    assert status == 0
    # the shell holds 3 descriptors (0, 1, 2) which the program inherits: 13 sockets
    assert out.strip() == f"hog {NOFILE - 3} EMFILE"
    assert net.census()["sockets"] == 0  # its end closed them
    status, out = net.rv6.run("hog crash")
    assert status == -1 and "hog 13 EMFILE" in out, (status, out)
    assert net.census()["sockets"] == 0
    assert big_kernel.domains["rv6"].state == "running"


ECHO_ONCE = b'''
from redleaf_lab.api import Block, RRef
from redleaf_lab.interfaces.socket import POLLIN, STREAM


def main(u, argv):
    s = u.sys
    lfd = s.socket(STREAM)
    if s.bind(lfd, 7070) or s.listen(lfd, 4):
        return 3
    u.puts(1, "listening\\n")
    while not s.poll((lfd,), (POLLIN,), 50)[0]:
        pass
    fd, _ip, _port = s.accept(lfd)
    while not s.poll((fd,), (POLLIN,), 50)[0]:
        pass
    n, buf = s.recv(fd, RRef.new(Block), 4096)
    if "crash" in argv:
        raise RuntimeError("echo crashes with a connection open")
    s.send(fd, buf, n)
    return 0
'''


def test_a_crashed_program_s_connections_are_reset(big_kernel):
    net = boot(big_kernel, {"/echo1": ECHO_ONCE})
    client = Client(net)
    thread, out = net.run_async("echo1 crash")
    fd = client.connect(7070)
    client.send_all(fd, b"hello")
    data, last = client.receive(fd, lambda d: False, timeout=5)
    assert data == b"" and last == -ECONNRESET  # a RST, not a hang
    thread.join(10)
    assert out["result"][0] == -1
    census = net.census()
    assert census["sockets"] == 0 and census["tcp_listeners"] == 0
    # a clean run of the same program answers and closes
    thread, out = net.run_async("echo1")
    fd = client.connect(7070)
    client.send_all(fd, b"hello")
    data, last = client.receive(fd, lambda d: d == b"hello")
    assert data == b"hello"
    thread.join(10)
    assert out["result"][0] == 0


def test_a_stack_crash_resets_the_sockets_made_through_it(net, big_kernel):
    port = net.port(100_000)
    old = port.socket(DGRAM)
    assert port.bind(old, 6000) == 0
    big_kernel.panic("netstack")
    assert port.bind(old, 6001) == -ECONNRESET  # the stack that held it is gone
    new = port.socket(DGRAM)  # made on the restarted stack
    assert new >= 0 and port.bind(new, 6000) == 0
    assert port.poll((old, new), (POLLIN, POLLOUT), 0)[1] == POLLOUT
    assert port.close(old) == 0 and port.close(new) == 0
    assert big_kernel.crashes("netstack") == 1
    assert dict(big_kernel.proxy("netstack").census())["sockets"] == 0


def http_get(client: Client, fd: int, path: str, method: str = "GET") -> bytes:
    client.send_all(fd, f"{method} {path} HTTP/1.1\r\nHost: rv6\r\n\r\n".encode())

    def complete(data: bytes) -> bool:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        if method == "HEAD":
            return True
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        return len(body) >= length

    data, _ = client.receive(fd, complete, timeout=10)
    return data


def test_the_rv6_httpd_program_serves_the_file_system(big_kernel):
    net = boot(big_kernel)
    thread, out = net.run_async("httpd -t 6 /www")
    client = Client(net)
    fd = client.connect(80)
    for path, body in FILES.items():  # one keep-alive connection for every file
        reply = http_get(client, fd, path)
        head, _, got = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and got == body, path
    reply = http_get(client, fd, "/")
    assert reply.partition(b"\r\n\r\n")[2] == FILES["/index.html"]
    reply = http_get(client, fd, "/index.html", "HEAD")
    assert reply.endswith(b"Content-Length: 636\r\n\r\n")
    reply = http_get(client, fd, "/missing")
    assert reply.startswith(b"HTTP/1.1 404") and reply.endswith(FILES["/404.html"])
    reply = http_get(client, fd, "/../README")  # outside the root
    assert reply.startswith(b"HTTP/1.1 404")
    # a malformed request: 400, and the connection is closed
    client.send_all(fd, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    data, last = client.receive(fd, lambda d: False, timeout=5)
    assert data.startswith(b"HTTP/1.1 400") and last == 0
    # the server goes on
    fd = client.connect(80)
    assert http_get(client, fd, "/1K.bin").endswith(FILES["/1K.bin"])
    thread.join(15)
    assert out["result"][0] == 0
    assert net.census()["sockets"] == 0


def test_an_fs_restart_closes_every_socket_with_the_descriptor_tables(net, big_kernel):
    port = net.port(100_000)
    fd = port.socket(DGRAM)
    assert port.bind(fd, 6100) == 0
    big_kernel.panic("rv6fs")
    assert port.open("/any", O_RDWR) < 0  # the call that meets the crash fails (EIO)
    census = net.census()
    assert census["sockets"] == 0 and census["udp_endpoints"] == 0
    assert port.bind(fd, 6101) == -EBADF  # its descriptor went with the old tables
    fresh = port.socket(DGRAM)
    assert fresh >= 0 and port.bind(fresh, 6100) == 0 and port.close(fresh) == 0


def test_the_rv6_httpd_ends_when_the_stack_restarts(big_kernel):
    net = boot(big_kernel)
    thread, out = net.run_async("httpd /www")
    client = Client(net)
    fd = client.connect(80)
    assert http_get(client, fd, "/1K.bin").endswith(FILES["/1K.bin"])
    big_kernel.panic("netstack")
    thread.join(10)
    assert not thread.is_alive()  # no spinning on a dead listener: it ended
    assert out["result"][0] == 1
    assert big_kernel.domains["rv6"].state == "running"


def serve_and_stop(net, client: Client, sequential: int, concurrent: int) -> None:
    """Run `httpd -w 2 /www`, make the connections, kill it, wait until both sides are
    clean (server: no socket, no TCP connection; client: TIME-WAIT at most)."""
    thread, _out = net.run_async("httpd -w 2 /www")
    for _ in range(sequential):  # closed by the client
        fd = client.connect(80)
        assert http_get(client, fd, "/1K.bin").endswith(FILES["/1K.bin"])
        client.sockets.close(fd)
    fds = [client.connect(80) for _ in range(concurrent)]  # keep-alive, at once
    for fd in fds:
        assert http_get(client, fd, "/").endswith(FILES["/index.html"])
    for fd in fds:
        client.sockets.close(fd)
    assert net.rv6.core.interrupt() == 2  # the server and its worker
    thread.join(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        client.step(0.01)
        census = net.census()
        states = {c.state for c in client.peer.stack.tcp.connections.values()}
        if census["sockets"] == 0 and census["tcp_connections"] == 0 and \
                states <= {"TIME-WAIT"}:
            break
    assert census["sockets"] == 0 and census["tcp_connections"] == 0, census
    assert states <= {"TIME-WAIT"}, states  # the client's side ended cleanly too


def test_many_connections_through_two_rv6_httpd_processes_leave_nothing(big_kernel):
    net = boot(big_kernel)
    client = Client(net)
    # a first run fills the caches that stay (the fs's buffer cache, the core's buffers)
    serve_and_stop(net, client, 2, 2)
    objects_before = big_kernel.heap.stats().live_objects
    # 150 sequential connections, then 24 keep-alive ones at once (the two processes'
    # 12 each)
    serve_and_stop(net, client, 150, 24)
    assert big_kernel.domain("rv6").impl._net.open_sockets == 0  # the core's count too
    assert big_kernel.heap.stats().live_objects == objects_before  # nothing leaked


def test_a_program_connects_out(net):
    """The active side: connect (EINPROGRESS), poll for POLLOUT, send, receive, close."""
    port, client = net.port(100_000), Client(net)
    lfd = client.sockets.socket(STREAM)  # the far side listens this time
    assert client.sockets.bind(lfd, 9090) == 0 and client.sockets.listen(lfd, 2) == 0
    fd = port.socket(STREAM)
    assert port.connect(fd, int.from_bytes(CLIENT_IP, "big"), 9090) == -115  # EINPROGRESS
    assert port.connect(fd, int.from_bytes(CLIENT_IP, "big"), 9090) == -114  # EALREADY
    assert pump(port, client, fd, POLLOUT) & POLLOUT
    n, _buf = port.send(fd, block(b"hello from rv6"), 14)
    assert n == 14
    accepted = -1
    for _ in range(200):
        client.step(0)
        accepted = client.sockets.accept(lfd)[0]
        if accepted >= 0:
            break
    got, _ = client.receive(accepted, lambda d: d == b"hello from rv6")
    assert got == b"hello from rv6"
    client.send_all(accepted, b"and back")
    pump(port, client, fd, POLLIN)
    n, buf = port.recv(fd, RRef.new(Block), 100)
    assert buf.tobytes()[:n] == b"and back"
    assert port.close(fd) == 0
    _data, last = client.receive(accepted, lambda d: False, timeout=2)
    assert last == 0  # the end of the stream reached the far side
