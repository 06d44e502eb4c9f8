"""touch FILE...: create empty files (existing ones are left as they are)."""

from redleaf_lab.interfaces.rv6 import O_CREATE, O_WRONLY


def main(u, argv):
    status = 0
    for path in argv[1:]:
        fd = u.open(path, O_CREATE | O_WRONLY)
        if fd < 0:
            u.puts(2, f"touch: {path}: {u.strerror(fd)}\n")
            status = 1
        else:
            u.close(fd)
    return status
