"""Rv6: RedLeaf's POSIX personality: the interfaces, error values and on-disk format.

Three interfaces, as RedLeaf splits Rv6 into domains:

* `Rv6FS`, the file-system domain (domains/rv6fs): files, directories, links, pipes,
  the console device, the file table and one descriptor table per process. Every call
  names the calling process (`pid`); the core domain is its only client.
* `Rv6`, the core domain (domains/rv6): the system calls user programs make (the same
  file calls, forwarded, plus spawn, wait, kill, sleep, uptime, getpid) and a few
  administrative calls for whoever booted Rv6 (`boot`, `system`, `interrupt`, `procs`).
* `Program`, one domain per user program: `main(argv)` returns the exit status.

Errors are values, never panics: a call returns a negative errno (`-ENOENT`), or a tuple
whose first item is one. I/O buffers are `RRef[Block]` (4 KiB) that move in and are
handed back with the count (RedLeaf's UsrVFS): `read(pid, fd, buf, count) -> (n, buf)`.

The on-disk format below is the contract between mkfs/fsck (redleaf_lab/rv6img, trusted)
and the fs domain: xv6's layout with 4 KiB blocks, a magic number and a doubly-indirect
block (facts: xv6-riscv fs.h, Rv6, the 6.1810 "large files" lab).

    [ boot | super | log header + LOGSIZE log blocks | inode blocks | bitmap | data ]

Concurrency contracts: `Rv6FS` and `Rv6` take any number of concurrent callers (the fs
domain serializes file-system work under one lock, outside of which pipe and console
reads wait; transactions from concurrent callers commit together: group commit).
"""

from __future__ import annotations

from ..heap import Block, RRef
from ..idl import Interface

# -- error values (Linux numbering) --------------------------------------------------------
EPERM, ENOENT, ESRCH, EINTR, EIO = 1, 2, 3, 4, 5
E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN = 7, 8, 9, 10, 11
EFAULT, EBUSY, EEXIST, EXDEV, ENODEV = 14, 16, 17, 18, 19
ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE = 20, 21, 22, 23, 24
EFBIG, ENOSPC, ESPIPE, EMLINK, EPIPE = 27, 28, 29, 31, 32
ENAMETOOLONG, ENOTEMPTY, ELOOP = 36, 39, 40
# sockets (domains/rv6/sysnet.py)
ENOTSOCK, EDESTADDRREQ, EMSGSIZE, EOPNOTSUPP, EADDRINUSE = 88, 89, 90, 95, 98
EADDRNOTAVAIL, ENETDOWN, ECONNRESET, EISCONN, ENOTCONN = 99, 100, 104, 106, 107
EALREADY, EINPROGRESS = 114, 115

ERRNO_NAMES: dict[int, str] = {
    EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO",
    E2BIG: "E2BIG", ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN",
    EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV", ENODEV: "ENODEV",
    ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENFILE: "ENFILE",
    EMFILE: "EMFILE", EFBIG: "EFBIG", ENOSPC: "ENOSPC", ESPIPE: "ESPIPE", EMLINK: "EMLINK",
    EPIPE: "EPIPE", ENAMETOOLONG: "ENAMETOOLONG", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP",
    ENOTSOCK: "ENOTSOCK", EDESTADDRREQ: "EDESTADDRREQ", EMSGSIZE: "EMSGSIZE",
    EOPNOTSUPP: "EOPNOTSUPP", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL",
    ENETDOWN: "ENETDOWN", ECONNRESET: "ECONNRESET", EISCONN: "EISCONN", ENOTCONN: "ENOTCONN",
    EALREADY: "EALREADY", EINPROGRESS: "EINPROGRESS",
}


def strerror(err: int) -> str:
    """`ENOENT` for 2 or -2."""
    return ERRNO_NAMES.get(abs(err), f"E{abs(err)}")


