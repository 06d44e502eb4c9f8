"""The socket layer: Berkeley-like calls over the Stack, errors as values.

Interface (`Sockets`, what netstack.py exposes through the Socket interface; bytes in
and out here, RRef buffers there): `socket(kind)`, `bind(fd, port)`, `listen(fd,
backlog)`, `accept(fd)`, `connect(fd, ip, port)`, `send(fd, data)`, `recv(fd, limit)`,
`sendto(fd, data, ip, port)`, `recvfrom(fd, limit)`, `close(fd, abort=False)`, `poll(fds, events)`,
`setsockopt(fd, option, value)`. Every misuse is a negative errno value (as Linux
returns -1 and sets errno): a bad descriptor EBADF, bind to a used port EADDRINUSE,
send on a closed or shut connection EPIPE, recv on a listening socket ENOTCONN, a
call that would block EAGAIN (every socket is non-blocking; `poll` is how to wait).
Nothing here raises on bad input.

Descriptors are sparse: 2**16 plus a random 30-bit number (fresh entropy in each
incarnation; numbers below 2**16 never name a socket),
at most `limit` open at once (EMFILE beyond). Every holder of the Socket capability
shares one table, so a descriptor is a name that only those it was handed can use: a
co-holder cannot guess another's (1 in ~10**6 per try with the table full), and a
descriptor kept across a stack restart names nothing in the new incarnation (EBADF).
Closing a descriptor hands its TCP connection to the stack (FIN, TIME-WAIT happen
without it).

Ownership: one Sockets per Stack, serialized by the domain's lock.
"""

import errno
import random

from .tcp_conn import CAN_SEND, CLOSED, SYN_SENT

STREAM, DGRAM = 1, 2
POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x001, 0x004, 0x008, 0x010, 0x020
SO_KEEPALIVE = 1  # value: idle seconds before the first probe (0: off)
UDP_MAX = 1472  # the largest datagram that fits one 1500-byte IP packet
SPARSE_BASE = 1 << 16  # no descriptor is below: small numbers never name a socket


class Socket:
    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.port = 0
        self.listener = None
        self.conn = None
        self.udp = None
        self.peer = None  # a datagram socket's default destination (ip, port)
        self.keepalive = 0.0


