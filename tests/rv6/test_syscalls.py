"""Every system call with bad arguments returns an error value (never an exception, never
a crash of the fs or core domain) and leaves the file system consistent."""

from __future__ import annotations

import pytest

from redleaf_lab import Block, RRef
from redleaf_lab.interfaces.rv6 import (
    EBADF,
    EEXIST,
    EFAULT,
    EINVAL,
    EISDIR,
    ENAMETOOLONG,
    ENOENT,
    ENOTDIR,
    ESPIPE,
    O_CREATE,
    O_RDONLY,
    O_RDWR,
)
from redleaf_lab.rv6img.programs import SyscallPort

from .conftest import assert_clean

PID = 100_000


@pytest.fixture
def port(rv6):
    return SyscallPort(rv6.core, PID)


def test_bad_arguments_give_error_values(rv6, port, big_kernel):
    buf = RRef.new(Block)
    fd = port.open("/f", O_CREATE | O_RDWR)
    assert fd == 0
    cases = [
        (lambda: port.open("/nope", O_RDONLY), -ENOENT),
        (lambda: port.open("", O_RDONLY), -ENOENT),
        (lambda: port.open(None, O_RDONLY), -EINVAL),
        (lambda: port.open("/f", "rw"), -EINVAL),
        (lambda: port.open("/f", -1), -EINVAL),
        (lambda: port.open("/f/x", O_RDONLY), -ENOTDIR),
        (lambda: port.open("/", O_RDWR), -EISDIR),
        (lambda: port.open("x" * 61, O_CREATE), -ENAMETOOLONG),
        (lambda: port.open("/a\0b", O_CREATE), -EINVAL),
        (lambda: port.close(99), -EBADF),
        (lambda: port.close(-1), -EBADF),
        (lambda: port.close("0"), -EINVAL),
        (lambda: port.seek(fd, -1, 0), -EINVAL),
        (lambda: port.seek(fd, 0, 9), -EINVAL),
        (lambda: port.seek(42, 0, 0), -EBADF),
        (lambda: port.fstat(42)[0], -EBADF),
        (lambda: port.mknod("/dev", 7, 0), -EINVAL),
        (lambda: port.dup(42), -EBADF),
        (lambda: port.link("/nope", "/g"), -ENOENT),
        (lambda: port.link("/f", "/f"), -EEXIST),
        (lambda: port.unlink("/nope"), -ENOENT),
        (lambda: port.unlink("/"), -EEXIST),
        (lambda: port.unlink("/."), -EINVAL),
        (lambda: port.mkdir("/f"), -EEXIST),
        (lambda: port.mkdir("/nope/x"), -ENOENT),
        (lambda: port.chdir("/f"), -ENOTDIR),
        (lambda: port.symlink("", "/s"), -ENOENT),
        (lambda: port.readlink("/f")[0], -EINVAL),
        (lambda: port.readdir(fd)[0], -ENOTDIR),
        (lambda: port.spawn("/nope", ("x",)), -ENOENT),
        (lambda: port.spawn("/echo", ("echo",), (42,)), -EBADF),
        (lambda: port.spawn("/echo", "echo"), -EINVAL),
        (lambda: port.wait(12345)[0], -10),
        (lambda: port.kill(12345), -3),
        (lambda: port.sleep(-5), -EINVAL),
    ]
    for i, (call, want) in enumerate(cases):
        assert call() == want, f"case {i}"
    # buffers: not an RRef, a count beyond the buffer, a negative count, a bad descriptor
    assert port.read(fd, b"not a buffer", 10) == (-EFAULT, b"not a buffer")
    n, buf = port.read(fd, buf, 4097)
    assert n == -EINVAL
    n, buf = port.write(fd, buf, -1)
    assert n == -EINVAL
    n, buf = port.read(77, buf, 10)
    assert n == -EBADF
    err, r, _w = port.pipe()
    assert err == 0
    assert port.seek(r, 0, 0) == -ESPIPE
    n, buf = port.write(r, buf, 1)
    assert n == -EBADF  # the read end
    # the buffer came back every time, and the file system still works
    buf.write(b"still fine")
    n, buf = port.write(fd, buf, 10)
    assert n == 10
    states = {r.name: r.state for r in big_kernel.ps()}
    assert states["rv6fs"] == "running" and states["rv6"] == "running"
    assert big_kernel.crashes("rv6fs") == 0 and big_kernel.crashes("rv6") == 0
    assert_clean(rv6.image())


def test_a_mutable_buffer_never_crosses(rv6, port):
    # a bytearray/list is refused by the port before any proxy sees it
    assert port.write(0, bytearray(10), 10)[0] == -EFAULT
    assert port.spawn("/echo", ["echo", 1]) == -EINVAL
