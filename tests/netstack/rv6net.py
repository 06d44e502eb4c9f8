"""Rv6 on the in-process wire, for the tests of Rv6's socket system calls.

`boot(kernel, extra)` makes an image (mkfs's default files, the built-in site under
/www, and `extra` {path: source}), boots Rv6 on it, loads the wirenet driver over a
`LockedWire` (program threads transmit while the test thread takes frames) and the
netstack domain (10.9.0.2) over it, and attaches the stack to Rv6's program services.
`Rv6Net.port(pid)` is a syscall port as a program gets one; `run_async(cmdline)` runs a
shell command line on a thread. `Client` is a Peer (a second Stack) that the test drives.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redleaf_lab.domains.httpd.site import builtin_files

from redleaf_lab.interfaces.socket import STREAM
from redleaf_lab.rv6img import default_files, mkfs
from redleaf_lab.rv6img.programs import SyscallPort
from redleaf_lab.rv6img.system import Rv6System, boot_rv6

from .wire import SERVER_NUMBER, Peer, Wire

WIRENET = str(Path(__file__).parent / "wirenet")


class LockedWire(Wire):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def transmit(self, frame: bytes) -> None:
        with self.lock:
            super().transmit(frame)

    def take(self) -> list[bytes]:
        with self.lock:
            return super().take()


@dataclass
class Rv6Net:
    kernel: Any
    rv6: Rv6System
    wire: LockedWire
    stack: Any

    def port(self, pid: int) -> SyscallPort:
        return SyscallPort(self.rv6.core, pid)

    def census(self) -> dict[str, int]:
        return dict(self.stack.census()) if self.kernel.domain("netstack").state == "running" \
            else dict(self.kernel.proxy("netstack").census())

    def run_async(self, cmdline: str) -> tuple[threading.Thread, dict[str, Any]]:
        out: dict[str, Any] = {}

        def run() -> None:
            out["result"] = self.rv6.run(cmdline)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, out


def site_image(extra: dict[str, bytes] | None = None, blocks: int = 2048) -> Any:
    files = default_files()
    files.update({"/www" + path: body for path, body in builtin_files()})
    files.update(extra or {})
    return mkfs(blocks, files)


def boot(kernel: Any, extra: dict[str, bytes] | None = None) -> Rv6Net:
    rv6 = boot_rv6(kernel, site_image(extra))
    wire = LockedWire()
    net = kernel.load(WIRENET, wire=wire)
    stack = kernel.load("netstack", net=net, address=(10, 9, 0, 2),
                        options=(("time_wait", 0.2), ("seed", 1)))
    rv6.services.attach_net("netstack")
    return Rv6Net(kernel, rv6, wire, stack)


class Client:
    """A TCP client on the far side of the wire; the test thread drives it, and each
    step also runs the server's stack once (frames a socket call queued leave at the
    stack's next pump, which a server that is not polling would not run)."""

    def __init__(self, net: Rv6Net) -> None:
        self.peer = Peer(net.wire)
        self.sockets = self.peer.sockets
        self.kernel = net.kernel

    def step(self, pause: float = 0.001) -> None:
        self.peer.exchange(0.001)
        try:
            self.kernel.proxy("netstack").pump(1)
        except Exception:  # restarting: the next step pumps
            pass
        time.sleep(pause)

    def connect(self, port: int = 80, timeout: float = 10.0) -> int:
        """Connect, again after a refusal (the server may not listen yet)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fd = self.sockets.socket(STREAM)
            self.sockets.connect(fd, SERVER_NUMBER, port)
            for _ in range(50):
                self.step()
                conn = self.sockets.table[fd].conn
                if conn is not None and conn.state == "ESTABLISHED":
                    return fd
                if conn is None or conn.state == "CLOSED":
                    break
            self.sockets.close(fd)
            time.sleep(0.02)
        raise AssertionError(f"no connection to port {port}")

    def send_all(self, fd: int, data: bytes, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while data and time.monotonic() < deadline:
            n = self.sockets.send(fd, data)
            if n > 0:
                data = data[n:]
            self.step()
        assert not data, "could not send"

    def receive(self, fd: int, until, timeout: float = 5.0) -> tuple[bytes, int]:
        """Bytes received until `until(data)` is true, the end of stream or an error;
        (data, last recv result: 0 end of stream, -errno, or a count)."""
        data, last = b"", -11
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            n, chunk = self.sockets.recv(fd, 1 << 20)
            last = n
            if n > 0:
                data += chunk
                if until(data):
                    break
            elif n != -11:
                break
        return data, last

    def state(self, fd: int) -> str:
        conn = self.sockets.table[fd].conn
        return "none" if conn is None else conn.state
