"""ln [-s] TARGET NAME: a hard link (or, with -s, a symbolic link)."""


def main(u, argv):
    args = list(argv[1:])
    soft = bool(args) and args[0] == "-s"
    if soft:
        args = args[1:]
    if len(args) != 2:
        u.puts(2, "usage: ln [-s] TARGET NAME\n")
        return 2
    err = u.symlink(args[0], args[1]) if soft else u.link(args[0], args[1])
    if err < 0:
        u.puts(2, f"ln: {args[1]}: {u.strerror(err)}\n")
        return 1
    return 0
