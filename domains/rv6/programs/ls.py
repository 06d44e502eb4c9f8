"""ls [PATH...]: list directories (name, type, inode, size)."""

from redleaf_lab.interfaces.rv6 import O_NOFOLLOW, O_RDONLY, T_DIR

TYPES = {1: "d", 2: "-", 3: "c", 4: "l"}


def show(u, path):
    fd = u.open(path, O_RDONLY)
    if fd < 0:
        fd = u.open(path, O_RDONLY | O_NOFOLLOW)
    if fd < 0:
        u.puts(2, f"ls: {path}: {u.strerror(fd)}\n")
        return 1
    err, _dev, inum, itype, _nlink, size = u.fstat(fd)
    if itype != T_DIR:
        u.close(fd)
        u.puts(1, f"{TYPES.get(itype, '?')} {inum:4} {size:8} {path}\n")
        return 0
    err, entries = u.readdir(fd)
    u.close(fd)
    if err < 0:
        u.puts(2, f"ls: {path}: {u.strerror(err)}\n")
        return 1
    lines = []
    for _inum, name in entries:
        child = path.rstrip("/") + "/" + name
        cfd = u.open(child, O_RDONLY | O_NOFOLLOW)
        if cfd < 0:
            lines.append(f"? {_inum:4} {0:8} {name}")
            continue
        _e, _d, ci, ct, _n, cs = u.fstat(cfd)
        u.close(cfd)
        lines.append(f"{TYPES.get(ct, '?')} {ci:4} {cs:8} {name}")
    u.puts(1, "".join(line + "\n" for line in lines))
    return 0


def main(u, argv):
    status = 0
    for path in argv[1:] or ["."]:
        status |= show(u, path)
    return status
