"""Rv6's socket system calls: descriptors of a program's table that name sockets of the
network stack domain (interfaces/socket.py), reached through the core's `services.net()`.

Calls (every one on behalf of `pid`; errors are negative errno values, never panics):
socket, bind, listen, accept, connect, send, recv, sendto, recvfrom, poll, and for a
socket descriptor also close, dup, read (= recv), write (= send), fstat (type T_SOCKET),
seek (ESPIPE) and readdir (ENOTDIR). Like the stack's own sockets, every call is
non-blocking (EAGAIN); `poll` waits, over sockets and files alike (a file descriptor is
always ready, as POSIX says of regular files; pipes and the console are reported ready
too, since the file system offers no readiness query: a read may then wait).

Descriptors. A socket descriptor is a slot of the program's ordinary descriptor table,
which the file system domain keeps: `socket` and `accept` reserve one by opening the root
directory read-only there, and this module records that the slot names a socket. So the
per-process (NOFILE, EMFILE) and system (NFILE, ENFILE) limits cover sockets too,
numbers never clash with files, and the fs's own dup, spawn inheritance and exit keep the
slot's life; the core tells this module of each (close, dup, inherit, exit) and the
program never reaches the placeholder (every call on a socket descriptor is answered
here). A `SockFile` is one open socket shared by the descriptors that dup or inheritance
made; the last close closes the stack's socket (FIN), and the end of a program that
crashed or was killed aborts it (RST), so its peers never hang. At most NSOCKET sockets
are open in Rv6 at once (ENFILE beyond).

Programs never see the stack's own socket numbers: another program's socket is not in
their table (EBADF), and a descriptor that is a file is not a socket (ENOTSOCK).
Buffers are the program's 4 KiB RRef[Block]s, moved into the core as for read and
write: `send` lends them to the stack and `recv` moves them in and back (no copy here).

Stack crashes. A SockFile remembers the stack proxy it was made through. When a call
through it raises RpcError (the stack domain panicked), the core asks `services.net()`
for the restarted stack; sockets of the old incarnation stay in the tables until closed
but every call on them is ECONNRESET (poll: POLLERR|POLLHUP). If the fs domain restarts,
its descriptor tables are gone, so every socket is closed here too.

Locking: one lock guards the tables and reference counts; no stack or fs call is made
while it is held (poll waits in the stack, in slices of POLL_SLICE_MS, and gives up when
the calling process is killed).
"""

import time

from redleaf_lab.api import BLOCK_SIZE, Block, RpcError, RRef
from redleaf_lab.interfaces.rv6 import (
    EBADF,
    ECONNRESET,
    EINVAL,
    ENETDOWN,
    ENFILE,
    ENOTDIR,
    ENOTSOCK,
    ESPIPE,
    NOFILE,
    O_RDONLY,
    T_SOCKET,
)
from redleaf_lab.interfaces.socket import (
    DGRAM,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    STREAM,
)

PLACEHOLDER = "/"  # what a socket's slot holds in the fs's descriptor table
NSOCKET = 64  # open sockets in Rv6 at once
POLL_SLICE_MS = 20
MAX_POLL_MS = 3_600_000


class SockFile:
    def __init__(self, stack, sid: int, kind: int) -> None:
        self.stack = stack  # the stack proxy (incarnation) the socket lives in
        self.sid = sid
        self.kind = kind
        self.ref = 1


