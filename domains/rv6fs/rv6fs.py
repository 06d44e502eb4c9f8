"""The Rv6 file-system domain: mount, locking, transactions, error values (Rv6FS).

`init(ctx, bdev, console)` mounts the image on `bdev`: it reads and checks the
superblock (magic, sizes that fit the device, regions in order), replays a committed
log (log.py), checks the root directory, and returns the `FileSystem` service. A
malformed image raises `MountError` naming the field: the load fails with that message
and nothing else is touched.

Every call returns an error value (-errno, or a tuple starting with one) for a bad
argument, a missing file or a full disk; only a bug in this domain panics. Buffers
(`RRef[Block]`) are moved in and always handed back, also on errors.

Locking: `_fslock` serializes all file-system work (cache, inodes, file table). Calls
that may write take a transaction first (`log.begin_op`, outside the lock) and end it
after releasing the lock (`log.end_op`, whose commit takes the lock again): operations
in flight together commit together. Pipe and console reads and writes wait outside the
lock, in short sleeps, and give up with -EINTR once the core domain marks the process
killed.
"""

import struct

import numpy as np

from redleaf_lab.api import BLOCK_SIZE
from redleaf_lab.interfaces.rv6 import (
    BPB,
    BSIZE,
    CONSOLE,
    EINTR,
    EINVAL,
    ENODEV,
    EPIPE,
    FSMAGIC,
    IPB,
    LOGSIZE,
    NBUF,
    ROOTINO,
    SUPER_BLOCK,
    SUPER_FORMAT,
    T_DIR,
)

from .bio import BufCache
from .dir import Directories
from .file import DEVICE, INODE, PIPE, PIPESIZE, Processes
from .fserror import FsError, MountError
from .inode import Inodes
from .log import Log
from .sysfile import SysFile

MAXWRITE = 8 * BSIZE  # bytes written per transaction (MAXOPBLOCKS leaves room for metadata)


class Superblock:
    def __init__(self, fields, device_blocks: int) -> None:
        (self.magic, self.size, self.nblocks, self.ninodes, self.nlog, self.logstart,
         self.inodestart, self.bmapstart) = fields
        if self.magic != FSMAGIC:
            raise MountError(f"bad magic {self.magic:#x} (expected {FSMAGIC:#x}): "
                             "not an rv6 file system")
        if not 0 < self.size <= device_blocks:
            raise MountError(f"superblock size {self.size} blocks does not fit the device "
                             f"({device_blocks} blocks)")
        if self.nlog != LOGSIZE:
            raise MountError(f"superblock log size {self.nlog}, this file system uses "
                             f"{LOGSIZE}")
        if self.logstart != SUPER_BLOCK + 1 or self.inodestart != self.logstart + 1 + self.nlog:
            raise MountError(f"log at {self.logstart} and inodes at {self.inodestart}: "
                             "regions out of order")
        if not 1 < self.ninodes <= 1 << 20:
            raise MountError(f"bad inode count {self.ninodes}")
        if self.bmapstart != self.inodestart + (self.ninodes + IPB - 1) // IPB:
            raise MountError(f"bitmap at {self.bmapstart} does not follow the inode blocks")
        self.datastart = self.bmapstart + (self.size + BPB - 1) // BPB
        if self.datastart >= self.size or self.nblocks != self.size - self.datastart:
            raise MountError(f"superblock sizes do not add up: data starts at "
                             f"{self.datastart}, size {self.size}, nblocks {self.nblocks}")


