"""Directories and path names (xv6 fs.c, upper half), with symbolic links.

A directory is a file of 64-byte entries (inum u32, name[60]); inum 0 marks a free
slot. `lookup(dp, name)` finds an entry, `link(dp, name, inum)` adds one (refusing a
duplicate), `unlink_entry(dp, off)` clears one, `is_empty(dp)` ignores "." and "..".

`resolve(path, cwd, follow)` walks a path from the root ("/...") or from `cwd`. A
symbolic link met in the middle of a path is always followed; the last component is
followed unless `follow` is False (O_NOFOLLOW, unlink, readlink). More than MAXSYMLINKS
links in one walk is ELOOP (6.1810's symlink lab uses 10). `resolve_parent(path, cwd)`
returns the directory that holds the last component and that component's name.

Errors: ENOENT (missing, or an empty path), ENOTDIR (a component is not a directory),
ENAMETOOLONG (a component over DIRSIZ bytes, a path over MAXPATH), EINVAL (a NUL byte).

Locking: callers hold the file system's lock. Returned inodes carry one reference the
caller must `iput`.
"""

import struct

import numpy as np

from redleaf_lab.interfaces.rv6 import (
    DIRENT_FORMAT,
    DIRENT_SIZE,
    DIRSIZ,
    EEXIST,
    EINVAL,
    ELOOP,
    ENAMETOOLONG,
    ENOENT,
    ENOTDIR,
    MAXPATH,
    MAXSYMLINKS,
    ROOTINO,
    T_DIR,
    T_SYMLINK,
)

from .fserror import FsError


def encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > DIRSIZ:
        raise FsError(ENAMETOOLONG, f"name longer than {DIRSIZ} bytes")
    if b"\0" in raw:
        raise FsError(EINVAL, "NUL byte in a name")
    return raw


def check_path(path: str) -> list:
    if len(path.encode("utf-8")) > MAXPATH:
        raise FsError(ENAMETOOLONG, "path too long")
    if not path:
        raise FsError(ENOENT, "empty path")
    parts = [p for p in path.split("/") if p]
    for p in parts:
        encode_name(p)
    return parts


class Directories:
    def __init__(self, inodes) -> None:
        self._inodes = inodes

    def entries(self, dp):
        """(offset, inum, name) of every used entry."""
        raw = self._inodes.read_bytes(dp, 0, dp.size)
        found = []
        for off in range(0, len(raw) - DIRENT_SIZE + 1, DIRENT_SIZE):
            inum, name = struct.unpack_from(DIRENT_FORMAT, raw, off)
            if inum:
                found.append((off, inum, name.rstrip(b"\0").decode("utf-8", "replace")))
        return found

    def lookup(self, dp, name: str):
        """(inum, offset) of `name` in directory dp, or (0, -1)."""
        want = encode_name(name)
        raw = self._inodes.read_bytes(dp, 0, dp.size)
        for off in range(0, len(raw) - DIRENT_SIZE + 1, DIRENT_SIZE):
            inum, entry = struct.unpack_from(DIRENT_FORMAT, raw, off)
            if inum and entry.rstrip(b"\0") == want:
                return inum, off
        return 0, -1

    def link(self, dp, name: str, inum: int) -> None:
        raw = encode_name(name)
        if self.lookup(dp, name)[0]:
            raise FsError(EEXIST, f"{name} exists")
        slot = dp.size
        contents = self._inodes.read_bytes(dp, 0, dp.size)
        for off in range(0, len(contents) - DIRENT_SIZE + 1, DIRENT_SIZE):
            if struct.unpack_from("<I", contents, off)[0] == 0:
                slot = off
                break
        entry = np.zeros(DIRENT_SIZE, dtype=np.uint8)
        struct.pack_into(DIRENT_FORMAT, entry, 0, inum, raw)
        if self._inodes.writei(dp, entry, slot) != DIRENT_SIZE:
            raise RuntimeError("dirlink: short write")

    def unlink_entry(self, dp, off: int) -> None:
        zero = np.zeros(DIRENT_SIZE, dtype=np.uint8)
        if self._inodes.writei(dp, zero, off) != DIRENT_SIZE:
            raise RuntimeError("unlink: short write")

    def is_empty(self, dp) -> bool:
        return all(name in (".", "..") for _off, _inum, name in self.entries(dp))

    # -- path walks ---------------------------------------------------------------------
    def resolve(self, path: str, cwd, follow: bool = True, depth: int = 0):
        parts = check_path(path)
        ino = self._inodes
        ip = ino.iget(ROOTINO) if path.startswith("/") else ino.idup(cwd)
        for i, name in enumerate(parts):
            if ip.type != T_DIR:
                ino.iput(ip)
                raise FsError(ENOTDIR, f"{name}: a component is not a directory")
            inum, _off = self.lookup(ip, name)
            if inum == 0:
                ino.iput(ip)
                raise FsError(ENOENT, f"{name} not found")
            nxt = ino.iget(inum)
            last = i == len(parts) - 1
            if nxt.type == T_SYMLINK and (follow or not last):
                target = ino.read_text(nxt)
                ino.iput(nxt)
                if depth + 1 > MAXSYMLINKS:
                    ino.iput(ip)
                    raise FsError(ELOOP, "too many symbolic links")
                rest = "/".join(parts[i + 1:])
                joined = target + ("/" + rest if rest else "")
                try:
                    return self.resolve(joined, ip, follow, depth + 1)
                finally:
                    ino.iput(ip)
            ino.iput(ip)
            ip = nxt
        return ip

    def resolve_parent(self, path: str, cwd):
        """(directory inode, last name); the last component must not be '.' or '..'."""
        parts = check_path(path)
        if not parts:
            raise FsError(EEXIST, "the root directory")
        name = parts[-1]
        if name in (".", ".."):
            raise FsError(EINVAL, f"{name} cannot be created or removed")
        head = "/".join(parts[:-1])
        if path.startswith("/"):
            head = "/" + head
        elif not head:
            head = "."
        dp = self.resolve(head, cwd, True)
        if dp.type != T_DIR:
            self._inodes.iput(dp)
            raise FsError(ENOTDIR, "parent is not a directory")
        return dp, name
