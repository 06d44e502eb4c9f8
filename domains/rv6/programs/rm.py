"""rm PATH...: remove names (an empty directory too)."""


def main(u, argv):
    status = 0
    for path in argv[1:]:
        err = u.unlink(path)
        if err < 0:
            u.puts(2, f"rm: {path}: {u.strerror(err)}\n")
            status = 1
    return status
