"""The Rv6 core domain: system calls, processes, and spawning programs from the file system.

`init(ctx, fs, services)`: `fs` is the file-system domain (Rv6FS), `services` the
trusted loader of program domains (redleaf_lab/rv6img/programs.py).

File calls are forwarded to the fs domain with the caller's pid. If the fs domain
panics, the call in flight gets -EIO (a read or write gets a fresh buffer back in place
of the one the crash took) and the core asks `services.fs()` for the restarted domain,
which has replayed its log; descriptors opened before the crash are gone (-EBADF).

Sockets (sysnet.py): the socket calls, and every file call on a descriptor that names a
socket, are answered by `NetCalls`; the hooks below tell it of close, dup, spawn's
inherited descriptors, a program's end and an fs restart.

`spawn(pid, path, argv, fds)` reads the program's source text from the file system,
loads it as a new domain (checked by the kernel like every domain), gives the child a
descriptor table (its fd i is the caller's fds[i]) and runs its `main(argv)` on a thread
of this domain. When main returns, or the program panics (status -1; the kernel has
reclaimed its heap), or it is killed (-9), the core closes its descriptors and stops its
domain; the parent collects the status with `wait`.

Locking: the process table has its own lock; nothing else here is shared.
"""

import time

from redleaf_lab.api import Block, RpcError, RRef
from redleaf_lab.interfaces.rv6 import (
    E2BIG,
    EAGAIN,
    ECHILD,
    EINTR,
    EINVAL,
    EIO,
    ENOEXEC,
    EPERM,
    ESRCH,
    MAXARG,
    MAXPROGRAM,
    O_RDONLY,
    O_RDWR,
    T_FILE,
    strerror,
)

from .proc import CRASHED, KILLED, RUNNING, ProcTable
from .sysnet import NetCalls, SocketSyscalls

ARGBYTES = 64 * 1024  # all of a spawn's argv (POSIX's ARG_MAX): E2BIG beyond
NPROC = 64  # processes at once (xv6's NPROC): a spawn beyond is EAGAIN, so no spawn bomb


