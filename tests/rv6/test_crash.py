"""Crashes under Rv6: the file-system domain itself (calls in flight get EIO, the domain
restarts and replays its log, fsck is clean, every acknowledged file is there), and the
block driver panicking behind its shadow (nothing lost, no program sees an error)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from redleaf_lab.interfaces.rv6 import EBADF, EIO, O_CREATE, O_RDONLY, O_RDWR, O_TRUNC
from redleaf_lab.rv6img import default_files, mkfs
from redleaf_lab.rv6img.programs import SyscallPort
from redleaf_lab.rv6img.system import boot_rv6

from .conftest import assert_clean


def pattern(i: int) -> bytes:
    return bytes([(i * 7 + 1) % 251]) * (1000 + 700 * (i % 9))


def write_file(port: SyscallPort, buf, path: str, data: bytes):
    """(acknowledged, buf): True when open, every write and close returned success."""
    fd = port.open(path, O_CREATE | O_RDWR | O_TRUNC)
    if fd < 0:
        return False, buf
    ok = True
    for off in range(0, len(data), 4096):
        chunk = data[off:off + 4096]
        buf.write(chunk)
        n, buf = port.write(fd, buf, len(chunk))
        ok = ok and n == len(chunk)
    return ok and port.close(fd) == 0, buf


def read_file(port: SyscallPort, buf, path: str):
    fd = port.open(path, O_RDONLY)
    if fd < 0:
        return fd, buf
    parts = []
    while True:
        n, buf = port.read(fd, buf, 4096)
        if n <= 0:
            break
        parts.append(buf.tobytes()[:n])
    port.close(fd)
    return b"".join(parts), buf


def test_fs_domain_crash_campaign(big_kernel):
    from redleaf_lab import Block, RRef

    rv6 = boot_rv6(big_kernel, mkfs(1024, default_files()))
    port = SyscallPort(rv6.core, 100_000)
    buf = RRef.new(Block)
    stop = threading.Event()
    rng = random.Random(7)

    def injector():
        while not stop.is_set() and big_kernel.crashes("rv6fs") < 12:
            time.sleep(rng.uniform(0.005, 0.04))
            big_kernel.panic("rv6fs", "fs crash campaign")

    thread = threading.Thread(target=injector, daemon=True)
    thread.start()
    acknowledged, errors, i = [], 0, 0
    deadline = time.monotonic() + 20
    while big_kernel.crashes("rv6fs") < 12 and time.monotonic() < deadline:
        ok, buf = write_file(port, buf, f"/c{i}", pattern(i))
        if ok:
            acknowledged.append(i)
        else:
            errors += 1
        i += 1
    stop.set()
    thread.join()
    assert big_kernel.crashes("rv6fs") >= 12, "the campaign did not crash the fs often enough"
    assert errors > 0  # calls in flight failed cleanly (EIO, then EBADF on the lost fd)
    # one more call lets the core notice a crash that came after the last call
    port.open("/", O_RDONLY)
    assert big_kernel.domain("rv6fs").state == "running"
    for k in acknowledged:
        got, buf = read_file(port, buf, f"/c{k}")
        assert got == pattern(k), f"acknowledged file /c{k} lost or wrong"
    assert_clean(rv6.image())
    buf.drop()


def test_a_call_in_flight_gets_eio_and_the_next_one_works(big_kernel):
    from redleaf_lab import Block, RRef

    rv6 = boot_rv6(big_kernel, mkfs(512, {}))
    port = SyscallPort(rv6.core, 100_000)
    fd = port.open("/x", O_CREATE | O_RDWR)
    big_kernel.faults.next_call("rv6fs")
    n, buf = port.write(fd, RRef.new(Block), 10)
    assert n == -EIO and buf.valid  # a fresh buffer came back in place of the lost one
    assert port.write(fd, buf, 10)[0] == -EBADF  # the restarted fs has no old descriptors
    assert port.open("/x", O_RDONLY) >= 0
    buf.drop()


@pytest.mark.parametrize("device", ["membdev", "nvme"])
def test_driver_panics_behind_the_shadow_lose_nothing(big_kernel, device):
    from redleaf_lab import Block, RRef

    rv6 = boot_rv6(big_kernel, mkfs(1024, default_files()), device=device)
    port = SyscallPort(rv6.core, 100_000)
    buf = RRef.new(Block)
    big_kernel.faults.every(device, 0.1, asynchronous=True)
    t0 = time.monotonic()
    written = 0
    latest: dict[str, bytes] = {}
    while time.monotonic() - t0 < 1.2:
        path = f"/w{written % 40}"
        ok, buf = write_file(port, buf, path, pattern(written))
        assert ok, "a program saw an error while the driver crashed"
        latest[path] = pattern(written)
        written += 1
    for path, data in latest.items():
        got, buf = read_file(port, buf, path)
        assert got == data
    big_kernel.faults.clear(device)
    assert big_kernel.crashes(device) >= 5
    assert big_kernel.crashes("rv6fs") == 0
    status, out = rv6.run("cat /w0 | wc")
    assert status == 0 and out.split()[2] == str(len(latest["/w0"])), out
    assert_clean(rv6.image())
    buf.drop()
