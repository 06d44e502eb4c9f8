"""mkfs: build an rv6 file-system image (xv6 mkfs.c, for 4 KiB blocks and doubly-indirect files).

`mkfs(blocks, files, ninodes)` returns an image (numpy (blocks, BSIZE) uint8) with a
superblock, an empty log, the root directory and `files` ({"/path": bytes}; parent
directories are created as needed). `default_files()` is what `redleaf-lab mkfs` puts on
a fresh image: the user programs (domains/rv6/programs/*.py, at the root as xv6 does),
a README and a few test files. `write_image`/`read_image` store an image in a file.

The image fits any BDev of at least `blocks` blocks: membdev, the NVMe model, a real NVMe
namespace over VFIO (4 KiB blocks; `redleaf_lab.rv6img.system` copies it onto the device).
"""

from __future__ import annotations

import struct
from importlib import resources
from pathlib import Path

import numpy as np

from ..interfaces.rv6 import (
    BSIZE,
    DIRENT_FORMAT,
    DIRENT_SIZE,
    DIRSIZ,
    MAXFILE,
    NDIRECT,
    NINDIRECT,
    ROOTINO,
    T_DIR,
    T_FILE,
)
from .layout import DInode, Geometry, Image, empty_image, write_dinode

DEFAULT_BLOCKS = 4096  # 16 MiB
DEFAULT_INODES = 256


