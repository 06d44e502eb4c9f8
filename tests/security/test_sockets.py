"""Red team: the socket interface as a capability (issue 16).

Two kinds of holder attack the network stack domain on the in-process wire:

* Rv6 programs (their port is the only thing they hold; the core is the stack's client
  on their behalf): holding every socket they can (bounded per process by NOFILE and in
  all of Rv6 by NSOCKET, with EMFILE / ENFILE), binding another program's port, naming
  another program's descriptors, huge counts, buffers that are not RRef[Block]s or were
  given away already, use after close, polls over absurd descriptor lists, reaching the
  stack or the core behind the port. After each, the victims (a listening program's
  socket, the stack, the core) still work and nothing leaked once the attackers end.
* A domain given the stack's Socket proxy directly (as httpd is): it runs into the
  stack-wide descriptor limit with EMFILE, cannot name the descriptors of another holder
  (they are sparse random numbers), and every misuse (bad counts, oversize length
  fields, absurd polls, use after close, another holder's port) is an error value; the
  stack never panics and its other holder (httpd) goes on serving.

What is NOT bounded, and why (see domains/netstack/sockets.py): holders of one Socket
proxy share the stack's table, so a domain holder can exhaust it for the others, and a
crashed domain holder's sockets stay until the stack restarts; the stack cannot tell
holders apart (no caller identity crosses a proxy). Rv6 programs are bounded and
reclaimed by the core, which is the stack's only holder in Rv6.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

import redleaf_lab
from redleaf_lab import Block, RRef
from redleaf_lab.interfaces.rv6 import EBADF, EFAULT, EINVAL, EMFILE, ENFILE, ENOTSOCK, NOFILE
from redleaf_lab.interfaces.socket import DGRAM, POLLIN, POLLNVAL, STREAM, SockBuf
from tests.netstack.rv6net import Client, boot
from tests.netstack.test_connections import boot as boot_httpd
from tests.netstack.wire import SERVER_NUMBER, Peer

NSOCKET = 64  # domains/rv6/sysnet.py


@pytest.fixture
def big_kernel():
    k = redleaf_lab.boot(heap_bytes=128 << 20, max_objects=1 << 16)
    try:
        yield k
    finally:
        if not k._closed:
            assert k.shutdown() == {"objects": 0, "bytes": 0}


HOLDER = b'''
from redleaf_lab.interfaces.socket import STREAM


def main(u, argv):
    """hold N: make sockets until refused, report, wait until killed."""
    made = []
    while True:
        fd = u.sys.socket(STREAM)
        if fd < 0:
            break
        made.append(fd)
    u.puts(1, "held %d %s\\n" % (len(made), u.strerror(fd)))
    while u.sleep(10_000_000) == 0:
        pass
    return 0
'''

PROBER = b'''
from redleaf_lab.api import Block, RRef
from redleaf_lab.interfaces.socket import POLLIN, STREAM


def main(u, argv):
    """Try to reach sockets that are not this program's, then report what it got."""
    s = u.sys
    hits = 0
    for fd in range(3, 4096):  # descriptor numbers are per process: none is ours
        if s.bind(fd, 9) not in (-9, -88):  # EBADF, ENOTSOCK
            hits += 1
        if s.close(fd) != -9:
            hits += 1
    mine = s.socket(STREAM)
    taken = s.bind(mine, int(argv[1]))  # the victim's port
    buf = RRef.new(Block)
    n, buf = s.send(mine, buf, 1 << 30)  # a huge count
    m, buf = s.recv(mine, buf, -5)
    for attr in ("_core", "_pid", "core", "stack", "net"):
        try:
            getattr(s, attr)
            hits += 1
        except Exception:
            pass
    u.puts(1, "probe %d %d %d %d\\n" % (hits, taken, n, m))
    return 0
