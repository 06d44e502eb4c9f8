"""echo ARGS...: print the arguments."""


def main(u, argv):
    u.puts(1, " ".join(argv[1:]) + "\n")
    return 0
