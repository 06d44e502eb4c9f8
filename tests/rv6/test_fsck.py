"""fsck: a fresh image is clean, and every kind of corruption built here on purpose is
named (the verifier can fail)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from redleaf_lab.interfaces.rv6 import BPB, DINODE_SIZE, IPB, NDIRECT, T_FILE
from redleaf_lab.rv6img import default_files, fsck, mkfs
from redleaf_lab.rv6img.layout import (
    Superblock,
    read_dinode,
    write_dinode,
    write_log_header,
)

FILES = {"/a": b"x" * 10000, "/dir/b": b"y" * 100, "/dir/sub/c": b"z"}


@pytest.fixture
def image() -> np.ndarray:
    return mkfs(512, FILES)


def sb(image):
    return Superblock.read(image)


def test_fresh_images_are_clean(image):
    assert fsck(image) == []
    assert fsck(mkfs(1024, default_files())) == []


def inode_of(image, path_inum):
    return read_dinode(image, sb(image).inodestart, path_inum)


def find_file(image, size):
    s = sb(image)
    for inum in range(1, s.ninodes):
        ino = read_dinode(image, s.inodestart, inum)
        if ino.type == T_FILE and ino.size == size:
            return ino
    raise AssertionError("no such file")


def set_bit(image, block, value):
    s = sb(image)
    row = image[s.bmapstart + block // BPB]
    byte, bit = (block % BPB) // 8, block % 8
    old = int(row[byte])
    row[byte] = (old | (1 << bit)) if value else (old & ~(1 << bit) & 0xFF)


def corrupt(image, what):
    s = sb(image)
    a = find_file(image, 10000)
    if what == "magic":
        struct.pack_into("<I", image[1], 0, 0x1234)
    elif what == "leaked block":
        set_bit(image, s.size - 1, True)
    elif what == "free block in use":
        set_bit(image, a.addrs[0], False)
    elif what == "block used twice":
        b = find_file(image, 100)
        b.addrs[0] = a.addrs[0]
        write_dinode(image, s.inodestart, b)
    elif what == "link count":
        a.nlink = 3
        write_dinode(image, s.inodestart, a)
    elif what == "unreachable inode":
        write_dinode(image, s.inodestart, type(a)(s.ninodes - 1, T_FILE, 0, 0, 1, 0, [0] * 14))
    elif what == "entry names a free inode":
        row = image[s.inodestart + a.inum // IPB]
        row[(a.inum % IPB) * DINODE_SIZE:(a.inum % IPB) * DINODE_SIZE + 2] = 0
    elif what == "block outside the data area":
        a.addrs[1] = 3
        write_dinode(image, s.inodestart, a)
    elif what == "block beyond size":
        a.size = 10
        write_dinode(image, s.inodestart, a)
    elif what == "bad dotdot":
        root = read_dinode(image, s.inodestart, 1)
        struct.pack_into("<I", image[root.addrs[0]], 64, 5)  # ".." of / names inode 5
    elif what == "log too big":
        struct.pack_into("<I", image[s.logstart], 0, 1000)
    elif what == "log not installed":
        write_log_header(image, s.logstart, [a.addrs[0]])
    elif what == "directory size":
        root = read_dinode(image, s.inodestart, 1)
        root.size += 3
        write_dinode(image, s.inodestart, root)
    elif what == "unknown type":
        a.type = 9
        write_dinode(image, s.inodestart, a)
    else:
        raise AssertionError(what)


CASES = {
    "magic": "bad magic",
    "leaked block": "leaked",
    "free block in use": "in use but marked free",
    "block used twice": "used twice",
    "link count": "link count 3",
    "unreachable inode": "unreachable",
    "entry names a free inode": "free or invalid",
    "block outside the data area": "outside the data area",
    "block beyond size": "beyond its size",
    "bad dotdot": "'..' names 5",
    "log too big": "claims 1000 blocks",
    "log not installed": "uninstalled",
    "directory size": "not a multiple",
    "unknown type": "unknown type 9",
}


@pytest.mark.parametrize("what", sorted(CASES))
def test_each_corruption_is_named(image, what):
    corrupt(image, what)
    problems = fsck(image)
    assert any(CASES[what] in p for p in problems), problems


def test_wrong_shapes_are_reported_not_raised():
    assert fsck(np.zeros((2, 4096), np.uint8))
    assert fsck(np.zeros(4096, np.uint8))
    assert "bad magic" in fsck(np.zeros((64, 4096), np.uint8))[0]


def test_doubly_indirect_files_check_clean():
    big = bytes(range(256)) * 16 * (NDIRECT + 1024 + 10)  # into the doubly-indirect range
    assert fsck(mkfs(2048, {"/big": big})) == []