'''


def test_programs_are_bounded_per_process_and_in_all_of_rv6(big_kernel):
    net = boot(big_kernel, {"/hold": HOLDER})
    status, output = net.rv6.run("hold & hold & hold & hold & hold & hold &")
    assert status == 0
    deadline = time.monotonic() + 20
    while output.count("held") < 6 and time.monotonic() < deadline:
        output += net.rv6.console.take_output()
        time.sleep(0.05)
    # each process alone stops at EMFILE (13 with the shell's 3 descriptors); all of
    # Rv6 at NSOCKET, with ENFILE for the rest
    counts = [int(line.split()[1]) for line in output.splitlines() if line.startswith("held")]
    assert len(counts) == 6 and sum(counts) == NSOCKET, output
    assert max(counts) <= NOFILE - 3 and "ENFILE" in output  # (EMFILE alone: test_rv6_sockets)
    assert net.census()["sockets"] == NSOCKET
    port = net.port(100_000)
    assert port.socket(STREAM) == -ENFILE
    assert net.rv6.core.interrupt() == 6  # the holders are killed ...
    deadline = time.monotonic() + 10
    while net.census()["sockets"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert net.census()["sockets"] == 0  # ... and everything they held is closed
    fd = port.socket(STREAM)
    assert fd >= 0 and port.close(fd) == 0


def test_a_program_cannot_reach_another_s_sockets_or_the_stack(big_kernel):
    net = boot(big_kernel, {"/probe": PROBER})
    victim = net.port(100_000)
    lfd = victim.socket(STREAM)
    assert victim.bind(lfd, 7777) == 0 and victim.listen(lfd, 4) == 0
    status, out = net.rv6.run("probe 7777")
    assert status == 0
    assert out.strip() == f"probe 0 {-errno.EADDRINUSE} {-EINVAL} {-EINVAL}", out
    # the victim's listener is intact: a client gets through
    client = Client(net)
    cfd = client.sockets.socket(STREAM)
    client.sockets.connect(cfd, SERVER_NUMBER, 7777)
    for _ in range(200):
        client.step(0)
        if victim.poll((lfd,), (POLLIN,), 1)[0]:
            break
    assert victim.accept(lfd)[0] >= 0
    assert net.census()["sockets"] == 2  # the probe's socket was closed at its end


def test_bad_buffers_and_use_after_close_through_the_port(big_kernel):
    net = boot(big_kernel)
    port = net.port(100_000)
    fd = port.socket(STREAM)
    given = RRef.new(Block)
    other = RRef.new(SockBuf)
    assert port.send(fd, given, 1)[0] == -errno.ENOTCONN  # the buffer comes back
    cases = [
        (lambda: port.send(fd, b"x" * 100_000, 10)[0], -EFAULT),
        (lambda: port.send(fd, bytearray(4096), 10)[0], -EFAULT),
        (lambda: port.send(fd, memoryview(b"abc"), 3)[0], -EFAULT),
        (lambda: port.send(fd, other, 10)[0], -EFAULT),
        (lambda: port.recv(fd, None, 10)[0], -EFAULT),
        (lambda: port.send(fd, RRef.new(Block), 4097)[0], -EINVAL),
        (lambda: port.send(fd, RRef.new(Block), 10**30)[0], -EINVAL),
        (lambda: port.send(fd, RRef.new(Block), 1.5)[0], -EINVAL),
        (lambda: port.poll(tuple(range(100_000)), (POLLIN,) * 100_000, 0)[:2],
         (POLLNVAL, POLLNVAL)),
        (lambda: port.poll((fd,), (POLLIN,), -10**12), (0,)),
    ]
    for i, (call, want) in enumerate(cases):
        assert call() == want, f"case {i}"
    # a buffer given away already: the port refuses it before anything crosses
    moved = RRef.new(Block)
    moved.drop()
    assert port.send(fd, moved, 1)[0] == -EFAULT
    assert port.recvfrom(fd, moved, 1)[0] == -EFAULT
    assert port.close(fd) == 0
    for call in (lambda: port.bind(fd, 1), lambda: port.listen(fd, 1),
                 lambda: port.send(fd, RRef.new(Block), 1)[0], lambda: port.dup(fd),
                 lambda: port.close(fd), lambda: port.accept(fd)[0]):
        assert call() == -EBADF
    f = port.open("/reused", 0x200 | 2)
    assert f == fd  # the number now names a file: socket calls on it are ENOTSOCK
    assert port.bind(f, 1) == -ENOTSOCK and port.close(f) == 0
    assert big_kernel.domains["netstack"].state == "running"
    assert big_kernel.domains["rv6"].state == "running"
    other.drop()
    assert net.census()["sockets"] == 0


def test_a_process_at_its_limit_leaves_connections_queued(big_kernel):
    net = boot(big_kernel)
    port = net.port(100_000)
    lfd = port.socket(STREAM)
    assert port.bind(lfd, 8080) == 0 and port.listen(lfd, 4) == 0
    fillers = [port.open("/", 0) for _ in range(NOFILE - 1)]
    assert all(f >= 0 for f in fillers)
    client = Client(net)
    cfd = client.sockets.socket(STREAM)
    client.sockets.connect(cfd, SERVER_NUMBER, 8080)
    for _ in range(200):
        client.step(0)
        if port.poll((lfd,), (POLLIN,), 1)[0]:
            break
    assert port.accept(lfd)[0] == -EMFILE
    assert port.close(fillers[0]) == 0
    fd = port.accept(lfd)[0]
    assert fd >= 0  # the connection waited in the queue
    assert client.state(cfd) == "ESTABLISHED"


SOCKET_HOG = '''
import errno

from redleaf_lab.api import Block, RRef
from redleaf_lab.interfaces.socket import POLLNVAL, STREAM, SockBuf, fill


