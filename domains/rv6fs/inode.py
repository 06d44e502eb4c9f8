"""Inodes and block allocation (xv6 fs.c, lower half): bitmap, dinodes, bmap, readi/writei.

A file's blocks: addrs[0..11] direct, addrs[12] a singly-indirect block (1024 numbers),
addrs[13] a doubly-indirect block (1024 singly-indirect blocks): 12 + 1024 + 1024²
blocks of 4 KiB. Block number 0 means "not allocated" (a hole reads as zeros).

Interface: `Inodes.iget(inum)` gives the in-memory `Inode` (one per inum, reference
counted; `iput` drops a reference and frees the inode and its blocks when the last
reference goes and no link is left), `ialloc(type)`, `iupdate(ip)`, `itrunc(ip)`,
`readi(ip, off, n, dest)`, `writei(ip, src, off)`. Every change of a disk block goes
through `log.log_write` inside the caller's transaction.

Locking: none here; callers hold the file system's lock.
"""

import struct

import numpy as np

from redleaf_lab.interfaces.rv6 import (
    BPB,
    BSIZE,
    DINODE_FORMAT,
    DINODE_SIZE,
    EFBIG,
    ENFILE,
    ENOSPC,
    IPB,
    MAXFILE,
    NDIRECT,
    NINDIRECT,
)

from .fserror import FsError

NADDRS = NDIRECT + 2
READAHEAD = 32  # blocks fetched in one submit_and_poll batch on a read miss
SINGLE = NDIRECT
DOUBLE = NDIRECT + 1


class Inode:
    def __init__(self, inum: int) -> None:
        self.inum = inum
        self.ref = 0
        self.type = 0
        self.major = 0
        self.minor = 0
        self.nlink = 0
        self.size = 0
        self.addrs = [0] * NADDRS
        self.ahead = {}  # file block -> disk block, filled by read-ahead, cleared by writes


