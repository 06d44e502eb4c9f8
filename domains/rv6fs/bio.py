"""The buffer cache (xv6 bio.c): one 4 KiB buffer per cached block, LRU, pinning.

Interface: `bread(blockno)` returns a `Buf` holding the block (read from the BDev on a
miss) with one more reference; `brelse(buf)` drops it and makes the buffer the most
recently used; `bwrite(buf)` writes it through to the device now. `pin`/`unpin` keep a
buffer in the cache while the log holds it (log.py): a pinned buffer is never evicted,
so a logged block is installed from memory. `write_many` and `read_ahead` move up to 32
blocks per `submit_and_poll` call (the log's commit and install, read-ahead).

Read-ahead lands in a window beside the cache, not in 32 cache buffers: each batch's
array stays as it came back from the driver, and `copy_out(blockno, off, n)` serves a
read from the cache or the window without taking a buffer (saving per block a buffer,
a 4 KiB copy, an eviction and the reference dance). The window keeps the last WINDOW
batches (1 MiB), least recently used batch out first, so a file read again is read
from memory. A window block is a clean copy of the disk as read; it stays valid
because a block leaves the window the moment it enters the cache (`_get`: a miss there
takes the window's copy instead of a device read), and every change to a block goes
through the cache.

Each buffer owns an `RRef[Block]` on the shared heap: `read` moves it into the driver and
gets it back filled (a crashed driver's shadow hands back a fresh one, which we keep);
`write` only lends it. `Buf.data` is a numpy view of that RRef; it is dropped before a
read moves the RRef (a move is refused while views are alive).

Locking: none here; every caller holds the file system's lock (rv6fs.py).
"""

from collections import OrderedDict

import numpy as np

from redleaf_lab.api import BLOCK_SIZE, BlkReq, Block, BorrowedError, RRef, RRefDeque

BATCH = 32
WINDOW = 8  # read-ahead batches kept (8 x 32 blocks)
SMALL = 4  # up to this many blocks, single writes cost less than a batch


class Buf:
    def __init__(self) -> None:
        self.blockno = -1
        self.refcnt = 0
        self.pins = 0
        self.rref = RRef.new(Block)
        self.data = self.rref.array()

    # counters changed by the buffer's own methods (stores into `self` take the fast path)
    def hold(self) -> None:
        self.refcnt += 1

    def release(self) -> int:
        self.refcnt -= 1
        return self.refcnt

    def pin(self, delta: int) -> None:
        self.pins += delta


