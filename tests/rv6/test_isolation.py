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


ABUSE = '''
from redleaf_lab.api import Block, RRef


def main(u, argv):
    victim = int(argv[1])

    def check(ok, what):
        u.puts(1, ("ok " if ok else "FAIL ") + what + "\\n")

    # processes: a program acts on its own descendants only
    check(u.kill(victim) == -1, "kill of a process not mine is EPERM")
    check(u.wait(victim)[0] == -10, "wait for a process not mine is ECHILD")
    check(u.kill(10 ** 100) == -3 and u.kill(-1) == -3 and u.kill(0) == -3,
          "kill of no such pid is ESRCH")
    check(u.kill("1") == -22 and u.wait("1")[0] == -22, "a pid that is no int is EINVAL")
    child = u.spawn("/cat", ("cat",), (0, 1, 2))  # waits for console input
    check(child > 0 and u.kill(child) == 0 and u.wait(child) == (child, -9),
          "kill of my own child works")
    # sizes: refused cheaply, never a crash
    check(u.open("a" * 1_000_000, 0) == -36, "a 1 MB path is ENAMETOOLONG")
    check(u.spawn("/wc", ("wc",) + ("x" * 40_000,) * 2, ()) == -7, "argv over 64 KiB is E2BIG")
    check(u.spawn("/wc", ("wc",), (10 ** 30, -1)) < 0, "descriptors not mine do not pass")
    buf = RRef.new(Block)
    n, buf = u.read(0, buf, 10 ** 30)
    check(n == -22, "a read count past the buffer is EINVAL")
    check(u.read(0, b"x" * 4096, 10)[0] == -14, "a bytes buffer is EFAULT")
    check(u.sleep(-1) == -22, "a negative sleep is EINVAL")
    fds = []
    while True:
        fd = u.open("/README", 0)
        if fd < 0:
            break
        fds.append(fd)
    check(fd == -24 and len(fds) == 16 - 3, "descriptors end at NOFILE: EMFILE")
    return 0
'''


def test_a_program_cannot_reach_other_programs_or_overflow_the_system(rv6, big_kernel):
    from redleaf_lab import Block, RRef
    from redleaf_lab.interfaces.rv6 import O_CREATE, O_WRONLY

    fs, core = rv6.fs, rv6.core
    fd = fs.open(100_000, "/abuse", O_CREATE | O_WRONLY)
    raw = ABUSE.encode()
    buf = RRef.new(Block)
    for off in range(0, len(raw), 4096):
        chunk = raw[off:off + 4096]
        buf.write(chunk)
        n, buf = fs.write(100_000, fd, buf, len(chunk))
        assert n == len(chunk)
    fs.close(100_000, fd)
    buf.drop()
    assert rv6.run("echo warm") == (0, "warm\n")  # (gives Rv6 itself the console fds)
    victim = core.spawn(0, "/sh", ("sh",), (0, 1, 2))  # another user's shell, waiting
    assert victim > 0
    status, out = rv6.run(f"abuse {victim}")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 12 and all(line.startswith("ok ") for line in lines), out
    assert (victim, 0, "sh", "running") in core.procs()  # untouched
    assert core.kill(0, victim) == 0 and core.wait(0, victim) == (victim, -9)
    assert rv6.run("cat /README | wc")[0] == 0  # every descriptor came back


SPAWN_BOMB = '''
def main(u, argv):
    pids = []
    while len(pids) < 1000:
        pid = u.spawn("/cat", ("cat",), (0, 1, 2))  # each waits for console input
        if pid < 0:
            break
        pids.append(pid)
    u.puts(1, f"spawned {len(pids)}, then {pid}\\n")
    for p in pids:
        u.kill(p)
        u.wait(p)
    return 0
'''


def test_a_spawn_bomb_stops_at_nproc(rv6, big_kernel):
    from redleaf_lab import Block, RRef
    from redleaf_lab.interfaces.rv6 import O_CREATE, O_WRONLY

    fs = rv6.fs
    fd = fs.open(100_000, "/bomb", O_CREATE | O_WRONLY)
    raw = SPAWN_BOMB.encode()
    buf = RRef.new(Block)
    buf.write(raw)
    n, buf = fs.write(100_000, fd, buf, len(raw))
    assert n == len(raw)
    fs.close(100_000, fd)
    buf.drop()
    status, out = rv6.run("bomb")
    # 64 processes at once: sh -c and bomb itself, 62 cats; the next is EAGAIN (-11)
    assert status == 0 and out == "spawned 62, then -11\n", out
    assert rv6.run("echo fine") == (0, "fine\n")
    assert len(rv6.core.procs()) == 0
    assert {r.name for r in big_kernel.ps() if r.state == "running"} == {
        "membdev", "rv6fs", "rv6"}