class NetCalls:
    def __init__(self, ctx, fwd, services, killed) -> None:
        self._ctx = ctx
        self._fwd = fwd  # the core's fs call (errors as values)
        self._services = services
        self._killed = killed  # killed(pid) -> bool
        self._lock = ctx.lock()
        self._stack = None
        self.table = {}  # pid -> {fd: SockFile}; a pid with no sockets has no entry
        self.open_sockets = 0
        self.stack_restarts = 0

    # -- the stack domain --------------------------------------------------------------
    def _current(self):
        stack = self._stack
        if stack is None:
            stack = self._services.net()
            self._stack = stack
        return stack

    def _failed(self, stack) -> None:
        """A call through `stack` raised RpcError: the stack domain crashed."""
        with self._lock:
            if self._stack is not stack:
                return  # another thread has already fetched the restarted stack
            self._stack = None
            self.stack_restarts += 1
        self._current()

    # -- descriptor bookkeeping ----------------------------------------------------------
    def get(self, pid: int, fd):
        socks = self.table.get(pid)
        return None if socks is None else socks.get(fd)

    def _live(self, pid: int, fd):
        """(SockFile, 0) for a socket of the current stack, else (None, -errno)."""
        s = self.get(pid, fd)
        if s is None:
            if type(fd) is not int:
                return None, -EINVAL
            st = self._fwd("fstat", pid, fd)
            return None, (-ENOTSOCK if type(st) is tuple and st[0] == 0 else -EBADF)
        if s.stack is not self._stack:
            return None, -ECONNRESET
        return s, 0

    def _reserve(self, pid: int) -> int:
        """One of the NSOCKET sockets (-ENFILE) and a descriptor slot in pid's table
        (-EMFILE / -ENFILE from the fs); `_record` uses both, `_unreserve` gives back."""
        with self._lock:
            if self.open_sockets >= NSOCKET:
                return -ENFILE
            self.open_sockets += 1
        fd = self._fwd("open", pid, PLACEHOLDER, O_RDONLY)
        if fd < 0:
            with self._lock:
                self.open_sockets -= 1
        return fd

    def _unreserve(self, pid: int, fd: int) -> None:
        self._fwd("close", pid, fd)
        with self._lock:
            self.open_sockets -= 1

    def _record(self, pid: int, fd: int, s: SockFile) -> None:
        with self._lock:
            self.table.setdefault(pid, {})[fd] = s

    def _unref(self, s: SockFile, abort: bool = False) -> None:
        with self._lock:
            s.ref -= 1
            last = s.ref == 0
        if not last:
            return
        with self._lock:
            self.open_sockets -= 1
        if s.stack is not self._stack:
            return  # its stack incarnation is gone, and the socket with it
        try:
            if abort:
                s.stack.abort(s.sid)
            else:
                s.stack.close(s.sid)
        except RpcError:
            self._failed(s.stack)

    def _pop(self, pid: int, fd: int):
        with self._lock:
            socks = self.table.get(pid)
            s = None if socks is None else socks.pop(fd, None)
            if socks is not None and not socks:
                del self.table[pid]
            return s

    def close(self, pid: int, fd: int) -> int:
        s = self._pop(pid, fd)
        if s is None:
            return -EBADF
        self._fwd("close", pid, fd)
        self._unref(s)
        return 0

    def dup(self, pid: int, fd: int) -> int:
        s = self.get(pid, fd)
        if s is None:
            return -EBADF
        new = self._fwd("dup", pid, fd)
        if new >= 0:
            with self._lock:
                s.ref += 1
                self.table.setdefault(pid, {})[new] = s
        return new

    def inherit(self, parent: int, child: int, fds: tuple) -> None:
        """The child's fd i is the parent's fds[i] (the fs has copied the slots)."""
        for i, fd in enumerate(fds):
            s = self.get(parent, fd)
            if s is not None:
                with self._lock:
                    s.ref += 1
                    self.table.setdefault(child, {})[i] = s

    def exit(self, pid: int, crashed: bool) -> None:
        """pid ended (the fs closes its slots): drop its sockets; RST if it crashed."""
        with self._lock:
            socks = self.table.pop(pid, {})
        for s in socks.values():
            self._unref(s, abort=crashed)

    def fs_restarted(self) -> None:
        """The fs domain restarted: every descriptor table is gone, sockets with them."""
        with self._lock:
            tables, self.table = self.table, {}
        for socks in tables.values():
            for s in socks.values():
                self._unref(s)

    # -- file calls on a socket descriptor ------------------------------------------------
    def fstat(self, pid: int, fd: int) -> tuple:
        s = self.get(pid, fd)
        return (-EBADF, 0, 0, 0, 0, 0) if s is None else (0, 0, 0, T_SOCKET, 1, 0)

    def seek(self, pid: int, fd: int) -> int:
        return -ESPIPE

    def readdir(self, pid: int, fd: int) -> tuple:
        return (-ENOTDIR, ())

    # -- socket calls ------------------------------------------------------------------------
    def socket(self, pid: int, kind: int) -> int:
        if kind != STREAM and kind != DGRAM:
            return -EINVAL
        stack = self._current()
        if stack is None:
            return -ENETDOWN
        fd = self._reserve(pid)
        if fd < 0:
            return fd
        try:
            sid = stack.socket(kind)
        except RpcError:
            self._failed(stack)
            sid = -ECONNRESET
        if sid < 0:
            self._unreserve(pid, fd)
            return sid
        self._record(pid, fd, SockFile(stack, sid, kind))
        return fd

    def _simple(self, pid: int, fd, method: str, *args) -> int:
        s, err = self._live(pid, fd)
        if s is None:
            return err
        try:
            return getattr(s.stack, method)(s.sid, *args)
        except RpcError:
            self._failed(s.stack)
            return -ECONNRESET

    def bind(self, pid: int, fd: int, port: int) -> int:
        return self._simple(pid, fd, "bind", port)

    def listen(self, pid: int, fd: int, backlog: int) -> int:
        return self._simple(pid, fd, "listen", backlog)

    def connect(self, pid: int, fd: int, ip: int, port: int) -> int:
        return self._simple(pid, fd, "connect", ip, port)

    def accept(self, pid: int, fd: int) -> tuple:
        s, err = self._live(pid, fd)
        if s is None:
            return (err, 0, 0)
        # the slot first: a program at its descriptor limit gets EMFILE and the
        # connection stays queued (as on Linux) for another process sharing the listener
        new = self._reserve(pid)
        if new < 0:
            return (new, 0, 0)
        try:
            sid, ip, port = s.stack.accept(s.sid)
        except RpcError:
            self._failed(s.stack)
            sid, ip, port = -ECONNRESET, 0, 0
        if sid < 0:
            self._unreserve(pid, new)
            return (sid, 0, 0)
        self._record(pid, new, SockFile(s.stack, sid, STREAM))
        return (new, ip, port)

    def send(self, pid: int, fd: int, buf, count: int) -> tuple:
        s, err = self._live(pid, fd)
        if s is None:
            return (err, buf)
        if not 0 <= count <= BLOCK_SIZE:
            return (-EINVAL, buf)
        try:
            return (s.stack.send_block(s.sid, buf, count), buf)  # lent: no copy here
        except RpcError:
            self._failed(s.stack)
            return (-ECONNRESET, buf if buf.valid else RRef.new(Block))

    def recv(self, pid: int, fd: int, buf, count: int) -> tuple:
        s, err = self._live(pid, fd)
        if s is None:
            return (err, buf)
        if not 0 <= count <= BLOCK_SIZE:
            return (-EINVAL, buf)
        if count == 0:
            return (0, buf)
        try:
            return s.stack.recv_block(s.sid, buf, count)
        except RpcError:
            self._failed(s.stack)
            return (-ECONNRESET, RRef.new(Block))

    def sendto(self, pid: int, fd: int, buf, count: int, ip: int, port: int) -> tuple:
        s, err = self._live(pid, fd)
        if s is None:
            return (err, buf)
        if not 0 <= count <= BLOCK_SIZE:
            return (-EINVAL, buf)
        try:
            return (s.stack.sendto_block(s.sid, buf, count, ip, port), buf)
        except RpcError:
            self._failed(s.stack)
            return (-ECONNRESET, buf if buf.valid else RRef.new(Block))

    def recvfrom(self, pid: int, fd: int, buf, count: int) -> tuple:
        s, err = self._live(pid, fd)
        if s is None:
            return (err, 0, 0, buf)
        if not 0 <= count <= BLOCK_SIZE:
            return (-EINVAL, 0, 0, buf)
        try:
            return s.stack.recvfrom_block(s.sid, buf, count)
        except RpcError:
            self._failed(s.stack)
            return (-ECONNRESET, 0, 0, RRef.new(Block))

    # -- poll ---------------------------------------------------------------------------
    def poll(self, pid: int, fds: tuple, events: tuple, timeout_ms: int) -> tuple:
        if len(fds) != len(events) or len(fds) > NOFILE:
            return tuple(POLLNVAL for _ in fds)
        always = POLLERR | POLLHUP | POLLNVAL
        revents = [0] * len(fds)
        where, sids, wants = [], [], []
        stack = self._stack
        for i, fd in enumerate(fds):
            s = self.get(pid, fd)
            if s is None:
                st = self._fwd("fstat", pid, fd) if type(fd) is int else -EBADF
                ok = type(st) is tuple and st[0] == 0
                revents[i] = events[i] & (POLLIN | POLLOUT) if ok else POLLNVAL
            elif s.stack is not stack:
                revents[i] = POLLERR | POLLHUP | (events[i] & POLLIN)
            else:
                where.append(i)
                sids.append(s.sid)
                wants.append(events[i])
        if not where:
            return tuple(revents)
        waiting = min(max(0, timeout_ms), MAX_POLL_MS) if not any(revents) else 0
        deadline = time.monotonic() + waiting / 1000.0
        while True:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                got = stack.poll(tuple(sids), tuple(wants), min(left, POLL_SLICE_MS))
            except RpcError:
                self._failed(stack)
                got = tuple(POLLERR | POLLHUP for _ in sids)
            if any(got) or left <= 0 or self._killed(pid):
                break
        for i, ready in zip(where, got, strict=False):
            revents[i] = ready & (events[i] | always)
        return tuple(revents)