# -- open modes, seek, file types ------------------------------------------------------------
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREATE, O_TRUNC, O_NOFOLLOW, O_APPEND = 0x200, 0x400, 0x800, 0x1000
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
T_DIR, T_FILE, T_DEVICE, T_SYMLINK = 1, 2, 3, 4
T_SOCKET = 5  # fstat's type of a socket descriptor (never on disk)
CONSOLE = 1  # the console's major device number

# -- limits ---------------------------------------------------------------------------------
NOFILE = 16  # open files per process (xv6)
NFILE = 100  # open files in the system (RedLeaf's NFILE)
MAXPATH = 1024
MAXARG = 32
MAXSYMLINKS = 10  # symlink follow depth (6.1810 lab)
MAXPROGRAM = 256 * 1024  # largest program source spawn accepts (bytes)

# -- on-disk format -----------------------------------------------------------------------
BSIZE = 4096
FSMAGIC = 0x52563646  # "FV6R" little-endian: rv6 with 4 KiB blocks and a doubly-indirect
ROOTINO = 1
NDIRECT = 12
NINDIRECT = BSIZE // 4  # block numbers per indirect block
MAXFILE = NDIRECT + NINDIRECT + NINDIRECT * NINDIRECT  # blocks
LOGSIZE = 48  # data blocks in the log (plus one header block)
MAXOPBLOCKS = 16  # most blocks one file-system operation writes
NBUF = 256  # buffer-cache capacity (1 MiB)
BPB = BSIZE * 8  # bitmap bits per block
DINODE_SIZE = 128  # struct dinode, padded: type, major, minor, nlink (h), size (Q), addrs[14] (I)
IPB = BSIZE // DINODE_SIZE
DINODE_FORMAT = "<hhhhQ14I"
DIRSIZ = 60  # bytes of a name in a directory entry
DIRENT_SIZE = 64  # inum (I), name[60]
DIRENT_FORMAT = "<I60s"
SUPER_FORMAT = "<8I"  # magic, size, nblocks, ninodes, nlog, logstart, inodestart, bmapstart
SUPER_BLOCK = 1
LOGHEADER_FORMAT = f"<I{LOGSIZE}I"  # n, block[LOGSIZE]


