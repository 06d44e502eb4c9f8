"""init: open the console as descriptors 0, 1, 2 and run the shell (again if it fails)."""

from redleaf_lab.interfaces.rv6 import CONSOLE, O_RDWR


def console(u):
    if u.fstat(0)[0] == 0:
        return True
    for fd in (0, 1, 2):
        u.close(fd)
    if u.open("/console", O_RDWR) < 0:
        u.mknod("/console", CONSOLE, 0)
        if u.open("/console", O_RDWR) < 0:
            return False
    u.dup(0)
    u.dup(0)
    return True


def main(u, argv):
    while True:
        if not console(u):
            return 1
        pid = u.spawn("/sh", ("sh",), (0, 1, 2))
        if pid < 0:
            u.puts(2, f"init: cannot run /sh: {u.strerror(pid)}\n")
            return 1
        while True:
            got, status = u.wait(-1)
            if got == pid or got < 0:
                break
        if status == 0:
            return 0  # the shell ended normally (exit, or the end of input)
        u.puts(2, f"init: the shell ended with status {status}; starting it again\n")