class SocketSyscalls:
    """The Rv6 core's socket system calls (a base class of Core, which sets `_net`)."""

    def socket(self, pid: int, kind: int) -> int:
        return self._net.socket(pid, kind)

    def bind(self, pid: int, fd: int, port: int) -> int:
        return self._net.bind(pid, fd, port)

    def listen(self, pid: int, fd: int, backlog: int) -> int:
        return self._net.listen(pid, fd, backlog)

    def accept(self, pid: int, fd: int):
        return self._net.accept(pid, fd)

    def connect(self, pid: int, fd: int, ip: int, port: int) -> int:
        return self._net.connect(pid, fd, ip, port)

    def send(self, pid: int, fd: int, buf, count: int):
        return self._net.send(pid, fd, buf, count)

    def recv(self, pid: int, fd: int, buf, count: int):
        return self._net.recv(pid, fd, buf, count)

    def sendto(self, pid: int, fd: int, buf, count: int, ip: int, port: int):
        return self._net.sendto(pid, fd, buf, count, ip, port)

    def recvfrom(self, pid: int, fd: int, buf, count: int):
        return self._net.recvfrom(pid, fd, buf, count)

    def poll(self, pid: int, fds: tuple, events: tuple, timeout_ms: int):
        return self._net.poll(pid, fds, events, timeout_ms)
