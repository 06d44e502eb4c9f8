"""The rv6 on-disk format seen from trusted code: geometry, superblock, dinodes, dirents.

mkfs (mkfs.py) writes it and fsck (fsck.py) checks it; the fs domain (domains/rv6fs)
reads the same format with the constants of `redleaf_lab.interfaces.rv6`. An image is a
numpy array of shape (blocks, BSIZE), uint8: the unit every helper here works on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..interfaces.rv6 import (
    BPB,
    BSIZE,
    DINODE_FORMAT,
    DINODE_SIZE,
    DIRENT_FORMAT,
    DIRENT_SIZE,
    FSMAGIC,
    IPB,
    LOGHEADER_FORMAT,
    LOGSIZE,
    SUPER_BLOCK,
    SUPER_FORMAT,
)

Image = np.ndarray  # (blocks, BSIZE) uint8


@dataclass
class Geometry:
    size: int
    ninodes: int
    nlog: int = LOGSIZE
    logstart: int = SUPER_BLOCK + 1
    magic: int = FSMAGIC

    @property
    def inodestart(self) -> int:
        return self.logstart + 1 + self.nlog

    @property
    def bmapstart(self) -> int:
        return self.inodestart + (self.ninodes + IPB - 1) // IPB

    @property
    def datastart(self) -> int:
        return self.bmapstart + (self.size + BPB - 1) // BPB

    @property
    def nblocks(self) -> int:
        return self.size - self.datastart

    def pack(self) -> bytes:
        return struct.pack(SUPER_FORMAT, self.magic, self.size, self.nblocks, self.ninodes,
                           self.nlog, self.logstart, self.inodestart, self.bmapstart)


@dataclass
class Superblock:
    magic: int
    size: int
    nblocks: int
    ninodes: int
    nlog: int
    logstart: int
    inodestart: int
    bmapstart: int

    @classmethod
    def read(cls, image: Image) -> Superblock:
        return cls(*struct.unpack_from(SUPER_FORMAT, image[SUPER_BLOCK], 0))


@dataclass
class DInode:
    inum: int
    type: int
    major: int
    minor: int
    nlink: int
    size: int
    addrs: list[int]


def read_dinode(image: Image, inodestart: int, inum: int) -> DInode:
    block = image[inodestart + inum // IPB]
    f = struct.unpack_from(DINODE_FORMAT, block, (inum % IPB) * DINODE_SIZE)
    return DInode(inum, f[0], f[1], f[2], f[3], f[4], list(f[5:]))


def write_dinode(image: Image, inodestart: int, ino: DInode) -> None:
    block = image[inodestart + ino.inum // IPB]
    off = (ino.inum % IPB) * DINODE_SIZE
    block[off:off + DINODE_SIZE] = 0
    struct.pack_into(DINODE_FORMAT, block, off, ino.type, ino.major, ino.minor, ino.nlink,
                     ino.size, *ino.addrs)


def read_log_header(image: Image, logstart: int) -> tuple[int, tuple[int, ...]]:
    fields = struct.unpack_from(LOGHEADER_FORMAT, image[logstart], 0)
    return fields[0], tuple(fields[1:])


def write_log_header(image: Image, logstart: int, blocks: list[int]) -> None:
    padded = list(blocks) + [0] * (LOGSIZE - len(blocks))
    struct.pack_into(LOGHEADER_FORMAT, image[logstart], 0, len(blocks), *padded)


def dirents(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, inum, raw name) of every used entry of a directory's contents."""
    found = []
    for off in range(0, len(data) - DIRENT_SIZE + 1, DIRENT_SIZE):
        inum, name = struct.unpack_from(DIRENT_FORMAT, data, off)
        if inum:
            found.append((off, inum, name.rstrip(b"\0")))
    return found


def bitmap_bit(image: Image, bmapstart: int, block: int) -> bool:
    return bool(image[bmapstart + block // BPB][(block % BPB) // 8] >> (block % 8) & 1)


def empty_image(blocks: int) -> Image:
    return np.zeros((blocks, BSIZE), dtype=np.uint8)
