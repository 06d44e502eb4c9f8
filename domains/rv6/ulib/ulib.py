"""ulib: the user library every Rv6 program is linked with (xv6's ulib.c and printf.c).

`User(ctx, sys)` is what a program's `main(u, argv)` receives: every system call of its
port (u.open, u.read, ...; errors are negative errno values), plus helpers that manage
4 KiB `RRef[Block]` I/O buffers (moved into each read or write and handed back; a pool,
so that the program's threads never share one):

    u.puts(fd, text)           write a str (any length)       -> bytes written or -errno
    u.write_bytes(fd, data)    write bytes (any length)
    u.read_bytes(fd, n)        one read of up to n bytes      -> bytes (b"" at EOF) or -errno
    u.read_all(fd)             read to end of file            -> bytes or -errno
    u.spawn_thread(fn, *args)  a thread in this program's domain (RedLeaf's spawn_thread)
    u.join(thread)             wait for it (in short slices)
    u.strerror(err)            "ENOENT"

Checked like the program itself: it is one of the program domain's modules.
"""

from redleaf_lab.api import BLOCK_SIZE, Block, RRef
from redleaf_lab.interfaces.rv6 import strerror as _strerror

SYSCALLS = ("open", "close", "read", "write", "seek", "fstat", "mknod", "dup", "pipe", "link",
            "unlink", "mkdir", "chdir", "symlink", "readlink", "readdir", "spawn", "wait",
            "kill", "getpid", "uptime", "sleep")


class User:
    def __init__(self, ctx, sys) -> None:
        self._ctx = ctx
        self.sys = sys
        self._pool = []  # I/O buffers not in use; threads of one program each take their own
        self.open = sys.open
        self.close = sys.close
        self.read = sys.read
        self.write = sys.write
        self.seek = sys.seek
        self.fstat = sys.fstat
        self.mknod = sys.mknod
        self.dup = sys.dup
        self.pipe = sys.pipe
        self.link = sys.link
        self.unlink = sys.unlink
        self.mkdir = sys.mkdir
        self.chdir = sys.chdir
        self.symlink = sys.symlink
        self.readlink = sys.readlink
        self.readdir = sys.readdir
        self.spawn = sys.spawn
        self.wait = sys.wait
        self.kill = sys.kill
        self.getpid = sys.getpid
        self.uptime = sys.uptime
        self.sleep = sys.sleep

    def strerror(self, err: int) -> str:
        return _strerror(err)

    def _take(self):
        try:
            return self._pool.pop()
        except IndexError:
            return RRef.new(Block)

    def write_bytes(self, fd: int, data: bytes) -> int:
        buf = self._take()
        done = 0
        while done < len(data):
            chunk = data[done:done + BLOCK_SIZE]
            buf.write(chunk)
            n, buf = self.sys.write(fd, buf, len(chunk))
            if n < 0:
                done = n if done == 0 else done
                break
            if n == 0:
                break
            done += n
        self._pool.append(buf)
        return done

    def puts(self, fd: int, text: str) -> int:
        return self.write_bytes(fd, text.encode("utf-8"))

    def read_bytes(self, fd: int, n: int = BLOCK_SIZE):
        buf = self._take()
        got, buf = self.sys.read(fd, buf, min(n, BLOCK_SIZE))
        data = got if got < 0 else buf.tobytes()[:got]
        self._pool.append(buf)
        return data

    def read_all(self, fd: int):
        parts = []
        while True:
            data = self.read_bytes(fd)
            if type(data) is int:
                return data
            if not data:
                return b"".join(parts)
            parts.append(data)

    def lines(self, fd: int):
        """Lines of fd as str (read to the end first)."""
        data = self.read_all(fd)
        if type(data) is int:
            return data
        return data.decode("utf-8", "replace").splitlines()

    def spawn_thread(self, fn, *args):
        return self._ctx.spawn(fn, *args)

    def join(self, thread) -> None:
        while thread.is_alive():
            self._ctx.sleep(0.001)