class Rv6FS(Interface):
    """The file-system domain: every call on behalf of process `pid`."""

    def open(self, pid: int, path: str, mode: int) -> int: ...
    def close(self, pid: int, fd: int) -> int: ...
    def read(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def write(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def seek(self, pid: int, fd: int, offset: int, whence: int) -> int: ...
    def fstat(self, pid: int, fd: int) -> tuple[int, int, int, int, int, int]:
        """(err, dev, inum, type, nlink, size)."""
        ...
    def mknod(self, pid: int, path: str, major: int, minor: int) -> int: ...
    def dup(self, pid: int, fd: int) -> int: ...
    def pipe(self, pid: int) -> tuple[int, int, int]:
        """(err, read fd, write fd)."""
        ...
    def link(self, pid: int, old: str, new: str) -> int: ...
    def unlink(self, pid: int, path: str) -> int: ...
    def mkdir(self, pid: int, path: str) -> int: ...
    def chdir(self, pid: int, path: str) -> int: ...
    def symlink(self, pid: int, target: str, path: str) -> int: ...
    def readlink(self, pid: int, path: str) -> tuple[int, str]: ...
    def readdir(self, pid: int, fd: int) -> tuple[int, tuple[tuple[int, str], ...]]:
        """(err, ((inum, name), ...)) of the directory open at `fd`."""
        ...
    def inherit(self, parent: int, child: int, fds: tuple[int, ...]) -> int:
        """Give `child` a descriptor table: its fd i is the parent's fd fds[i]; its cwd
        is the parent's (pid 0: the root directory)."""
        ...
    def exit(self, pid: int) -> int:
        """Close every descriptor of `pid` and forget its table."""
        ...
    def kill(self, pid: int) -> int:
        """Mark `pid` killed: its pipe and console waits return -EINTR."""
        ...
    def log_state(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(log header blocks in memory, committed header on disk, cached block numbers in
        LRU order) for teaching views."""
        ...
    def counters(self) -> tuple[int, int, int, int]:
        """(transactions committed, blocks logged, cache hits, cache misses)."""
        ...


class Rv6(Interface):
    """The core domain: the system calls (on behalf of `pid`) and administration."""

    def open(self, pid: int, path: str, mode: int) -> int: ...
    def close(self, pid: int, fd: int) -> int: ...
    def read(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def write(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def seek(self, pid: int, fd: int, offset: int, whence: int) -> int: ...
    def fstat(self, pid: int, fd: int) -> tuple[int, int, int, int, int, int]: ...
    def mknod(self, pid: int, path: str, major: int, minor: int) -> int: ...
    def dup(self, pid: int, fd: int) -> int: ...
    def pipe(self, pid: int) -> tuple[int, int, int]: ...
    def link(self, pid: int, old: str, new: str) -> int: ...
    def unlink(self, pid: int, path: str) -> int: ...
    def mkdir(self, pid: int, path: str) -> int: ...
    def chdir(self, pid: int, path: str) -> int: ...
    def symlink(self, pid: int, target: str, path: str) -> int: ...
    def readlink(self, pid: int, path: str) -> tuple[int, str]: ...
    def readdir(self, pid: int, fd: int) -> tuple[int, tuple[tuple[int, str], ...]]: ...
    def spawn(self, pid: int, path: str, argv: tuple[str, ...], fds: tuple[int, ...]) -> int:
        """Load the program at `path` (source text in the file system) as a new domain
        whose fd i is the caller's fds[i]; returns the child's pid."""
        ...
    def wait(self, pid: int, child: int) -> tuple[int, int]:
        """Wait for a child (-1: any) to end: (its pid, exit status) or (-errno, 0).
        Status: what main returned; -1 if it crashed; -9 if it was killed."""
        ...
    def kill(self, pid: int, target: int) -> int: ...
    def getpid(self, pid: int) -> int: ...
    def uptime(self, pid: int) -> int:
        """Nanoseconds since Rv6 booted."""
        ...
    def sleep(self, pid: int, ns: int) -> int: ...
    # -- sockets (domains/rv6/sysnet.py): descriptors in the same table as files; the
    # calls of interfaces/socket.py with Rv6's 4 KiB buffers and counts --
    def socket(self, pid: int, kind: int) -> int: ...
    def bind(self, pid: int, fd: int, port: int) -> int: ...
    def listen(self, pid: int, fd: int, backlog: int) -> int: ...
    def accept(self, pid: int, fd: int) -> tuple[int, int, int]:
        """(new fd, peer ip, peer port) or (-errno, 0, 0)."""
        ...
    def connect(self, pid: int, fd: int, ip: int, port: int) -> int: ...
    def send(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def recv(self, pid: int, fd: int, buf: RRef[Block], count: int) -> tuple[int, RRef[Block]]: ...
    def sendto(self, pid: int, fd: int, buf: RRef[Block], count: int, ip: int,
               port: int) -> tuple[int, RRef[Block]]: ...
    def recvfrom(self, pid: int, fd: int, buf: RRef[Block],
                 count: int) -> tuple[int, int, int, RRef[Block]]:
        """(n, source ip, source port, buf)."""
        ...
    def poll(self, pid: int, fds: tuple[int, ...], events: tuple[int, ...],
             timeout_ms: int) -> tuple[int, ...]:
        """revents per descriptor (sockets and files; a file is always ready)."""
        ...
    # -- administration (the trusted front that booted Rv6) --
    def boot(self) -> int:
        """Start /init (pid 1), which opens the console and runs /sh."""
        ...
    def system(self, cmdline: str) -> int:
        """Run `/sh -c cmdline` on the console and wait for it; its exit status."""
        ...
    def interrupt(self) -> int:
        """Ctrl-C: kill every process but init and the shells; how many were killed."""
        ...
    def procs(self) -> tuple[tuple[int, int, str, str], ...]:
        """(pid, parent, name, state) of every process."""
        ...


class Program(Interface):
    """A user program domain."""

    def main(self, argv: tuple[str, ...]) -> int: ...
