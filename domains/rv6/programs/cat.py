"""cat [FILE...]: copy files (or standard input) to standard output."""

from redleaf_lab.interfaces.rv6 import O_RDONLY


def copy(u, fd):
    while True:
        data = u.read_bytes(fd)
        if type(data) is int:
            return data
        if not data:
            return 0
        if u.write_bytes(1, data) < 0:
            return -1


def main(u, argv):
    if len(argv) < 2:
        return 0 if copy(u, 0) == 0 else 1
    status = 0
    for path in argv[1:]:
        fd = u.open(path, O_RDONLY)
        if fd < 0:
            u.puts(2, f"cat: {path}: {u.strerror(fd)}\n")
            status = 1
            continue
        if copy(u, fd) != 0:
            u.puts(2, f"cat: {path}: read error\n")
            status = 1
        u.close(fd)
    return status