class FileSystem:
    def __init__(self, ctx, bdev, console) -> None:
        self._ctx = ctx
        self._console = console
        self._fslock = ctx.lock()
        self._cache = BufCache(bdev, NBUF)
        device_blocks = bdev.num_blocks()
        if device_blocks <= SUPER_BLOCK:
            raise MountError(f"device of {device_blocks} blocks is too small")
        buf = self._cache.bread(SUPER_BLOCK)
        fields = struct.unpack_from(SUPER_FORMAT, buf.data, 0)
        self._cache.brelse(buf)
        self.sb = Superblock(fields, device_blocks)
        self._log = Log(ctx, self._cache, self.sb.logstart, self.sb.nlog, self.sb.size,
                        self._fslock)
        self.recovered = self._log.recover()
        self._ino = Inodes(self._cache, self._log, self.sb)
        root = self._ino.iget(ROOTINO)
        if root.type != T_DIR:
            raise MountError(f"inode {ROOTINO} is not a directory (type {root.type})")
        self._ino.iput(root)
        self._dirs = Directories(self._ino)
        self._procs = Processes(self._ino)
        self._sys = SysFile(self._ino, self._dirs, self._procs)

    # -- plumbing -----------------------------------------------------------------------
    def _run(self, fn, *args, write: bool = True):
        """fn(*args) under the lock (and a transaction); FsError -> -errno.

        A transaction ends normally only when fn returned or failed with FsError (which
        undoes its half-done work). Any other exception is a bug, and the domain is about
        to panic: the transaction is abandoned, never committed, so a half-done operation
        can never reach the disk (the restarted domain mounts the last committed state)."""
        began = finished = False
        try:
            if write:
                self._log.begin_op()
                began = True
            with self._fslock:
                result = fn(*args)
            finished = True
            return result
        except FsError as err:
            finished = True
            return -err.errno
        finally:
            if began:
                if finished:
                    self._log.end_op()
                else:
                    self._log.abandon()

    def _tuple(self, fn, *args, width: int = 1, write: bool = True):
        got = self._run(fn, *args, write=write)
        if type(got) is int:
            return (got,) + (0,) * (width - 1) if width > 1 else (got, ())
        return got

    # -- Rv6FS ----------------------------------------------------------------------------
    def open(self, pid: int, path: str, mode: int) -> int:
        return self._run(self._sys.open, pid, path, mode)

    def close(self, pid: int, fd: int) -> int:
        def close():
            self._procs.close_fd(pid, fd)
            return 0
        return self._run(close)

    def read(self, pid: int, fd: int, buf, count: int):
        if count < 0 or count > BLOCK_SIZE:
            return (-EINVAL, buf)
        # One locked step checks the descriptor and reads an inode file into private bytes:
        # no view of the caller's buffer may live in a frame below a BDev call (a driver
        # crash's traceback can keep such frames alive, and a live view would stop the
        # buffer from moving back). Pipes and the console wait outside the lock.
        try:  # (the read-only case of _run, inline: this is the hot path)
            with self._fslock:
                got = self._sys.read_fd(pid, fd, count)
        except FsError as err:
            return (-err.errno, buf)
        if isinstance(got, bytes):
            if got:
                buf.write(got)
            return (len(got), buf)
        landed = np.zeros(count, dtype=np.uint8)
        if got.kind == PIPE:
            n = self._pipe_read(pid, got, landed, count)
        else:
            n = self._device_read(pid, got, landed, count)
        if n > 0:
            buf.write(landed[:n].tobytes())
        return (n, buf)

    def write(self, pid: int, fd: int, buf, count: int):
        if count < 0 or count > BLOCK_SIZE:
            return (-EINVAL, buf)
        got = self._run(self._sys.check_buffer_fd, pid, fd, False, write=False)
        if type(got) is int:
            return (got, buf)
        f = got
        src = buf.readonly()[:count].copy()
        if f.kind == INODE:
            n = 0
            while n < count:
                got = self._run(self._sys.write_inode, f, src[n:n + MAXWRITE])
                if got < 0:
                    return (got if n == 0 else n, buf)
                if got == 0:
                    break
                n += got
        elif f.kind == PIPE:
            n = self._pipe_write(pid, f, src)
        else:
            n = self._device_write(f, src)
        return (n, buf)

    def seek(self, pid: int, fd: int, offset: int, whence: int) -> int:
        return self._run(self._sys.seek, pid, fd, offset, whence, write=False)

    def fstat(self, pid: int, fd: int):
        return self._tuple(self._sys.fstat, pid, fd, width=6, write=False)

    def mknod(self, pid: int, path: str, major: int, minor: int) -> int:
        return self._run(self._sys.mknod, pid, path, major, minor)

    def dup(self, pid: int, fd: int) -> int:
        return self._run(self._sys.dup, pid, fd, write=False)

    def pipe(self, pid: int):
        return self._tuple(self._sys.pipe, pid, width=3, write=False)

    def link(self, pid: int, old: str, new: str) -> int:
        return self._run(self._sys.link, pid, old, new)

    def unlink(self, pid: int, path: str) -> int:
        return self._run(self._sys.unlink, pid, path)

    def mkdir(self, pid: int, path: str) -> int:
        return self._run(self._sys.mkdir, pid, path)

    def chdir(self, pid: int, path: str) -> int:
        return self._run(self._sys.chdir, pid, path)

    def symlink(self, pid: int, target: str, path: str) -> int:
        return self._run(self._sys.symlink, pid, target, path)

    def readlink(self, pid: int, path: str):
        got = self._run(self._sys.readlink, pid, path, write=False)
        return (got, "") if type(got) is int else got

    def readdir(self, pid: int, fd: int):
        return self._tuple(self._sys.readdir, pid, fd, write=False)

    def inherit(self, parent: int, child: int, fds: tuple) -> int:
        return self._run(self._sys.inherit, parent, child, fds, write=False)

    def exit(self, pid: int) -> int:
        def drop():
            self._procs.drop(pid)
            return 0
        return self._run(drop)

    def kill(self, pid: int) -> int:
        def mark():
            self._procs.proc(pid).killed = True
            return 0
        return self._run(mark, write=False)

    def log_state(self):
        with self._fslock:
            try:
                committed = self._log.read_head()
            except MountError:
                committed = (-1,)
            return (tuple(self._log.blocks), committed, self._cache.blocknos())

    def counters(self):
        c = self._cache
        return (self._log.commits, self._log.logged, c.hits, c.misses)

    # -- pipes and the console: waits outside the lock ----------------------------------
    def _killed(self, pid: int) -> bool:
        p = self._procs.procs.get(pid)
        return p is not None and p.killed

    def _pipe_read(self, pid: int, f, view, count: int) -> int:
        while True:
            with self._fslock:
                data = f.pipe.data
                if data or f.pipe.writers == 0 or count == 0:
                    n = min(count, len(data))
                    view[:n] = np.array(memoryview(bytes(data[:n])))
                    del data[:n]
                    return n
            if self._killed(pid):
                return -EINTR
            self._ctx.sleep(0.0005)

    def _pipe_write(self, pid: int, f, src) -> int:
        done = 0
        raw = src.tobytes()
        while done < len(raw):
            with self._fslock:
                if f.pipe.readers == 0:
                    return done if done else -EPIPE
                room = PIPESIZE - len(f.pipe.data)
                if room:
                    chunk = raw[done:done + room]
                    f.pipe.data.extend(chunk)
                    done += len(chunk)
                    continue
            if self._killed(pid):
                return done if done else -EINTR
            self._ctx.sleep(0.0005)
        return done

    def _device_read(self, pid: int, f, view, count: int) -> int:
        if f.kind != DEVICE or f.ip.major != CONSOLE:
            return -ENODEV
        while True:
            data = self._console.read(count, 0.005)
            if data:
                view[:len(data)] = np.array(memoryview(data))
                return len(data)
            if self._console.closed() or count == 0:
                return 0
            if self._killed(pid):
                return -EINTR
            self._ctx.sleep(0)

    def _device_write(self, f, src) -> int:
        if f.kind != DEVICE or f.ip.major != CONSOLE:
            return -ENODEV
        self._console.write(src.tobytes())
        return len(src)


def init(ctx, bdev, console) -> FileSystem:
    return FileSystem(ctx, bdev, console)