class _Builder:
    def __init__(self, blocks: int, ninodes: int) -> None:
        self.geo = Geometry(size=blocks, ninodes=ninodes)
        if self.geo.datastart + 2 > blocks:
            raise ValueError(f"an image of {blocks} blocks is too small for {ninodes} inodes")
        self.image = empty_image(blocks)
        self.image[1, :len(self.geo.pack())] = np.frombuffer(self.geo.pack(), np.uint8)
        self.next_block = self.geo.datastart
        self.next_inum = ROOTINO
        self.inodes: dict[int, DInode] = {}
        self.names: dict[str, int] = {}

    def balloc(self) -> int:
        if self.next_block >= self.geo.size:
            raise ValueError(f"image full: {self.geo.size} blocks are not enough")
        b = self.next_block
        self.next_block += 1
        return b

    def ialloc(self, itype: int) -> DInode:
        if self.next_inum >= self.geo.ninodes:
            raise ValueError(f"out of inodes ({self.geo.ninodes})")
        ino = DInode(self.next_inum, itype, 0, 0, 1, 0, [0] * (NDIRECT + 2))
        self.inodes[ino.inum] = ino
        self.next_inum += 1
        return ino

    def _indirect(self, block: int, index: int) -> int:
        """Entry `index` of indirect block `block`, allocated on first use."""
        addr = struct.unpack_from("<I", self.image[block], index * 4)[0]
        if addr == 0:
            addr = self.balloc()
            struct.pack_into("<I", self.image[block], index * 4, addr)
        return int(addr)

    def bmap(self, ino: DInode, bn: int) -> int:
        if bn < NDIRECT:
            if not ino.addrs[bn]:
                ino.addrs[bn] = self.balloc()
            return ino.addrs[bn]
        bn -= NDIRECT
        if bn < NINDIRECT:
            if not ino.addrs[NDIRECT]:
                ino.addrs[NDIRECT] = self.balloc()
            return self._indirect(ino.addrs[NDIRECT], bn)
        bn -= NINDIRECT
        if bn >= NINDIRECT * NINDIRECT:
            raise ValueError("file too large")
        if not ino.addrs[NDIRECT + 1]:
            ino.addrs[NDIRECT + 1] = self.balloc()
        mid = self._indirect(ino.addrs[NDIRECT + 1], bn // NINDIRECT)
        return self._indirect(mid, bn % NINDIRECT)

    def append(self, ino: DInode, data: bytes) -> None:
        if ino.size + len(data) > MAXFILE * BSIZE:
            raise ValueError("file too large")
        off = 0
        while off < len(data):
            bn, boff = divmod(ino.size, BSIZE)
            m = min(len(data) - off, BSIZE - boff)
            block = self.bmap(ino, bn)
            self.image[block, boff:boff + m] = np.frombuffer(data[off:off + m], np.uint8)
            ino.size += m
            off += m

    def dirent(self, dir_ino: DInode, name: str, inum: int) -> None:
        raw = name.encode()
        if not raw or len(raw) > DIRSIZ or b"/" in raw:
            raise ValueError(f"bad file name {name!r}")
        self.append(dir_ino, struct.pack(DIRENT_FORMAT, inum, raw))

    def mkdir(self, parent: DInode | None) -> DInode:
        d = self.ialloc(T_DIR)
        up = parent or d
        self.dirent(d, ".", d.inum)
        self.dirent(d, "..", up.inum)
        up.nlink += 1 if parent else 0
        return d

    def lookup_dir(self, path: str) -> DInode:
        parts = [p for p in path.split("/") if p]
        cur = self.inodes[ROOTINO]
        for i, _name in enumerate(parts):
            key = "/" + "/".join(parts[: i + 1])
            if key not in self.names:
                d = self.mkdir(cur)
                self.dirent(cur, parts[i], d.inum)
                self.names[key] = d.inum
            cur = self.inodes[self.names[key]]
            if cur.type != T_DIR:
                raise ValueError(f"{key} is a file, not a directory")
        return cur

    def add_file(self, path: str, data: bytes) -> None:
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise ValueError(f"bad path {path!r}")
        parent = self.lookup_dir("/".join(parts[:-1]))
        key = "/" + "/".join(parts)
        if key in self.names:
            raise ValueError(f"{key} given twice")
        ino = self.ialloc(T_FILE)
        self.dirent(parent, parts[-1], ino.inum)
        self.names[key] = ino.inum
        self.append(ino, data)

    def finish(self) -> Image:
        for ino in self.inodes.values():
            write_dinode(self.image, self.geo.inodestart, ino)
        used = self.next_block  # blocks 0 .. next_block-1 are in use
        bits = np.zeros(((self.geo.size + 7) // 8 + BSIZE) // BSIZE * BSIZE, np.uint8)
        full, rest = divmod(used, 8)
        bits[:full] = 0xFF
        if rest:
            bits[full] = (1 << rest) - 1
        nbmap = self.geo.datastart - self.geo.bmapstart
        flat = bits[: nbmap * BSIZE] if len(bits) >= nbmap * BSIZE else np.pad(
            bits, (0, nbmap * BSIZE - len(bits)))
        self.image[self.geo.bmapstart:self.geo.datastart] = flat.reshape(nbmap, BSIZE)
        return self.image


def mkfs(blocks: int = DEFAULT_BLOCKS, files: dict[str, bytes] | None = None,
         ninodes: int = DEFAULT_INODES) -> Image:
    """A fresh image of `blocks` 4 KiB blocks holding `files`."""
    b = _Builder(blocks, ninodes)
    root = b.mkdir(None)
    assert root.inum == ROOTINO
    for path, data in sorted((files or {}).items()):
        b.add_file(path, data)
    return b.finish()


def program_sources() -> dict[str, bytes]:
    """The user programs shipped with Rv6: {"/name": source}."""
    folder = resources.files("redleaf_lab.domains").joinpath("rv6").joinpath("programs")
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py") and not entry.name.startswith("_"):
            out["/" + entry.name[:-3]] = entry.read_bytes()
    return out


README = b"""Rv6: RedLeaf's POSIX personality in RedLeaf Lab.
Every program here is a domain loaded from this file system: try ls, cat README,
echo hi > f, cat < f | wc, usertests.
"""


def default_files() -> dict[str, bytes]:
    files = program_sources()
    files["/README"] = README
    files["/tests/hello.txt"] = b"hello, rv6\n"
    files["/tests/numbers.txt"] = "".join(f"{i}\n" for i in range(1, 101)).encode()
    return files


def write_image(image: Image, path: str | Path) -> None:
    Path(path).write_bytes(image.tobytes())


def read_image(path: str | Path) -> Image:
    raw = Path(path).read_bytes()
    if not raw or len(raw) % BSIZE:
        raise ValueError(f"{path}: {len(raw)} bytes is not a whole number of {BSIZE}-byte blocks")
    return np.frombuffer(raw, np.uint8).reshape(-1, BSIZE).copy()


__all__ = ["DEFAULT_BLOCKS", "DIRENT_SIZE", "default_files", "mkfs", "program_sources",
           "read_image", "write_image"]
