"""Open files (xv6 file.c and pipe.c): the file table, descriptor tables, pipes, console.

A `File` is one open-file description: an inode with an offset, one end of a `Pipe`, or
a device (the console, major CONSOLE). Descriptors of one or several processes share it
(`dup`, spawn's inherited descriptors) through its reference count; the table holds at
most NFILE of them (ENFILE), a process at most NOFILE descriptors (EMFILE).

`Processes` maps pid -> descriptor table (a list of NOFILE slots) and current directory.
Pid 0 is the kernel's own table (the core domain reads program sources through it).

A pipe is a 64 KiB ring of bytes with reader and writer counts. Reading an empty pipe
with no writer left returns 0 (end of file); writing with no reader left is EPIPE.
Blocking waits are done by the syscall layer outside the file-system lock.

Locking: callers hold the file system's lock.
"""

from redleaf_lab.interfaces.rv6 import EBADF, EMFILE, ENFILE, NFILE, NOFILE

from .fserror import FsError

PIPESIZE = 64 * 1024
INODE, PIPE, DEVICE = "inode", "pipe", "device"


class Pipe:
    def __init__(self) -> None:
        self.data = bytearray()
        self.readers = 1
        self.writers = 1


class File:
    def __init__(self, kind: str, readable: bool, writable: bool) -> None:
        self.kind = kind
        self.readable = readable
        self.writable = writable
        self.ref = 1
        self.ip = None
        self.off = 0
        self.pipe = None
        self.append = False

    def advance(self, n: int) -> None:
        """Move the offset on by n (a store into `self`: the loader's fast path)."""
        self.off += n


class Proc:
    def __init__(self, cwd) -> None:
        self.ofile = [None] * NOFILE
        self.cwd = cwd
        self.killed = False


class Processes:
    def __init__(self, inodes) -> None:
        self._inodes = inodes
        self.open_files = 0
        self.procs = {}

    # -- the file table ------------------------------------------------------------------
    def filealloc(self, kind: str, readable: bool, writable: bool) -> File:
        if self.open_files >= NFILE:
            raise FsError(ENFILE, "file table full")
        self.open_files += 1
        return File(kind, readable, writable)

    def filedup(self, f: File) -> File:
        f.ref += 1
        return f

    def fileclose(self, f: File) -> None:
        """Drop one reference (inside a transaction: the last may free an inode)."""
        f.ref -= 1
        if f.ref > 0:
            return
        self.open_files -= 1
        if f.kind == PIPE:
            if f.writable:
                f.pipe.writers -= 1
            else:
                f.pipe.readers -= 1
        elif f.ip is not None:
            ip = f.ip
            f.ip = None
            self._inodes.iput(ip)

    # -- descriptor tables ---------------------------------------------------------------
    def proc(self, pid: int) -> Proc:
        p = self.procs.get(pid)
        if p is None:
            p = Proc(self._inodes.iget(1))
            self.procs[pid] = p
        return p

    def fdalloc(self, pid: int, f: File) -> int:
        ofile = self.proc(pid).ofile
        for fd in range(NOFILE):
            if ofile[fd] is None:
                ofile[fd] = f
                return fd
        raise FsError(EMFILE, "too many open files")

    def fd(self, pid: int, fd: int) -> File:
        if not isinstance(fd, int) or not 0 <= fd < NOFILE:
            raise FsError(EBADF, f"bad descriptor {fd}")
        f = self.proc(pid).ofile[fd]
        if f is None:
            raise FsError(EBADF, f"descriptor {fd} is not open")
        return f

    def close_fd(self, pid: int, fd: int) -> None:
        f = self.fd(pid, fd)
        self.proc(pid).ofile[fd] = None
        self.fileclose(f)

    def drop(self, pid: int) -> None:
        """Close every descriptor and the cwd of pid (inside a transaction)."""
        p = self.procs.pop(pid, None)
        if p is None:
            return
        for fd, f in enumerate(p.ofile):
            if f is not None:
                p.ofile[fd] = None
                self.fileclose(f)
        self._inodes.iput(p.cwd)
