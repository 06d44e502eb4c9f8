"""mv OLD NEW: rename (a link to the new name, then an unlink of the old)."""


def main(u, argv):
    if len(argv) != 3:
        u.puts(2, "usage: mv OLD NEW\n")
        return 2
    err = u.link(argv[1], argv[2])
    if err == 0:
        err = u.unlink(argv[1])
    if err < 0:
        u.puts(2, f"mv: {argv[1]}: {u.strerror(err)}\n")
        return 1
    return 0
