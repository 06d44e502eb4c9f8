"""User programs as domains: the core domain's loader capability and each program's syscall port.

`ProgramServices` is the trusted object the core domain gets as its `services`
capability. What a domain can do with it, and nothing more:

* `load_program(pid, name, source)`: load `source` (text the core read from the Rv6 file
  system) as a new domain named `rv6_p<pid>_<name>`, after the kernel's safe-subset
  check, with exactly one capability: a `SyscallPort` bound to `pid`. The program gets no
  other capability, and its code is checked like any domain's, so this gives the core no
  power beyond what its own (checked) code has. Returns (Program proxy, "") or
  (None, error text).
* `stop_program(pid)`: stop that program's domain (kill; its heap is reclaimed) and drop
  it from the domain table (`Kernel.forget`: the kernel's bounded history keeps it).
* `fs()`: the file-system domain's current proxy, restarting it first if it crashed
  (the restart mounts the image again and replays its log).
* `net()`: the network stack domain's current Socket proxy (restarted first if it
  crashed), or None when the trusted side attached no stack (`attach_net`): sockets
  are then ENETDOWN. The core is the stack's only client on the programs' behalf.

A `SyscallPort` is what a program sees of Rv6: the system calls without the pid, which
the port adds (a program cannot act as another process). It checks argument types
before anything crosses a proxy, so a bad argument (a list for a buffer, a str for a
descriptor) is an error value (-EFAULT, -EINVAL), not an exception in the program.

Locking: the kernel's own; the ports hold no state but their pid and the core proxy.
`_domains_lock` serializes the program domains' loads and stops: a program ending on its
own thread and one killed by ^C used to stop at once, and the kernel's loader iterated
sys.modules while the other stop deleted from it ("dictionary changed size during
iteration", which crashed the core domain; the loader itself should copy the keys).
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any

from ..errors import RpcError
from ..heap import Block, RRef
from ..interfaces.rv6 import EFAULT, EINVAL, MAXPROGRAM, Program
from ..sealed import Sealed

START_SOURCE = '''"""Entry of an Rv6 user program domain (generated): main(argv) runs prog.main."""
from . import prog
from . import ulib


class Program:
    def __init__(self, ctx, sys) -> None:
        self._ctx = ctx
        self._sys = sys

    def main(self, argv):
        rc = prog.main(ulib.User(self._ctx, self._sys), argv)
        return rc if type(rc) is int else 0


def init(ctx, sys):
    return Program(ctx, sys)
'''


def _ulib_source() -> str:
    return (resources.files("redleaf_lab.domains").joinpath("rv6").joinpath("ulib")
            .joinpath("ulib.py").read_text())


class ProgramServices(Sealed):
    def __init__(self, kernel: Any, fs_name: str) -> None:
        self._kernel = kernel
        self._fs_name = fs_name
        self._net_name: str | None = None
        self._core: Any = None
        self._names: dict[int, str] = {}
        self._ulib = _ulib_source()
        self._domains_lock = threading.Lock()

    def attach_core(self, core: Any) -> None:
        """Set once by the trusted boot code: the core proxy the ports call (a proxy of
        Rv6 only, so no domain object can be planted to run in a program's context)."""
        from ..idl.proxy import ProxyBase
        from ..interfaces.rv6 import Rv6

        if self._core is None and isinstance(core, ProxyBase) and issubclass(
                core.interface, Rv6):
            self._core = core

    def attach_net(self, name: str) -> None:
        """Set by the trusted side: the name of the netstack domain Rv6's sockets use.
        Refused inside a domain: the core holds this object, and naming a stack would
        hand it the Socket capability of any netstack in the kernel."""
        from ..errors import SafetyError
        from ..interfaces.socket import Socket
        from ..kernel import ROOT, current_domain

        if current_domain() is not ROOT:
            raise SafetyError("<runtime>", 0, "capability",
                              "attach_net is for the trusted side that booted Rv6")
        if not issubclass(self._kernel.domain(name).spec.image.provides, Socket):
            raise ValueError(f"{name} does not provide Socket")
        self._net_name = name

    def net(self) -> Any:
        if self._net_name is None:
            return None
        try:
            domain = self._kernel.domain(self._net_name)
            if domain.state == "running":
                return domain.proxy
            if domain.state != "crashed":
                return None  # stopped by its owner (or restarting): not for the core to revive
            return self._kernel.restart(self._net_name)
        except Exception:  # stopped for good, or the restart failed: sockets fail
            return None

    def load_program(self, pid: int, name: str, source: str) -> tuple[Any, str]:
        from ..kernel import loader

        if type(pid) is not int or type(name) is not str or type(source) is not str:
            return (None, "bad arguments")
        if len(source) > MAXPROGRAM:
            return (None, "program too large")
        clean = re.sub(r"[^A-Za-z0-9_]", "_", name)[:32] or "prog"
        domain_name = f"rv6_p{pid}_{clean}"
        try:
            image = loader.image_from_sources(
                domain_name, {"prog": source, "ulib": self._ulib, "start": START_SOURCE},
                "start", Program, {"sys": None}, f"rv6:/{clean}")
            with self._domains_lock:
                proxy = self._kernel.load(image, sys=SyscallPort(self._core, pid))
        except Exception as exc:  # a program that fails the check or its init: an error value
            return (None, _one_line(exc))
        self._names[pid] = domain_name
        return (proxy, "")

    def stop_program(self, pid: int) -> bool:
        name = self._names.pop(pid, None) if type(pid) is int else None
        if name is None:
            return False
        try:
            with self._domains_lock:
                self._kernel.stop(name)
            settled = self._kernel.domain(name).settled
        except KeyError:
            return False
        # the ended program leaves the domain table (kept in the kernel's bounded history)
        if settled.wait(2.0) and hasattr(self._kernel, "forget"):
            self._kernel.forget(name)
        return True

    def fs(self) -> Any:
        domain = self._kernel.domain(self._fs_name)
        if domain.state == "running":
            return domain.proxy
        try:
            return self._kernel.restart(self._fs_name)
        except Exception:  # the restart failed (e.g. the image cannot be mounted)
            return self._kernel.domain(self._fs_name).proxy


def _one_line(exc: BaseException) -> str:
    from ..errors import describe_exception

    return describe_exception(exc).splitlines()[0][:300]


def _is_str(x: Any) -> bool:
    return type(x) is str


def _is_int(x: Any) -> bool:
    return type(x) is int


class SyscallPort(Sealed):
    """A program's system calls; every argument checked before it crosses."""

    def __init__(self, core: Any, pid: int) -> None:
        self._core = core
        self._pid = pid

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._core, method)(self._pid, *args)
        except RpcError:
            return -5  # EIO: the core domain itself failed

    def _buffer_call(self, method: str, fd: Any, buf: Any, count: Any) -> tuple[int, Any]:
        if type(buf) is not RRef or buf.layout is not Block:
            return (-EFAULT, buf)
        if not _is_int(fd) or not _is_int(count):
            return (-EINVAL, buf)
        try:
            call = self._core.read if method == "read" else self._core.write
            got: tuple[int, Any] = call(self._pid, fd, buf, count)
            return got
        except RpcError:
            return (-5, RRef.new(Block))

    def getpid(self) -> int:
        return self._pid

    def open(self, path: Any, mode: Any) -> int:
        return self._call("open", path, mode) if _is_str(path) and _is_int(mode) else -EINVAL

    def close(self, fd: Any) -> int:
        return self._call("close", fd) if _is_int(fd) else -EINVAL

    def read(self, fd: Any, buf: Any, count: Any) -> tuple[int, Any]:
        return self._buffer_call("read", fd, buf, count)

    def write(self, fd: Any, buf: Any, count: Any) -> tuple[int, Any]:
        return self._buffer_call("write", fd, buf, count)

    def seek(self, fd: Any, offset: Any, whence: Any) -> int:
        ok = _is_int(fd) and _is_int(offset) and _is_int(whence)
        return self._call("seek", fd, offset, whence) if ok else -EINVAL

    def fstat(self, fd: Any) -> tuple[int, int, int, int, int, int]:
        if not _is_int(fd):
            return (-EINVAL, 0, 0, 0, 0, 0)
        got = self._call("fstat", fd)
        return (got, 0, 0, 0, 0, 0) if type(got) is int else got

    def mknod(self, path: Any, major: Any, minor: Any) -> int:
        ok = _is_str(path) and _is_int(major) and _is_int(minor)
        return self._call("mknod", path, major, minor) if ok else -EINVAL

    def dup(self, fd: Any) -> int:
        return self._call("dup", fd) if _is_int(fd) else -EINVAL

    def pipe(self) -> tuple[int, int, int]:
        got = self._call("pipe")
        return (got, -1, -1) if type(got) is int else got

    def link(self, old: Any, new: Any) -> int:
        return self._call("link", old, new) if _is_str(old) and _is_str(new) else -EINVAL

    def unlink(self, path: Any) -> int:
        return self._call("unlink", path) if _is_str(path) else -EINVAL

    def mkdir(self, path: Any) -> int:
        return self._call("mkdir", path) if _is_str(path) else -EINVAL

    def chdir(self, path: Any) -> int:
        return self._call("chdir", path) if _is_str(path) else -EINVAL

    def symlink(self, target: Any, path: Any) -> int:
        ok = _is_str(target) and _is_str(path)
        return self._call("symlink", target, path) if ok else -EINVAL

    def readlink(self, path: Any) -> tuple[int, str]:
        if not _is_str(path):
            return (-EINVAL, "")
        got = self._call("readlink", path)
        return (got, "") if type(got) is int else got

    def readdir(self, fd: Any) -> tuple[int, tuple[tuple[int, str], ...]]:
        if not _is_int(fd):
            return (-EINVAL, ())
        got = self._call("readdir", fd)
        return (got, ()) if type(got) is int else got

    def spawn(self, path: Any, argv: Any = (), fds: Any = (0, 1, 2)) -> int:
        if isinstance(argv, list):
            argv = tuple(argv)
        if isinstance(fds, list):
            fds = tuple(fds)
        ok = (_is_str(path) and type(argv) is tuple and all(_is_str(a) for a in argv)
              and type(fds) is tuple and all(_is_int(f) for f in fds))
        return self._call("spawn", path, argv, fds) if ok else -EINVAL

    def wait(self, child: Any = -1) -> tuple[int, int]:
        if not _is_int(child):
            return (-EINVAL, 0)
        got = self._call("wait", child)
        return (got, 0) if type(got) is int else got

    def kill(self, pid: Any) -> int:
        return self._call("kill", pid) if _is_int(pid) else -EINVAL

    def uptime(self) -> int:
        return self._call("uptime")

    def sleep(self, ns: Any) -> int:
        return self._call("sleep", ns) if _is_int(ns) else -EINVAL

    # -- sockets (domains/rv6/sysnet.py) ----------------------------------------------------
    def socket(self, kind: Any) -> int:
        return self._call("socket", kind) if _is_int(kind) else -EINVAL

    def bind(self, fd: Any, port: Any) -> int:
        return self._call("bind", fd, port) if _is_int(fd) and _is_int(port) else -EINVAL

    def listen(self, fd: Any, backlog: Any) -> int:
        return self._call("listen", fd, backlog) if _is_int(fd) and _is_int(backlog) else -EINVAL

    def accept(self, fd: Any) -> tuple[int, int, int]:
        if not _is_int(fd):
            return (-EINVAL, 0, 0)
        got = self._call("accept", fd)
        return (got, 0, 0) if type(got) is int else got

    def connect(self, fd: Any, ip: Any, port: Any) -> int:
        ok = _is_int(fd) and _is_int(ip) and _is_int(port)
        return self._call("connect", fd, ip, port) if ok else -EINVAL

    def _sock_buffer(self, method: str, fd: Any, buf: Any, count: Any, *address: Any) -> Any:
        """send/recv/sendto/recvfrom: the buffer moves in and comes back, as for read."""
        width = 4 if method == "recvfrom" else 2
        if type(buf) is not RRef or not buf.valid or buf.layout is not Block:
            return (-EFAULT, 0, 0, buf) if width == 4 else (-EFAULT, buf)
        if not (_is_int(fd) and _is_int(count) and all(_is_int(a) for a in address)):
            return (-EINVAL, 0, 0, buf) if width == 4 else (-EINVAL, buf)
        try:
            return getattr(self._core, method)(self._pid, fd, buf, count, *address)
        except RpcError:
            return (-5, 0, 0, RRef.new(Block)) if width == 4 else (-5, RRef.new(Block))

    def send(self, fd: Any, buf: Any, count: Any) -> tuple[int, Any]:
        got: tuple[int, Any] = self._sock_buffer("send", fd, buf, count)
        return got

    def recv(self, fd: Any, buf: Any, count: Any) -> tuple[int, Any]:
        got: tuple[int, Any] = self._sock_buffer("recv", fd, buf, count)
        return got

    def sendto(self, fd: Any, buf: Any, count: Any, ip: Any, port: Any) -> tuple[int, Any]:
        got: tuple[int, Any] = self._sock_buffer("sendto", fd, buf, count, ip, port)
        return got

    def recvfrom(self, fd: Any, buf: Any, count: Any) -> tuple[int, int, int, Any]:
        got: tuple[int, int, int, Any] = self._sock_buffer("recvfrom", fd, buf, count)
        return got

    def poll(self, fds: Any, events: Any, timeout_ms: Any) -> tuple[int, ...]:
        if isinstance(fds, list):
            fds = tuple(fds)
        if isinstance(events, list):
            events = tuple(events)
        ok = (type(fds) is tuple and type(events) is tuple and len(fds) == len(events)
              and all(_is_int(f) for f in fds) and all(_is_int(e) for e in events)
              and _is_int(timeout_ms))
        if not ok:
            return tuple(0x020 for _ in fds) if type(fds) is tuple else ()  # POLLNVAL
        got: tuple[int, ...] = self._call("poll", fds, events, timeout_ms)
        return (0x020,) * len(fds) if type(got) is int else got