class Core(SocketSyscalls):
    def __init__(self, ctx, fs, services) -> None:
        self._ctx = ctx
        self._fs = fs
        self._services = services
        self._procs = ProcTable(ctx)
        self._net = NetCalls(ctx, self._fwd, services, self._killed)
        self._sockets = self._net.table  # pid -> {fd: socket}: the file calls' check
        self._boot_ns = time.monotonic_ns()
        self.fs_restarts = 0

    # -- the fs domain, with its crashes turned into EIO ----------------------------------
    def _fs_failed(self) -> None:
        self.fs_restarts += 1
        self._fs = self._services.fs()
        self._net.fs_restarted()

    def _killed(self, pid: int) -> bool:
        me = self._procs.get(pid)
        return me is not None and me.killed

    def _fwd(self, method: str, *args):
        try:
            return getattr(self._fs, method)(*args)
        except RpcError:
            self._fs_failed()
            return -EIO

    def _fwd_tuple(self, method: str, width: int, *args):
        got = self._fwd(method, *args)
        if type(got) is int:
            return (got, ()) if width == 0 else (got,) + (0,) * (width - 1)
        return got

    def _fwd_buffer(self, method: str, pid: int, fd: int, buf, count: int):
        try:
            if method == "read":  # the hot path: no getattr
                return self._fs.read(pid, fd, buf, count)
            return self._fs.write(pid, fd, buf, count)
        except RpcError:
            self._fs_failed()
            return (-EIO, RRef.new(Block))

    # -- file calls ---------------------------------------------------------------------------
    def open(self, pid: int, path: str, mode: int) -> int:
        return self._fwd("open", pid, path, mode)

    def close(self, pid: int, fd: int) -> int:
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.close(pid, fd)
        return self._fwd("close", pid, fd)

    def read(self, pid: int, fd: int, buf, count: int):
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.recv(pid, fd, buf, count)
        return self._fwd_buffer("read", pid, fd, buf, count)

    def write(self, pid: int, fd: int, buf, count: int):
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.send(pid, fd, buf, count)
        return self._fwd_buffer("write", pid, fd, buf, count)

    def seek(self, pid: int, fd: int, offset: int, whence: int) -> int:
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.seek(pid, fd)
        return self._fwd("seek", pid, fd, offset, whence)

    def fstat(self, pid: int, fd: int):
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.fstat(pid, fd)
        return self._fwd_tuple("fstat", 6, pid, fd)

    def mknod(self, pid: int, path: str, major: int, minor: int) -> int:
        return self._fwd("mknod", pid, path, major, minor)

    def dup(self, pid: int, fd: int) -> int:
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.dup(pid, fd)
        return self._fwd("dup", pid, fd)

    def pipe(self, pid: int):
        return self._fwd_tuple("pipe", 3, pid)

    def link(self, pid: int, old: str, new: str) -> int:
        return self._fwd("link", pid, old, new)

    def unlink(self, pid: int, path: str) -> int:
        return self._fwd("unlink", pid, path)

    def mkdir(self, pid: int, path: str) -> int:
        return self._fwd("mkdir", pid, path)

    def chdir(self, pid: int, path: str) -> int:
        return self._fwd("chdir", pid, path)

    def symlink(self, pid: int, target: str, path: str) -> int:
        return self._fwd("symlink", pid, target, path)

    def readlink(self, pid: int, path: str):
        got = self._fwd("readlink", pid, path)
        return (got, "") if type(got) is int else got

    def readdir(self, pid: int, fd: int):
        if pid in self._sockets and fd in self._sockets[pid]:
            return self._net.readdir(pid, fd)
        return self._fwd_tuple("readdir", 0, pid, fd)

    # -- processes ------------------------------------------------------------------------------
    def _read_program(self, pid: int, path: str):
        """(source text, "") or (None, -errno)."""
        fd = self._fwd("open", pid, path, O_RDONLY)
        if fd < 0:
            return None, fd
        try:
            st = self._fwd_tuple("fstat", 6, pid, fd)
            if st[0] < 0:
                return None, st[0]
            if st[3] != T_FILE:
                return None, -ENOEXEC
            if st[5] > MAXPROGRAM:
                return None, -E2BIG
            parts = []
            buf = RRef.new(Block)
            while True:
                n, buf = self._fwd_buffer("read", pid, fd, buf, 4096)
                if n < 0:
                    return None, n
                if n == 0:
                    break
                parts.append(buf.tobytes()[:n])
            buf.drop()
            return b"".join(parts).decode("utf-8", "replace"), ""
        finally:
            self._fwd("close", pid, fd)

    def spawn(self, pid: int, path: str, argv: tuple, fds: tuple) -> int:
        if len(argv) > MAXARG or len(fds) > 16 or sum(len(a) for a in argv) > ARGBYTES:
            return -E2BIG
        if self._procs.count() >= NPROC:
            return -EAGAIN
        source, err = self._read_program(pid, path)
        if source is None:
            return err
        name = path.rstrip("/").split("/")[-1] or "prog"
        child = self._procs.new(pid, name)
        got = self._fwd("inherit", pid, child.pid, fds)
        if got < 0:
            self._procs.exited(child, CRASHED)
            self._procs.reap(pid, child.pid)
            return got
        self._net.inherit(pid, child.pid, fds)
        program, why = self._services.load_program(child.pid, name, source)
        if program is None:
            self._write_error(child.pid, f"{name}: cannot load: {why}\n")
            self._net.exit(child.pid, False)
            self._fwd("exit", child.pid)
            self._procs.exited(child, CRASHED)
            self._procs.reap(pid, child.pid)
            return -ENOEXEC
        child.program = program
        self._ctx.spawn(self._run, child, tuple(argv) or (name,), name=f"rv6-{child.pid}-{name}")
        return child.pid

    def _run(self, child, argv) -> None:
        status = 0
        try:
            status = child.program.main(argv)
        except RpcError as err:
            status = KILLED if child.killed else CRASHED
            child.reason = str(err)
        if status == CRASHED:
            self._write_error(child.pid, f"rv6: pid {child.pid} ({child.name}) crashed: "
                                         f"{child.reason}\n")
        self._net.exit(child.pid, status in (CRASHED, KILLED))
        self._fwd("exit", child.pid)
        self._services.stop_program(child.pid)
        self._procs.exited(child, status)

    def _write_error(self, pid: int, text: str) -> None:
        buf = RRef.new(Block)
        raw = text.encode("utf-8")[:4096]
        buf.write(raw)
        _n, buf = self._fwd_buffer("write", pid, 2, buf, len(raw))
        buf.drop()

    def wait(self, pid: int, child: int):
        # polls, 0.5 ms first, then backing off to 5 ms: a parent waiting on a long
        # program (the shell on benchfs) must not take the GIL from it every 0.5 ms
        delay = 0.0005
        while True:
            got = self._procs.reap(pid, child)
            if got is None:
                return (-ECHILD, 0)
            if got[0]:
                return got
            me = self._procs.get(pid)
            if me is not None and me.killed:
                return (-EINTR, 0)
            self._ctx.sleep(delay)
            delay = min(delay * 1.5, 0.005)

    def kill(self, pid: int, target: int) -> int:
        """A program may kill its own descendants only (Rv6 itself, pid 0, any): killing
        init or another user's shell would be a capability no program was given."""
        p = self._procs.get(target)
        if p is None or p.state != RUNNING or target <= 0:
            return -ESRCH
        if pid != 0 and not self._procs.descends(target, pid):
            return -EPERM
        p.killed = True
        self._fwd("kill", target)
        self._services.stop_program(target)
        return 0

    def getpid(self, pid: int) -> int:
        return pid

    def uptime(self, pid: int) -> int:
        return time.monotonic_ns() - self._boot_ns

    def sleep(self, pid: int, ns: int) -> int:
        if ns < 0:
            return -EINVAL
        deadline = time.monotonic_ns() + ns
        while time.monotonic_ns() < deadline:
            me = self._procs.get(pid)
            if me is not None and me.killed:
                return -EINTR
            self._ctx.sleep(min(0.005, (deadline - time.monotonic_ns()) / 1e9))
        return 0

    # -- administration -------------------------------------------------------------------------
    def _console_fds(self) -> int:
        st = self._fwd_tuple("fstat", 6, 0, 0)
        if st[0] == 0:
            return 0
        self._fwd("exit", 0)
        self._fwd("mknod", 0, "/console", 1, 0)
        for _ in range(3):
            fd = self._fwd("open", 0, "/console", O_RDWR)
            if fd < 0:
                return fd
        return 0

    def boot(self) -> int:
        return self.spawn(0, "/init", ("init",), ())

    def system(self, cmdline: str) -> int:
        err = self._console_fds()
        if err < 0:
            return err
        child = self.spawn(0, "/sh", ("sh", "-c", cmdline), (0, 1, 2))
        if child < 0:
            self._write_error(0, f"rv6: cannot run /sh: {strerror(child)}\n")
            return child
        return self.wait(0, child)[1]

    def interrupt(self) -> int:
        victims = [row[0] for row in self._procs.rows()
                   if row[3] == RUNNING and row[2] not in ("init", "sh")]
        return sum(1 for pid in victims if self.kill(0, pid) == 0)

    def procs(self) -> tuple:
        return self._procs.rows()


def init(ctx, fs, services) -> Core:
    return Core(ctx, fs, services)