class Sockets:
    def __init__(self, stack, limit: int = 1024) -> None:
        self.stack = stack
        self.limit = limit
        self.table = {}
        self._names = random.Random()  # seeded from the OS: unpredictable descriptors

    def _get(self, fd):
        # isinstance, not type(): a domain's type() is the checked builtin, a Python call
        return self.table.get(fd) if isinstance(fd, int) else None

    def socket(self, kind: int) -> int:
        if kind != STREAM and kind != DGRAM:
            return -errno.EINVAL
        if len(self.table) >= self.limit:
            return -errno.EMFILE
        fd = SPARSE_BASE + self._names.getrandbits(30)
        while fd in self.table:
            fd = SPARSE_BASE + self._names.getrandbits(30)
        self.table[fd] = Socket(kind)
        return fd

    def bind(self, fd: int, port: int) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if type(port) is not int or not 0 <= port <= 65535:
            return -errno.EINVAL
        if sock.port or sock.conn is not None:
            return -errno.EINVAL
        if port == 0:
            port = self._ephemeral(sock.kind)
            if port == 0:
                return -errno.EADDRINUSE
        if sock.kind == DGRAM:
            endpoint = self.stack.udp_bind(port)
            if endpoint is None:
                return -errno.EADDRINUSE
            sock.udp = endpoint
        elif self.stack.tcp.port_in_use(port) or any(
                s.port == port and s.kind == STREAM for s in self.table.values()):
            return -errno.EADDRINUSE
        sock.port = port
        return 0

    def _ephemeral(self, kind: int) -> int:
        if kind == STREAM:
            return self.stack.tcp.ephemeral_port()
        for port in range(49152, 65536):
            if port not in self.stack.udp:
                return port
        return 0

    def listen(self, fd: int, backlog: int) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if sock.kind != STREAM:
            return -errno.EOPNOTSUPP
        if sock.conn is not None or not sock.port or type(backlog) is not int:
            return -errno.EINVAL
        if sock.listener is None:
            sock.listener = self.stack.tcp.listen(sock.port, backlog)
        else:
            sock.listener.backlog = max(1, min(backlog, 4096))
        return 0

    def accept(self, fd: int) -> tuple:
        sock = self._get(fd)
        if sock is None:
            return (-errno.EBADF, 0, 0)
        if sock.listener is None:
            return (-errno.EINVAL, 0, 0)
        if not sock.listener.ready:
            return (-errno.EAGAIN, 0, 0)
        if len(self.table) >= self.limit:
            return (-errno.EMFILE, 0, 0)
        conn = sock.listener.ready.pop(0)
        conn.listener = None
        new = self.socket(STREAM)
        child = self.table[new]
        child.conn = conn
        child.port = conn.local_port
        return (new, int.from_bytes(conn.remote_ip, "big"), conn.remote_port)

    def connect(self, fd: int, ip: int, port: int) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if type(ip) is not int or not 0 < ip < 0xFFFFFFFF or type(port) is not int \
                or not 0 < port <= 65535:
            return -errno.EINVAL
        address = ip.to_bytes(4, "big")
        if sock.kind == DGRAM:
            sock.peer = (address, port)
            return 0
        if sock.listener is not None:
            return -errno.EINVAL
        if sock.conn is not None:
            return -errno.EALREADY if sock.conn.state == SYN_SENT else -errno.EISCONN
        local = sock.port or self.stack.tcp.ephemeral_port()
        if local == 0:
            return -errno.EADDRNOTAVAIL
        conn = self.stack.tcp.connect(address, port, local, self.stack.now)
        if conn is None:
            return -errno.EADDRINUSE
        sock.port = local
        sock.conn = conn
        if sock.keepalive:
            conn.keepalive_idle = sock.keepalive
        return -errno.EINPROGRESS

    def send(self, fd: int, data: bytes) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if sock.kind == DGRAM:
            if sock.peer is None:
                return -errno.EDESTADDRREQ
            return self._sendto(sock, data, sock.peer[0], sock.peer[1])
        conn = sock.conn
        if conn is None:
            return -errno.ENOTCONN
        if conn.error:
            return -conn.error
        if conn.state == SYN_SENT:
            return -errno.EAGAIN
        if conn.state not in CAN_SEND or conn.fin_queued:
            return -errno.EPIPE
        if not data:
            return 0
        taken = conn.send(data, self.stack.now)
        return taken if taken else -errno.EAGAIN

    def recv(self, fd: int, limit: int) -> tuple:
        sock = self._get(fd)
        if sock is None:
            return (-errno.EBADF, b"")
        if sock.kind == DGRAM:
            got = self.recvfrom(fd, limit)
            return (got[0], got[3])
        conn = sock.conn
        if conn is None:
            return (-errno.ENOTCONN, b"")
        if conn.rcvbuf:
            data = conn.receive(limit)
            return (len(data), data)
        if conn.error:
            return (-conn.error, b"")
        if conn.fin_received or conn.state == CLOSED:
            return (0, b"")  # end of stream
        return (-errno.EAGAIN, b"")

    def sendto(self, fd: int, data: bytes, ip: int, port: int) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if sock.kind != DGRAM:
            return -errno.EISCONN if sock.conn is not None else -errno.EOPNOTSUPP
        if type(ip) is not int or not 0 < ip <= 0xFFFFFFFF or type(port) is not int \
                or not 0 < port <= 65535:
            return -errno.EINVAL
        return self._sendto(sock, data, ip.to_bytes(4, "big"), port)

    def _sendto(self, sock, data: bytes, address: bytes, port: int) -> int:
        if len(data) > UDP_MAX:
            return -errno.EMSGSIZE
        if sock.udp is None:
            error = self.bind(self._fd_of(sock), 0)
            if error:
                return error
        self.stack.udp_send(sock.port, address, port, data)
        return len(data)

    def _fd_of(self, sock) -> int:
        for fd, candidate in self.table.items():
            if candidate is sock:
                return fd
        return -1

    def recvfrom(self, fd: int, limit: int) -> tuple:
        sock = self._get(fd)
        if sock is None:
            return (-errno.EBADF, 0, 0, b"")
        if sock.kind != DGRAM:
            return (-errno.EOPNOTSUPP, 0, 0, b"")
        if sock.udp is None or not sock.udp.queue:
            return (-errno.EAGAIN, 0, 0, b"")
        src, sport, data = sock.udp.queue.popleft()
        data = data[:limit]  # the rest of a datagram is discarded, as recvfrom does
        return (len(data), int.from_bytes(src, "big"), sport, data)

    def close(self, fd: int, abort: bool = False) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        del self.table[fd]
        if sock.listener is not None:
            self.stack.tcp.unlisten(sock.listener)
        if sock.conn is not None and sock.conn.state != CLOSED:
            if abort:
                sock.conn.abort()  # RST: the holder is gone (crashed), not done
            else:
                sock.conn.close(self.stack.now)
        if sock.udp is not None:
            self.stack.udp_unbind(sock.udp)
        return 0

    def setsockopt(self, fd: int, option: int, value: int) -> int:
        sock = self._get(fd)
        if sock is None:
            return -errno.EBADF
        if option != SO_KEEPALIVE or sock.kind != STREAM or type(value) is not int or value < 0:
            return -errno.EINVAL
        sock.keepalive = float(value)
        if sock.conn is not None:
            sock.conn.keepalive_idle = float(value)
        return 0

    def poll_one(self, fd: int, events: int) -> int:
        sock = self.table.get(fd) if isinstance(fd, int) else None
        if sock is None:
            return POLLNVAL
        ready = 0
        if sock.listener is not None:
            if sock.listener.ready:
                ready |= POLLIN
        elif sock.kind == DGRAM:
            if sock.udp is not None and sock.udp.queue:
                ready |= POLLIN
            ready |= POLLOUT
        elif sock.conn is not None:
            conn = sock.conn
            if conn.rcvbuf or conn.fin_received:
                ready |= POLLIN
            if conn.error:
                ready |= POLLERR | POLLIN
            if conn.state == CLOSED:
                ready |= POLLHUP | POLLIN
            elif conn.state in CAN_SEND and not conn.fin_queued and conn.send_room() > 0:
                ready |= POLLOUT
        return ready & (events | POLLERR | POLLHUP | POLLNVAL)

    def poll(self, fds, events) -> tuple:
        poll_one = self.poll_one
        return tuple([poll_one(fd, ev) for fd, ev in zip(fds, events, strict=False)])