class Hog:
    def __init__(self, ctx, sockets):
        self.s = sockets
        self.held = []

    def attack(self):
        s = self.s
        while True:
            fd = s.socket(STREAM)
            if fd < 0:
                break
            self.held.append(fd)
        code = 0 if fd == -errno.EMFILE else 1
        # another holder's descriptors: try the low numbers a dense table would use
        for fd in range(0, 2048):
            if fd not in self.held and s.close(fd) != -errno.EBADF:
                code |= 2
        # a SockBuf whose length field lies, counts beyond the block, absurd polls
        buf = RRef.new(SockBuf)
        buf.write(bytes([255, 255, 255, 255]))
        if s.send(self.held[0], buf) != -errno.ENOTCONN:
            code |= 4
        block = RRef.new(Block)
        if s.send_block(self.held[0], block, 1 << 40) != -errno.EINVAL:
            code |= 8
        n, block = s.recv_block(self.held[0], block, -1)
        if n != -errno.EINVAL:
            code |= 16
        if s.poll(tuple(range(5000)), (1,) * 5000, 0)[:1] != (POLLNVAL,):
            code |= 32
        if s.bind(self.held[1], 80) != -errno.EADDRINUSE:  # httpd's port
            code |= 64
        # not an RRef: the proxy refuses it in the caller, before the stack sees it
        try:
            s.send(self.held[0], b"raw bytes, not a buffer")
            code |= 256
        except Exception:
            pass
        gone = self.held.pop()
        s.close(gone)
        if s.listen(gone, 1) != -errno.EBADF:
            code |= 128
        buf.drop()
        block.drop()
        return code

    def take(self, data):
        return 0

    def lend(self, data):
        return 0


def init(ctx, sockets):
    return Hog(ctx, sockets)
'''

HOG_MANIFEST = """name = "sockethog"
entry = "hog.py"
provides = "tests.security.interfaces:Attack"

[needs]
sockets = "redleaf_lab.interfaces.socket:Socket"
"""


def test_a_domain_holding_the_socket_capability(big_kernel, tmp_path: Path):
    wire, stack, httpd = boot_httpd(big_kernel)
    folder = tmp_path / "sockethog"
    folder.mkdir()
    (folder / "domain.toml").write_text(HOG_MANIFEST)
    (folder / "hog.py").write_text(SOCKET_HOG)
    hog = big_kernel.load(str(folder), sockets=stack)
    assert hog.attack() == 0  # every attempt got an error value
    census = dict(stack.census())
    assert census["sockets"] == 1024 - 1  # the stack-wide limit (minus the one closed)
    descriptors = list(stack.socket(STREAM) for _ in range(1))
    assert descriptors == [descriptors[0]] and descriptors[0] >= 0
    assert stack.socket(STREAM) == -errno.EMFILE  # the limit holds, as an error value
    # httpd (another holder) still echoes on the UDP socket it holds: the stack did not
    # panic. (New TCP connections wait: the table is full for every holder, see above.)
    peer = Peer(wire)
    fd = peer.sockets.socket(DGRAM)
    peer.sockets.sendto(fd, b"still here", SERVER_NUMBER, 7)
    got = None
    for _ in range(50):
        peer.exchange(0.01)
        httpd.run(1, 0)
        n, _ip, _port, data = peer.sockets.recvfrom(fd, 100)
        if n > 0:
            got = data
            break
    assert got == b"still here"
    assert big_kernel.crashes("netstack") == 0 and big_kernel.crashes("sockethog") == 0
    big_kernel.stop("sockethog")


SERVICES_GRAB = '''
class Grab:
    def __init__(self, ctx, services):
        self.services = services

    def attack(self):
        try:
            self.services.attach_net("netstack")  # name any stack in the kernel
        except Exception:
            pass
        return 0 if self.services.net() is None else 1

    def take(self, data):
        return 0

    def lend(self, data):
        return 0


def init(ctx, services):
    return Grab(ctx, services)
'''

GRAB_MANIFEST = """name = "grab"
entry = "grab.py"
provides = "tests.security.interfaces:Attack"

[needs]
services = "object"
"""


def test_the_core_s_services_do_not_hand_out_a_stack(big_kernel, tmp_path: Path):
    """Rv6's core holds its ProgramServices; a domain holding them cannot attach (and
    so reach) a netstack the trusted side did not give Rv6."""
    from redleaf_lab.rv6img.system import boot_rv6
    from tests.netstack.rv6net import WIRENET, LockedWire, site_image

    rv6 = boot_rv6(big_kernel, site_image())
    net = big_kernel.load(WIRENET, wire=LockedWire())
    big_kernel.load("netstack", net=net, address=(10, 9, 0, 2), options=())
    folder = tmp_path / "grab"
    folder.mkdir()
    (folder / "domain.toml").write_text(GRAB_MANIFEST)
    (folder / "grab.py").write_text(SERVICES_GRAB)
    grab = big_kernel.load(str(folder), services=rv6.services)
    assert grab.attack() == 0
    assert rv6.services.net() is None
    rv6.services.attach_net("netstack")  # the trusted side may
    assert rv6.services.net() is not None
    big_kernel.stop("grab")