class BufCache:
    def __init__(self, bdev, nbuf: int) -> None:
        self._bdev = bdev
        self._nbuf = nbuf
        self._lru = OrderedDict()  # blockno -> Buf, least recently used first
        self._spare = []  # evicted buffers, ready for reuse
        self._submit = RRefDeque.new(BlkReq, BATCH)
        self._collect = RRefDeque.new(BlkReq, BATCH)
        # the batch's requests rest in a deque of their own between transfers: they move
        # deque to deque (`move_to`, one registry call), never out to handles
        self._requests = RRefDeque.new(BlkReq, BATCH)
        self._requests.push_many([RRef.new(BlkReq) for _ in range(BATCH)])
        self._scratch = RRef.new(Block)  # lent to `write`, never moved: its view may stay
        self._scratch_view = self._scratch.array()
        self._window = {}  # blockno -> (batch number, row); never also in _lru
        self._batches = OrderedDict()  # number -> (its blocks' data, blocknos), LRU first
        self._batch_no = 0
        self.hits = 0
        self.misses = 0
        self.replaced = 0  # buffers replaced because a view outside this domain lingered

    # -- lookup and eviction --------------------------------------------------------
    def cached(self, blockno: int) -> bool:
        """In the cache or in the read-ahead window."""
        return blockno in self._lru or blockno in self._window

    def blocknos(self) -> tuple:
        return tuple(self._lru)

    def _victim(self) -> Buf:
        if self._spare:
            return self._spare.pop()
        if len(self._lru) < self._nbuf:
            return Buf()
        for blockno, buf in self._lru.items():
            if buf.refcnt == 0 and buf.pins == 0:
                del self._lru[blockno]
                return buf
        raise RuntimeError("bget: no buffers (every buffer is in use or pinned)")

    def _get(self, blockno: int):
        """(buf, needs_read)"""
        buf = self._lru.get(blockno)
        if buf is not None:
            buf.hold()
            self.hits += 1
            return buf, False
        buf = self._victim()
        buf.blockno = blockno
        buf.refcnt = 1
        self._lru[blockno] = buf
        where = self._window.pop(blockno, None)
        if where is not None:  # read ahead: the window's copy, and it leaves the window
            buf.data[:] = self._batches[where[0]][0][where[1]]
            self.hits += 1
            return buf, False
        self.misses += 1
        return buf, True

    def copy_out(self, blockno: int, off: int, n: int):
        """Bytes off..off+n of a block in the cache (now most recently used) or in the
        read-ahead window; None if it is in neither (bread it)."""
        buf = self._lru.get(blockno)
        if buf is not None:
            self.hits += 1
            self._lru.move_to_end(blockno)
            return buf.data[off:off + n].tobytes()
        where = self._window.get(blockno)
        if where is None:
            return None
        self.hits += 1
        self._batches.move_to_end(where[0])
        return self._batches[where[0]][0][where[1], off:off + n].tobytes()

    def bread(self, blockno: int) -> Buf:
        buf, needs_read = self._get(blockno)
        if needs_read:
            ok = False
            try:
                self._read_into(buf)
                ok = True
            finally:
                if not ok:
                    self._forget(buf)
        return buf

    def bzero(self, blockno: int) -> Buf:
        """A buffer for a block whose old contents do not matter (a fresh allocation)."""
        buf, _ = self._get(blockno)
        buf.data[:] = 0
        return buf

    def _forget(self, buf: Buf) -> None:
        self._lru.pop(buf.blockno, None)
        buf.refcnt = 0
        buf.blockno = -1

    def _read_into(self, buf: Buf) -> None:
        buf.data = None  # no view may be alive while the RRef moves
        try:
            buf.rref = self._bdev.read(buf.blockno, buf.rref)
        except BorrowedError:
            # a view we do not hold is still alive (a crashed driver's shadow handed the
            # buffer back while the dead incarnation's DMA view lingers): use a new one
            self.replaced += 1
            buf.rref = RRef.new(Block)
            buf.rref = self._bdev.read(buf.blockno, buf.rref)
        buf.data = buf.rref.array()

    def brelse(self, buf: Buf) -> None:
        if buf.refcnt <= 0:
            raise RuntimeError(f"brelse: block {buf.blockno} is not held")
        if buf.release() == 0:
            self._lru.move_to_end(buf.blockno)

    def bwrite(self, buf: Buf) -> None:
        self._bdev.write(buf.blockno, buf.rref)

    def pin(self, buf: Buf) -> None:
        buf.pin(1)

    def unpin(self, buf: Buf) -> None:
        buf.pin(-1)

    def peek(self, blockno: int):
        """The cached buffer of `blockno` without taking a reference (None if absent)."""
        return self._lru.get(blockno)

    # -- several blocks per BDev call -----------------------------------------------
    def write_many(self, blocknos, datas) -> None:
        """Write datas[i] (uint8 arrays) to blocknos[i]: a few blocks one `write` each
        (through one scratch buffer, lent), more 32 per submit_and_poll call."""
        if len(blocknos) <= SMALL:
            for blockno, data in zip(blocknos, datas, strict=True):
                self._scratch_view[:] = data
                self._bdev.write(blockno, self._scratch)
            return
        for start in range(0, len(blocknos), BATCH):
            chunk = blocknos[start:start + BATCH]
            self._transfer(np.asarray(chunk, dtype=np.int64),
                           np.stack(datas[start:start + BATCH]), True)

    def read_ahead(self, blocknos) -> None:
        """Read the blocks that are neither cached nor in the window into the window (one
        batch, at most 32 blocks); the least recently used batch goes if it is full."""
        lru, window = self._lru, self._window
        missing = [b for b in blocknos if b not in lru and b not in window][:BATCH]
        if not missing:
            return
        landed = self._transfer(np.asarray(missing, dtype=np.int64), None, False)
        if len(self._batches) >= WINDOW:
            old, (_data, blocks) = self._batches.popitem(last=False)
            for b in blocks:
                if window.get(b, (0,))[0] == old:  # (not taken by the cache since)
                    del window[b]
        self._batch_no += 1
        self._batches[self._batch_no] = (landed, missing)
        for row, b in enumerate(missing):
            window[b] = (self._batch_no, row)
        self.misses += len(missing)

    def _transfer(self, blocks, datas, write: bool):
        n = len(blocks)
        self._requests.move_to(self._submit, n)
        self._submit.set("block", blocks)
        if write:
            self._submit.set("data", datas)
        done = 0
        while done < n:
            taken, self._submit, self._collect = self._bdev.submit_and_poll(
                self._submit, self._collect, write)
            done += taken
            if taken == 0:
                raise RuntimeError("submit_and_poll made no progress")
        order = self._collect.get("block")
        landed = None if write else self._collect.get("data")
        self._collect.move_to(self._requests)
        if landed is not None and not np.array_equal(order, blocks):
            index = {int(b): i for i, b in enumerate(order)}
            landed = np.stack([landed[index[int(b)]] for b in blocks])
        return landed


def zero_block() -> np.ndarray:
    return np.zeros(BLOCK_SIZE, dtype=np.uint8)
