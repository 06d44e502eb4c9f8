"""wc [FILE...]: count lines, words and bytes."""

from redleaf_lab.interfaces.rv6 import O_RDONLY


def count(u, fd, name):
    data = u.read_all(fd)
    if type(data) is int:
        u.puts(2, f"wc: {name}: {u.strerror(data)}\n")
        return 1
    text = data.decode("utf-8", "replace")
    lines = data.count(b"\n")
    u.puts(1, f"{lines} {len(text.split())} {len(data)} {name}".rstrip() + "\n")
    return 0


def main(u, argv):
    if len(argv) < 2:
        return count(u, 0, "")
    status = 0
    for path in argv[1:]:
        fd = u.open(path, O_RDONLY)
        if fd < 0:
            u.puts(2, f"wc: {path}: {u.strerror(fd)}\n")
            status = 1
            continue
        status |= count(u, fd, path)
        u.close(fd)
    return status
