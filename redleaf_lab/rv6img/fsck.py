"""fsck: check every invariant of an rv6 image and name each violation.

`fsck(image)` returns a list of violations (empty: clean). It checks:

* the superblock: magic, sizes that fit the image, regions in order;
* the log: the header names at most LOGSIZE blocks inside the file system and is empty
  (a non-empty header is a committed transaction not installed yet: mount to recover);
* every allocated inode: a known type, a size within MAXFILE, every block number inside
  the data area, no block beyond the size, devices and symlinks well formed;
* no block used twice (by two files, or twice in one file, or as an indirect block);
* the bitmap agrees with the reachable blocks: nothing in use is free, nothing free is
  marked (a leaked block);
* directories: sizes a multiple of the entry size, "." names the directory itself and
  ".." its parent, no entry names a free or out-of-range inode, names are non-empty
  without "/", no directory has two names;
* every allocated inode is reachable from the root; every link count equals the number
  of entries (other than ".") that name the inode.

It only reads the image. The broken images in tests/rv6/test_fsck.py show each check can fail.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..interfaces.rv6 import (
    BPB,
    BSIZE,
    CONSOLE,
    DIRENT_SIZE,
    FSMAGIC,
    IPB,
    LOGSIZE,
    MAXFILE,
    MAXPATH,
    NDIRECT,
    NINDIRECT,
    ROOTINO,
    SUPER_BLOCK,
    T_DEVICE,
    T_DIR,
    T_FILE,
    T_SYMLINK,
)
from .layout import DInode, Image, Superblock, bitmap_bit, dirents, read_dinode, read_log_header


def _check_super(image: Image, sb: Superblock) -> list[str]:
    bad = []
    if sb.magic != FSMAGIC:
        return [f"superblock: bad magic {sb.magic:#x} (expected {FSMAGIC:#x})"]
    if not 0 < sb.size <= len(image):
        bad.append(f"superblock: size {sb.size} does not fit the image ({len(image)} blocks)")
    if sb.nlog != LOGSIZE:
        bad.append(f"superblock: log size {sb.nlog}, expected {LOGSIZE}")
    if sb.logstart != SUPER_BLOCK + 1 or sb.inodestart != sb.logstart + 1 + sb.nlog:
        bad.append(f"superblock: log at {sb.logstart}, inodes at {sb.inodestart}: out of order")
    if not 1 < sb.ninodes <= 1 << 20:
        bad.append(f"superblock: bad inode count {sb.ninodes}")
    elif sb.bmapstart != sb.inodestart + (sb.ninodes + IPB - 1) // IPB:
        bad.append(f"superblock: bitmap at {sb.bmapstart} does not follow the inodes")
    datastart = sb.bmapstart + (sb.size + BPB - 1) // BPB
    if datastart >= sb.size or sb.nblocks != sb.size - datastart:
        bad.append(f"superblock: nblocks {sb.nblocks} does not match size {sb.size} "
                   f"with data starting at {datastart}")
    return bad


def _file_blocks(image: Image, ino: DInode, datastart: int, size: int,
                 bad: list[str]) -> list[tuple[int, int]]:
    """(block, file block index or -1 for an indirect block) of every block of a file."""
    out: list[tuple[int, int]] = []
    where = f"inode {ino.inum}"

    def valid(b: int, what: str) -> bool:
        if not datastart <= b < size:
            bad.append(f"{where}: {what} names block {b}, outside the data area "
                       f"({datastart}..{size - 1})")
            return False
        return True

    for i in range(NDIRECT):
        if ino.addrs[i] and valid(ino.addrs[i], f"direct address {i}"):
            out.append((ino.addrs[i], i))
    single = ino.addrs[NDIRECT]
    if single and valid(single, "the singly-indirect address"):
        out.append((single, -1))
        addrs = np.frombuffer(image[single].tobytes(), "<u4")
        for j in np.flatnonzero(addrs):
            if valid(int(addrs[j]), f"indirect entry {j}"):
                out.append((int(addrs[j]), NDIRECT + int(j)))
    double = ino.addrs[NDIRECT + 1]
    if double and valid(double, "the doubly-indirect address"):
        out.append((double, -1))
        top = np.frombuffer(image[double].tobytes(), "<u4")
        for j in np.flatnonzero(top):
            mid = int(top[j])
            if not valid(mid, f"doubly-indirect entry {j}"):
                continue
            out.append((mid, -1))
            addrs = np.frombuffer(image[mid].tobytes(), "<u4")
            for k in np.flatnonzero(addrs):
                if valid(int(addrs[k]), f"doubly-indirect entry {j}/{k}"):
                    out.append((int(addrs[k]), NDIRECT + NINDIRECT + int(j) * NINDIRECT + int(k)))
    return out


def _contents(image: Image, ino: DInode, blocks: list[tuple[int, int]]) -> bytes:
    data = bytearray(ino.size)
    for b, index in blocks:
        if index < 0:
            continue
        off = index * BSIZE
        if off < ino.size:
            n = min(BSIZE, ino.size - off)
            data[off:off + n] = image[b, :n].tobytes()
    return bytes(data)


def fsck(image: Image) -> list[str]:
    """Every violation found in `image` (an empty list: the file system is consistent)."""
    if image.ndim != 2 or image.shape[1] != BSIZE or len(image) < 3:
        return [f"image: expected (blocks, {BSIZE}) bytes, got shape {image.shape}"]
    sb = Superblock.read(image)
    bad = _check_super(image, sb)
    if bad:
        return bad
    datastart = sb.bmapstart + (sb.size + BPB - 1) // BPB
    n, logged = read_log_header(image, sb.logstart)
    if n > LOGSIZE:
        bad.append(f"log: header claims {n} blocks, the log holds {LOGSIZE}")
    elif n:
        bad.append(f"log: header names {n} uninstalled blocks {list(logged[:n])} "
                   "(a committed transaction: mount to recover)")

    inodes: dict[int, DInode] = {}
    for inum in range(1, sb.ninodes):
        ino = read_dinode(image, sb.inodestart, inum)
        if ino.type == 0:
            continue
        if ino.type not in (T_DIR, T_FILE, T_DEVICE, T_SYMLINK):
            bad.append(f"inode {inum}: unknown type {ino.type}")
            continue
        inodes[inum] = ino
    owner: dict[int, int] = {}
    contents: dict[int, bytes] = {}
    for inum, ino in inodes.items():
        if not 0 <= ino.size <= MAXFILE * BSIZE:
            bad.append(f"inode {inum}: size {ino.size} beyond the largest file")
            continue
        blocks = _file_blocks(image, ino, datastart, sb.size, bad)
        nblocks = (ino.size + BSIZE - 1) // BSIZE
        for b, index in blocks:
            if index >= nblocks:
                bad.append(f"inode {inum}: block {b} at file block {index} lies beyond its "
                           f"size {ino.size}")
            if b in owner:
                bad.append(f"block {b} used twice (inode {owner[b]} and inode {inum})")
            owner[b] = inum
        if ino.type in (T_DIR, T_SYMLINK):
            contents[inum] = _contents(image, ino, blocks)
        if ino.type == T_DEVICE and ino.major != CONSOLE:
            bad.append(f"inode {inum}: device with unknown major {ino.major}")
        if ino.type == T_SYMLINK and not 0 < ino.size <= MAXPATH:
            bad.append(f"inode {inum}: symbolic link of size {ino.size}")
        if ino.type == T_DIR and ino.size % DIRENT_SIZE:
            bad.append(f"inode {inum}: directory size {ino.size} is not a multiple of "
                       f"{DIRENT_SIZE}")

    for b in range(sb.size):
        marked = bitmap_bit(image, sb.bmapstart, b)
        in_use = b < datastart or b in owner
        if in_use and not marked:
            bad.append(f"bitmap: block {b} is in use but marked free")
        elif marked and not in_use:
            bad.append(f"bitmap: block {b} is marked in use but no file uses it (leaked)")

    # directory structure, reachability and link counts
    root = inodes.get(ROOTINO)
    if root is None or root.type != T_DIR:
        bad.append(f"root: inode {ROOTINO} is not a directory")
        return bad
    refs: Counter[int] = Counter()
    parent_of: dict[int, int] = {ROOTINO: ROOTINO}
    reached = {ROOTINO}
    queue = [ROOTINO]
    while queue:
        d = queue.pop()
        entries = dirents(contents.get(d, b""))
        names = {name: inum for _off, inum, name in entries}
        if names.get(b".") != d:
            bad.append(f"directory {d}: '.' names {names.get(b'.')}, not itself")
        if names.get(b"..") != parent_of.get(d):
            bad.append(f"directory {d}: '..' names {names.get(b'..')}, not its parent "
                       f"{parent_of.get(d)}")
        seen_names: set[bytes] = set()
        for off, inum, name in entries:
            if not name or b"/" in name:
                bad.append(f"directory {d}: entry at {off} has a bad name {name!r}")
            if name in seen_names:
                bad.append(f"directory {d}: name {name!r} appears twice")
            seen_names.add(name)
            if name == b".":
                continue
            if inum not in inodes:
                bad.append(f"directory {d}: entry {name!r} names inode {inum}, which is free "
                           "or invalid")
                continue
            refs[inum] += 1
            if name == b"..":
                continue
            child = inodes[inum]
            if child.type == T_DIR:
                if inum in parent_of:
                    bad.append(f"directory {inum} has a second name {name!r} in directory {d}")
                    continue
                parent_of[inum] = d
                queue.append(inum)
            reached.add(inum)
    for inum, ino in sorted(inodes.items()):
        if inum not in reached:
            bad.append(f"inode {inum}: allocated (type {ino.type}) but unreachable from the root")
        elif ino.nlink != refs[inum]:
            bad.append(f"inode {inum}: link count {ino.nlink}, but {refs[inum]} entries name it")
    return bad


def describe(problems: list[str]) -> str:
    return "clean" if not problems else "\n".join(problems)