class Inodes:
    def __init__(self, cache, log, sb) -> None:
        self._cache = cache
        self._log = log
        self.sb = sb
        self._table = {}  # inum -> Inode with ref > 0

    # -- the bitmap -------------------------------------------------------------------
    def balloc(self, zero: bool = True) -> int:
        sb = self.sb
        for base in range(0, sb.size, BPB):
            buf = self._cache.bread(sb.bmapstart + base // BPB)
            bits = buf.data
            limit = min(BPB, sb.size - base)
            full = np.flatnonzero(bits[: (limit + 7) // 8] != 0xFF)
            for byte in full:
                byte = int(byte)
                value = int(bits[byte])
                for bit in range(8):
                    b = base + byte * 8 + bit
                    if b >= sb.size:
                        break
                    if not value & (1 << bit):
                        bits[byte] = value | (1 << bit)
                        self._log.log_write(buf)
                        self._cache.brelse(buf)
                        if zero:
                            zb = self._cache.bzero(b)
                            self._log.log_write(zb)
                            self._cache.brelse(zb)
                        return b
            self._cache.brelse(buf)
        raise FsError(ENOSPC, "no free blocks")

    def bfree(self, b: int) -> None:
        sb = self.sb
        if not sb.datastart <= b < sb.size:
            raise RuntimeError(f"bfree: block {b} is not a data block")
        buf = self._cache.bread(sb.bmapstart + b // BPB)
        byte, bit = (b % BPB) // 8, b % 8
        value = int(buf.data[byte])
        if not value & (1 << bit):
            self._cache.brelse(buf)
            raise RuntimeError(f"bfree: block {b} is already free")
        buf.data[byte] = value & ~(1 << bit)
        self._log.log_write(buf)
        self._cache.brelse(buf)

    # -- dinodes ------------------------------------------------------------------------
    def _iblock(self, inum: int) -> int:
        return self.sb.inodestart + inum // IPB

    def ialloc(self, itype: int, major: int = 0, minor: int = 0) -> Inode:
        for inum in range(1, self.sb.ninodes):
            if inum in self._table and self._table[inum].type != 0:
                continue
            buf = self._cache.bread(self._iblock(inum))
            off = (inum % IPB) * DINODE_SIZE
            if struct.unpack_from("<h", buf.data, off)[0] == 0:
                buf.data[off:off + DINODE_SIZE] = 0
                struct.pack_into("<hhh", buf.data, off, itype, major, minor)
                self._log.log_write(buf)
                self._cache.brelse(buf)
                ip = self.iget(inum)
                return ip
            self._cache.brelse(buf)
        raise FsError(ENOSPC, "no free inodes")

    def iget(self, inum: int) -> Inode:
        if not 0 < inum < self.sb.ninodes:
            raise FsError(ENFILE, f"inode number {inum} out of range")
        ip = self._table.get(inum)
        if ip is None:
            ip = Inode(inum)
            buf = self._cache.bread(self._iblock(inum))
            fields = struct.unpack_from(DINODE_FORMAT, buf.data, (inum % IPB) * DINODE_SIZE)
            self._cache.brelse(buf)
            ip.type = fields[0]
            ip.major = fields[1]
            ip.minor = fields[2]
            ip.nlink = fields[3]
            ip.size = fields[4]
            ip.addrs = list(fields[5:])
            self._table[inum] = ip
        ip.ref += 1
        return ip

    def idup(self, ip: Inode) -> Inode:
        ip.ref += 1
        return ip

    def iupdate(self, ip: Inode) -> None:
        buf = self._cache.bread(self._iblock(ip.inum))
        struct.pack_into(DINODE_FORMAT, buf.data, (ip.inum % IPB) * DINODE_SIZE, ip.type,
                         ip.major, ip.minor, ip.nlink, ip.size, *ip.addrs)
        self._log.log_write(buf)
        self._cache.brelse(buf)

    def iput(self, ip: Inode) -> None:
        """Drop a reference; the last one frees an unlinked inode (inside a transaction)."""
        if ip.ref == 1 and ip.nlink == 0 and ip.type != 0:
            self.itrunc(ip)
            ip.type = 0
            self.iupdate(ip)
        ip.ref -= 1
        if ip.ref == 0:
            self._table.pop(ip.inum, None)

    # -- block map -------------------------------------------------------------------------
    def _entry(self, block: int, index: int, alloc: bool, zero: bool) -> int:
        """Entry `index` of indirect block `block`, allocating the target if asked."""
        buf = self._cache.bread(block)
        addr = struct.unpack_from("<I", buf.data, index * 4)[0]
        if addr == 0 and alloc:
            try:
                addr = self.balloc(zero)
            except FsError:
                self._cache.brelse(buf)
                raise
            struct.pack_into("<I", buf.data, index * 4, addr)
            self._log.log_write(buf)
        self._cache.brelse(buf)
        return addr

    def _slot(self, ip: Inode, slot: int, alloc: bool, zero: bool = True) -> int:
        if ip.addrs[slot] == 0 and alloc:
            ip.addrs[slot] = self.balloc(zero)
        return ip.addrs[slot]

    def bmap(self, ip: Inode, bn: int, alloc: bool, zero: bool = True) -> int:
        """The disk block of file block `bn` (0 if it is a hole and alloc is False)."""
        if bn < NDIRECT:
            return self._slot(ip, bn, alloc, zero)
        bn -= NDIRECT
        if bn < NINDIRECT:
            top = self._slot(ip, SINGLE, alloc)
            return self._entry(top, bn, alloc, zero) if top else 0
        bn -= NINDIRECT
        if bn < NINDIRECT * NINDIRECT:
            top = self._slot(ip, DOUBLE, alloc)
            if not top:
                return 0
            mid = self._entry(top, bn // NINDIRECT, alloc, True)
            return self._entry(mid, bn % NINDIRECT, alloc, zero) if mid else 0
        raise FsError(EFBIG, "file too large")

    def _free_indirect(self, block: int, depth: int) -> None:
        buf = self._cache.bread(block)
        addrs = buf.data.copy().view("<u4")
        self._cache.brelse(buf)
        for a in addrs[addrs != 0]:
            if depth > 1:
                self._free_indirect(int(a), depth - 1)
            else:
                self.bfree(int(a))
        self.bfree(block)

    def itrunc(self, ip: Inode) -> None:
        ip.ahead = {}
        for i in range(NDIRECT):
            if ip.addrs[i]:
                self.bfree(ip.addrs[i])
                ip.addrs[i] = 0
        if ip.addrs[SINGLE]:
            self._free_indirect(ip.addrs[SINGLE], 1)
            ip.addrs[SINGLE] = 0
        if ip.addrs[DOUBLE]:
            self._free_indirect(ip.addrs[DOUBLE], 2)
            ip.addrs[DOUBLE] = 0
        ip.size = 0
        self.iupdate(ip)

    # -- data ---------------------------------------------------------------------------------
    def readi(self, ip: Inode, off: int, n: int, dest) -> int:
        """Copy up to n bytes from offset `off` into the uint8 array `dest`; bytes read."""
        if off >= ip.size or n <= 0:
            return 0
        n = min(n, ip.size - off)
        done = 0
        while done < n:
            bn, boff = divmod(off + done, BSIZE)
            m = min(n - done, BSIZE - boff)
            addr = self.bmap(ip, bn, False)
            if addr and not self._cache.cached(addr):
                self._read_ahead(ip, bn, addr)
            if addr == 0:
                dest[done:done + m] = 0
            else:
                buf = self._cache.bread(addr)
                dest[done:done + m] = buf.data[boff:boff + m]
                self._cache.brelse(buf)
            done += m
        return done

    def _read_ahead(self, ip: Inode, bn: int, addr: int) -> None:
        """A miss on file block bn: fetch it and the file's next blocks in one batch."""
        last = min(bn + READAHEAD, (ip.size + BSIZE - 1) // BSIZE)
        addrs = [addr]
        ahead = {}
        for k in range(bn + 1, last):
            a = self.bmap(ip, k, False)
            ahead[k] = a
            if a:
                addrs.append(a)
        ip.ahead = ahead
        self._cache.read_ahead(addrs)

    def read_bytes(self, ip: Inode, off: int, n: int) -> bytes:
        """Up to n bytes from offset `off` (readi without a destination array)."""
        if off >= ip.size or n <= 0:
            return b""
        n = min(n, ip.size - off)
        bn, boff = divmod(off, BSIZE)
        if boff + n <= BSIZE:  # within one block (an aligned 4 KiB request): the hot path
            addr = ip.ahead.get(bn)
            if addr is None:
                addr = self.bmap(ip, bn, False)
            if addr:
                data = self._cache.copy_out(addr, boff, n)
                if data is not None:
                    return data
        parts = []
        done = 0
        while done < n:
            bn, boff = divmod(off + done, BSIZE)
            m = min(n - done, BSIZE - boff)
            addr = ip.ahead.get(bn)
            if addr is None:
                addr = self.bmap(ip, bn, False)
            if addr == 0:
                parts.append(bytes(m))
            else:
                data = self._cache.copy_out(addr, boff, m)
                if data is None:  # a miss: fetch it and the file's next blocks
                    self._read_ahead(ip, bn, addr)
                    data = self._cache.copy_out(addr, boff, m)
                    if data is None:  # (read-ahead found nothing to fetch past it)
                        buf = self._cache.bread(addr)
                        data = buf.data[boff:boff + m].tobytes()
                        self._cache.brelse(buf)
                parts.append(data)
            done += m
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def writei(self, ip: Inode, src, off: int) -> int:
        """Write the uint8 array `src` at offset `off` (inside a transaction); bytes written."""
        n = len(src)
        if ip.ahead:
            ip.ahead = {}  # block numbers may change: forget the read-ahead map
        if off + n > MAXFILE * BSIZE:
            raise FsError(EFBIG, "file too large")
        done = 0
        try:
            while done < n:
                bn, boff = divmod(off + done, BSIZE)
                m = min(n - done, BSIZE - boff)
                whole = m == BSIZE
                addr = self.bmap(ip, bn, True, zero=not whole)
                buf = self._cache.bzero(addr) if whole and not self._cache.cached(addr) \
                    else self._cache.bread(addr)
                buf.data[boff:boff + m] = src[done:done + m]
                self._log.log_write(buf)
                self._cache.brelse(buf)
                done += m
        except FsError:
            if done == 0:
                raise
        finally:
            if off + done > ip.size:
                ip.size = off + done
            self.iupdate(ip)
        return done

    def read_text(self, ip: Inode) -> str:
        return self.read_bytes(ip, 0, ip.size).decode("utf-8", "replace")
