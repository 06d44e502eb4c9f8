"""Red-team attempts from Rv6 programs: what a program gets (its syscall port and ulib)
exposes the system calls of its own pid and nothing else."""

from __future__ import annotations

import pytest

ATTEMPTS = {
    "port internals": "def main(u, argv):\n    return u.sys._core.procs()\n",
    "port pid": "def main(u, argv):\n    return u.sys._pid\n",
    "ctx internals": "def main(u, argv):\n    return u._ctx._domain.kernel\n",
    "a second port": ("def main(u, argv):\n    p = type(u.sys)(u.sys, 1)\n"
                      "    return p.open('/README', 0)\n"),
    "globals of a bound method": "def main(u, argv):\n    return u.open.__self__\n",
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_escape_attempts_fail_inside_the_program(rv6, big_kernel, name):
    fs = rv6.fs
    from redleaf_lab import Block, RRef
    from redleaf_lab.interfaces.rv6 import O_CREATE, O_WRONLY

    fd = fs.open(100_000, "/attempt", O_CREATE | O_WRONLY)
    raw = ATTEMPTS[name].encode()
    buf = RRef.new(Block)
    buf.write(raw)
    n, buf = fs.write(100_000, fd, buf, len(raw))
    assert n == len(raw)
    fs.close(100_000, fd)
    buf.drop()
    status, out = rv6.run("attempt")
    assert status != 0, out  # refused at load, or the program crashed: never a success
    assert "crashed" in out or "cannot load" in out
    # the system is intact
    assert rv6.run("echo fine") == (0, "fine\n")
    assert {r.name for r in big_kernel.ps() if r.state == "running"} == {
        "membdev", "rv6fs", "rv6"}
