"""httpd: a keep-alive HTTP/1.1 server domain over a `Socket` capability, and an
echo service (RFC 862) on a UDP port for `nc -u`.

Capabilities: `sockets` (the netstack's Socket proxy), `files` (a tuple of (path,
bytes) pairs read by the trusted side from a folder, or None for the built-in site of
site.py), `options` (tuple of (name, value): port 80, echo_port 7 (0: off), backlog 128).

Interface: `Service.run(rounds, timeout_ms)`: `rounds` rounds of one `poll` over the
listening socket, the echo socket and every connection, then: accept everyone waiting;
echo every datagram; read each readable connection, parse with http.Parser, queue the
responses; write queued output (a partial send keeps the rest for POLLOUT). A bad
request gets 400 and the connection is closed after the reply; EOF, reset or error
close it. If the stack restarted (our descriptors are gone: POLLNVAL), every
connection is forgotten and the listening sockets are made again. Returns (requests
answered, bad requests, connections accepted) over this incarnation.

Ownership: the two SockBufs (receive, send) belong to this domain: `recv` moves one
into the stack and gets it back, `send` lends the other. One thread runs the loop.
"""

import errno

from redleaf_lab.api import RpcError, RRef
from redleaf_lab.interfaces.socket import (
    BUF_DATA,
    DGRAM,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    STREAM,
    SockBuf,
    contents,
    fill,
)

from .http import BAD, Parser, Site
from .site import builtin_files, content_type

EAGAIN = errno.EAGAIN


class Connection:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.parser = Parser()
        self.out = b""
        self.closing = False


class Httpd:
    def __init__(self, ctx, sockets, files, options) -> None:
        settings = dict(options or ())
        self._ctx = ctx
        self._sock = sockets
        self._site = Site(files if files is not None else builtin_files(), content_type)
        self._port = int(settings.get("port", 80))
        self._echo_port = int(settings.get("echo_port", 7))
        self._backlog = int(settings.get("backlog", 128))
        self._rx = RRef.new(SockBuf)
        self._tx = RRef.new(SockBuf)
        self._conns = {}
        self._counts = {"requests": 0, "bad_requests": 0, "accepted": 0, "closed": 0,
                        "resets": 0, "stack_restarts": 0, "echoed": 0}
        self._listen = self._echo = -1
        self._open_listeners()

    def _open_listeners(self) -> None:
        sock = self._sock
        fd = sock.socket(STREAM)
        if fd < 0 or sock.bind(fd, self._port) < 0 or sock.listen(fd, self._backlog) < 0:
            raise ValueError(f"httpd cannot listen on port {self._port} (error {fd})")
        self._listen = fd
        self._echo = -1
        if self._echo_port:
            echo = sock.socket(DGRAM)
            if echo < 0 or sock.bind(echo, self._echo_port) < 0:
                raise ValueError(f"httpd cannot bind the echo port {self._echo_port}")
            self._echo = echo

    def run(self, rounds: int, timeout_ms: int) -> tuple:
        for _ in range(rounds):
            try:
                self._round(timeout_ms)
            except RpcError:  # the stack crashed: its descriptors are gone
                self._stack_restarted()
        c = self._counts
        return (c["requests"], c["bad_requests"], c["accepted"])

    def _stack_restarted(self) -> None:
        self._counts["stack_restarts"] += 1
        self._conns = {}
        if not self._rx.valid:
            self._rx = RRef.new(SockBuf)
        if not self._tx.valid:
            self._tx = RRef.new(SockBuf)
        try:
            self._open_listeners()
        except RpcError:
            pass  # still restarting: the next round tries again

    def _round(self, timeout_ms: int) -> None:
        sock = self._sock
        conns = self._conns
        fds = [self._listen]
        events = [POLLIN]
        if self._echo >= 0:
            fds.append(self._echo)
            events.append(POLLIN)
        for fd, conn in conns.items():
            fds.append(fd)
            events.append(POLLIN | POLLOUT if conn.out else POLLIN)
        revents = sock.poll(tuple(fds), tuple(events), timeout_ms)
        if revents and revents[0] & POLLNVAL:
            self._stack_restarted()
            return
        for fd, ready in zip(fds, revents, strict=False):
            if not ready:
                continue
            if fd == self._listen:
                self._accept()
            elif fd == self._echo:
                self._echo_all()
            else:
                conn = conns.get(fd)
                if conn is not None:
                    self._serve(conn, ready)

    def _accept(self) -> None:
        sock = self._sock
        while True:
            fd, _ip, _port = sock.accept(self._listen)
            if fd < 0:
                return
            self._conns[fd] = Connection(fd)
            self._counts["accepted"] += 1

    def _echo_all(self) -> None:
        sock = self._sock
        for _ in range(64):
            n, ip, port, self._rx = sock.recvfrom(self._echo, self._rx)
            if n < 0:
                return
            sock.sendto(self._echo, self._rx, ip, port)  # the datagram goes back as it came
            self._counts["echoed"] += 1

    def _serve(self, conn, ready: int) -> None:
        sock = self._sock
        if ready & POLLIN:
            n, self._rx = sock.recv(conn.fd, self._rx)
            if n > 0:
                if not conn.closing:
                    conn.parser.feed(contents(self._rx, n))
                    self._answer(conn)
            elif n == 0 or n != -EAGAIN:
                if n != 0:
                    self._counts["resets"] += 1
                self._close(conn)
                return
        elif ready & (POLLERR | POLLHUP | POLLNVAL):
            self._close(conn)
            return
        if conn.out:
            self._write(conn)
        if conn.closing and not conn.out:
            self._close(conn)

    def _answer(self, conn) -> None:
        site = self._site
        parts = [conn.out] if conn.out else []
        while True:
            request = conn.parser.next()
            if request is None:
                break
            if request is BAD:
                self._counts["bad_requests"] += 1
                parts.append(site.bad_request())
                conn.closing = True
                break
            response, keep = site.respond(request)
            self._counts["requests"] += 1
            parts.append(response)
            if not keep:
                conn.closing = True
                break
        conn.out = b"".join(parts)

    def _write(self, conn) -> None:
        sock = self._sock
        while conn.out:
            size = fill(self._tx, conn.out[:BUF_DATA])
            sent = sock.send(conn.fd, self._tx)
            if sent <= 0:
                if sent != -EAGAIN:
                    conn.out = b""
                    conn.closing = True
                return
            conn.out = conn.out[sent:]
            if sent < size:
                return

    def _close(self, conn) -> None:
        self._sock.close(conn.fd)
        self._conns.pop(conn.fd, None)
        self._counts["closed"] += 1

    def stats(self) -> tuple:
        return (*tuple(sorted(self._counts.items())), ("open", len(self._conns)))


def init(ctx, sockets, files, options) -> Httpd:
    return Httpd(ctx, sockets, files, options)
