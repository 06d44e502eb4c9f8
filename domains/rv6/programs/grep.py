"""grep PATTERN [FILE...]: print lines matching a regular expression."""

import re

from redleaf_lab.interfaces.rv6 import O_RDONLY


def main(u, argv):
    if len(argv) < 2:
        u.puts(2, "usage: grep PATTERN [FILE...]\n")
        return 2
    try:
        pattern = re.compile(argv[1])
    except re.error as err:
        u.puts(2, f"grep: bad pattern: {err}\n")
        return 2
    found = False
    for path in argv[2:] or [""]:
        fd = u.open(path, O_RDONLY) if path else 0
        if fd < 0:
            u.puts(2, f"grep: {path}: {u.strerror(fd)}\n")
            continue
        lines = u.lines(fd)
        if path:
            u.close(fd)
        if type(lines) is int:
            continue
        out = [line for line in lines if pattern.search(line)]
        found = found or bool(out)
        if out:
            u.puts(1, "".join(line + "\n" for line in out))
    return 0 if found else 1
