"""The file system calls (xv6 sysfile.c), on behalf of one process.

Each function runs with the file system's lock held and, if it may write the disk,
inside a transaction (rv6fs.py takes both). Failures raise `FsError(errno)`; an
operation that fails half-way undoes what it did in the same transaction (an inode
allocated for a name that could not be linked is freed again), so every committed
transaction leaves a consistent file system.

Reads and writes of inode files are here; pipe and console I/O, which wait, are in
rv6fs.py.
"""

import numpy as np

from redleaf_lab.interfaces.rv6 import (
    CONSOLE,
    EBADF,
    EEXIST,
    EINVAL,
    EISDIR,
    ENOENT,
    ENOTDIR,
    ENOTEMPTY,
    EPERM,
    ESPIPE,
    MAXPATH,
    NOFILE,
    O_APPEND,
    O_CREATE,
    O_NOFOLLOW,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
    T_DEVICE,
    T_DIR,
    T_FILE,
    T_SYMLINK,
)

from .file import DEVICE, INODE, PIPE, Pipe
from .fserror import FsError

MODE_BITS = O_RDONLY | O_WRONLY | O_RDWR | O_CREATE | O_TRUNC | O_NOFOLLOW | O_APPEND


class SysFile:
    def __init__(self, inodes, dirs, procs) -> None:
        self.ino = inodes
        self.dirs = dirs
        self.procs = procs

    def _cwd(self, pid: int):
        return self.procs.proc(pid).cwd

    # -- creating names -------------------------------------------------------------------
    def create(self, pid: int, path: str, itype: int, major: int = 0, minor: int = 0,
               follow: bool = True):
        """The inode at `path`, created if missing (an existing file is returned only
        when creating a plain file, as open(O_CREATE) wants)."""
        ino, dirs = self.ino, self.dirs
        dp, name = dirs.resolve_parent(path, self._cwd(pid))
        try:
            inum, _off = dirs.lookup(dp, name)
            if inum:
                ip = ino.iget(inum)
                if ip.type == T_SYMLINK and itype == T_FILE and follow:
                    ino.iput(ip)
                    return dirs.resolve(path, self._cwd(pid), True)
                if itype == T_FILE and ip.type in (T_FILE, T_DEVICE):
                    return ip
                ino.iput(ip)
                raise FsError(EEXIST, f"{name} exists")
            ip = ino.ialloc(itype, major, minor)
            ip.nlink = 1
            ino.iupdate(ip)
            try:
                if itype == T_DIR:
                    dirs.link(ip, ".", ip.inum)
                    dirs.link(ip, "..", dp.inum)
                dirs.link(dp, name, ip.inum)
            except FsError:
                ip.nlink = 0  # undo: iput frees the inode and its blocks
                ino.iput(ip)
                raise
            if itype == T_DIR:
                dp.nlink += 1  # for the new directory's ".."
                ino.iupdate(dp)
            return ip
        finally:
            ino.iput(dp)

    # -- calls ----------------------------------------------------------------------------
    def open(self, pid: int, path: str, mode: int) -> int:
        if type(mode) is not int or mode & ~MODE_BITS or mode & 3 == 3:
            raise FsError(EINVAL, f"bad open mode {mode!r}")
        follow = not mode & O_NOFOLLOW
        if mode & O_CREATE:
            ip = self.create(pid, path, T_FILE, follow=follow)
        else:
            ip = self.dirs.resolve(path, self._cwd(pid), follow)
        try:
            access = mode & 3
            readable = access in (O_RDONLY, O_RDWR)
            writable = access in (O_WRONLY, O_RDWR)
            if ip.type == T_DIR and (writable or mode & O_TRUNC):
                raise FsError(EISDIR, "a directory opens read-only")
            if ip.type == T_SYMLINK and writable:
                raise FsError(EINVAL, "a symbolic link opened with O_NOFOLLOW is read-only")
            kind = DEVICE if ip.type == T_DEVICE else INODE
            f = self.procs.filealloc(kind, readable, writable)
            try:
                fd = self.procs.fdalloc(pid, f)
            except FsError:
                f.ref = 1
                self.procs.fileclose(f)
                raise
        except FsError:
            self.ino.iput(ip)
            raise
        f.ip = ip
        f.append = bool(mode & O_APPEND)
        if mode & O_TRUNC and ip.type == T_FILE and writable:
            self.ino.itrunc(ip)
        return fd

    def read_fd(self, pid: int, fd: int, count: int):
        """Bytes read from an inode file, or the File of a pipe or device (to wait on)."""
        f = self.check_buffer_fd(pid, fd, True)
        if f.kind != INODE:
            return f
        if f.ip is None:
            raise FsError(EBADF, "the file was closed")
        if f.ip.type == T_DIR:
            raise FsError(EISDIR, "read of a directory: use readdir")
        data = self.ino.read_bytes(f.ip, f.off, count)
        f.advance(len(data))
        return data

    def write_inode(self, f, src) -> int:
        if f.ip is None:
            raise FsError(EBADF, "the file was closed")
        if f.append:
            f.off = f.ip.size
        n = self.ino.writei(f.ip, src, f.off)
        f.advance(n)
        return n

    def seek(self, pid: int, fd: int, offset: int, whence: int) -> int:
        f = self.procs.fd(pid, fd)
        if f.kind != INODE:
            raise FsError(ESPIPE, "seek on a pipe or device")
        base = {SEEK_SET: 0, SEEK_CUR: f.off, SEEK_END: f.ip.size}.get(whence)
        if base is None or base + offset < 0:
            raise FsError(EINVAL, "bad whence or a negative offset")
        f.off = base + offset
        return f.off

    def fstat(self, pid: int, fd: int) -> tuple:
        f = self.procs.fd(pid, fd)
        if f.kind == PIPE:
            return (0, 0, 0, 0, 1, len(f.pipe.data))
        ip = f.ip
        return (0, 1, ip.inum, ip.type, ip.nlink, ip.size)

    def mknod(self, pid: int, path: str, major: int, minor: int) -> int:
        if major != CONSOLE or not 0 <= minor < 256:
            raise FsError(EINVAL, f"no device {major}/{minor}")
        self.ino.iput(self.create(pid, path, T_DEVICE, major, minor))
        return 0

    def dup(self, pid: int, fd: int) -> int:
        f = self.procs.fd(pid, fd)
        newfd = self.procs.fdalloc(pid, f)
        self.procs.filedup(f)
        return newfd

    def pipe(self, pid: int) -> tuple:
        pipe = Pipe()
        rf = self.procs.filealloc(PIPE, True, False)
        rf.pipe = pipe
        try:
            wf = self.procs.filealloc(PIPE, False, True)
        except FsError:
            self.procs.fileclose(rf)
            raise
        wf.pipe = pipe
        try:
            rfd = self.procs.fdalloc(pid, rf)
        except FsError:
            self.procs.fileclose(rf)
            self.procs.fileclose(wf)
            raise
        try:
            wfd = self.procs.fdalloc(pid, wf)
        except FsError:
            self.procs.close_fd(pid, rfd)
            self.procs.fileclose(wf)
            raise
        return (0, rfd, wfd)

    def link(self, pid: int, old: str, new: str) -> int:
        ino = self.ino
        ip = self.dirs.resolve(old, self._cwd(pid), False)
        try:
            if ip.type == T_DIR:
                raise FsError(EPERM, "hard links to directories are not allowed")
            dp, name = self.dirs.resolve_parent(new, self._cwd(pid))
            try:
                self.dirs.link(dp, name, ip.inum)
            finally:
                ino.iput(dp)
            ip.nlink += 1
            ino.iupdate(ip)
        finally:
            ino.iput(ip)
        return 0

    def unlink(self, pid: int, path: str) -> int:
        ino, dirs = self.ino, self.dirs
        dp, name = dirs.resolve_parent(path, self._cwd(pid))
        try:
            inum, off = dirs.lookup(dp, name)
            if not inum:
                raise FsError(ENOENT, f"{name} not found")
            ip = ino.iget(inum)
            try:
                if ip.type == T_DIR and not dirs.is_empty(ip):
                    raise FsError(ENOTEMPTY, f"{name} is not empty")
                dirs.unlink_entry(dp, off)
                if ip.type == T_DIR:
                    dp.nlink -= 1  # the child's ".." named dp
                    ino.iupdate(dp)
                ip.nlink -= 1
                ino.iupdate(ip)
            finally:
                ino.iput(ip)
        finally:
            ino.iput(dp)
        return 0

    def mkdir(self, pid: int, path: str) -> int:
        self.ino.iput(self.create(pid, path, T_DIR))
        return 0

    def chdir(self, pid: int, path: str) -> int:
        p = self.procs.proc(pid)
        ip = self.dirs.resolve(path, p.cwd, True)
        if ip.type != T_DIR:
            self.ino.iput(ip)
            raise FsError(ENOTDIR, f"{path} is not a directory")
        old = p.cwd
        p.cwd = ip
        self.ino.iput(old)
        return 0

    def symlink(self, pid: int, target: str, path: str) -> int:
        raw = target.encode("utf-8")
        if not raw:
            raise FsError(ENOENT, "empty symlink target")
        if len(raw) > MAXPATH:
            raise FsError(EINVAL, "symlink target too long")
        ip = self.create(pid, path, T_SYMLINK)
        try:
            self.ino.writei(ip, np.array(memoryview(raw)), 0)
        finally:
            self.ino.iput(ip)
        return 0

    def readlink(self, pid: int, path: str) -> tuple:
        ip = self.dirs.resolve(path, self._cwd(pid), False)
        try:
            if ip.type != T_SYMLINK:
                raise FsError(EINVAL, f"{path} is not a symbolic link")
            return (0, self.ino.read_text(ip))
        finally:
            self.ino.iput(ip)

    def readdir(self, pid: int, fd: int) -> tuple:
        f = self.procs.fd(pid, fd)
        if f.kind != INODE or f.ip.type != T_DIR:
            raise FsError(ENOTDIR, f"descriptor {fd} is not a directory")
        return (0, tuple((inum, name) for _off, inum, name in self.dirs.entries(f.ip)))

    def inherit(self, parent: int, child: int, fds: tuple) -> int:
        if child in self.procs.procs or child == parent:
            raise FsError(EEXIST, f"process {child} has a descriptor table")
        if len(fds) > NOFILE:
            raise FsError(EINVAL, "too many descriptors")
        files = [self.procs.fd(parent, fd) if fd >= 0 else None for fd in fds]
        p = self.procs.proc(child)  # cwd: the root
        if parent in self.procs.procs:
            old = p.cwd
            p.cwd = self.ino.idup(self.procs.procs[parent].cwd)
            self.ino.iput(old)
        for i, f in enumerate(files):
            if f is not None:
                p.ofile[i] = self.procs.filedup(f)
        return 0

    def check_buffer_fd(self, pid: int, fd: int, readable: bool):
        f = self.procs.fd(pid, fd)
        if (readable and not f.readable) or (not readable and not f.writable):
            raise FsError(EBADF, f"descriptor {fd} is not open for "
                                 f"{'reading' if readable else 'writing'}")
        return f
