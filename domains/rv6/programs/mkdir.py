"""mkdir DIR...: make directories."""


def main(u, argv):
    status = 0
    for path in argv[1:]:
        err = u.mkdir(path)
        if err < 0:
            u.puts(2, f"mkdir: {path}: {u.strerror(err)}\n")
            status = 1
    return status
