"""stressfs [N]: N programs (default 4) write and verify files at once (xv6's stressfs).

Each child (`stressfs -w NAME BLOCKS`) writes BLOCKS 4 KiB blocks of its own pattern to
NAME, reads them back and exits 0 only if every byte matches. The parent reports how
many children passed and removes the files.
"""

from redleaf_lab.interfaces.rv6 import O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY


def child(u, name, blocks):
    tag = sum(name.encode()) % 200 + 30
    fd = u.open(name, O_CREATE | O_WRONLY | O_TRUNC)
    if fd < 0:
        return 1
    for i in range(blocks):
        if u.write_bytes(fd, bytes([tag, i % 256]) * 2048) != 4096:
            return 2
    u.close(fd)
    fd = u.open(name, O_RDONLY)
    data = u.read_all(fd)
    u.close(fd)
    want = b"".join(bytes([tag, i % 256]) * 2048 for i in range(blocks))
    return 0 if data == want else 3


def main(u, argv):
    if len(argv) == 4 and argv[1] == "-w":
        return child(u, argv[2], int(argv[3]))
    n = int(argv[1]) if len(argv) > 1 else 4
    pids = []
    for i in range(n):
        pid = u.spawn("/stressfs", ("stressfs", "-w", f"stress{i}", "20"), (0, 1, 2))
        if pid < 0:
            u.puts(2, f"stressfs: spawn: {u.strerror(pid)}\n")
            return 1
        pids.append(pid)
    ok = 0
    for _ in pids:
        _pid, status = u.wait(-1)
        ok += status == 0
    for i in range(n):
        u.unlink(f"stress{i}")
    u.puts(1, f"stressfs: {ok}/{n} writers verified\n")
    return 0 if ok == n else 1
