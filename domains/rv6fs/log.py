"""The redo log (xv6 log.c): atomic file-system operations, group commit, recovery.

Every operation that writes the disk runs between `begin_op()` and `end_op()` and
records each block it changes with `log_write(buf)` (which pins the buffer in the cache
and absorbs repeats: a block changed twice in one transaction takes one log slot).
When the last outstanding operation ends, `commit()` runs:

  1. write the changed blocks into the log area (submit_and_poll batches);
  2. write the log header naming them: the commit point (a separate BDev call, so it
     reaches the disk only after step 1 has completed);
  3. install: copy the blocks to their home locations (batched), unpin them;
  4. write the header again with n = 0.

`begin_op` waits while a commit runs or while the log could not hold one more
operation of MAXOPBLOCKS blocks: n + (outstanding + 1) * MAXOPBLOCKS > LOGSIZE. Several
operations in flight at once therefore commit together (group commit).

`abandon()` ends an operation that failed with a bug (not an FsError): the transaction
is poisoned and never committed; the domain panics and its restart mounts the last
committed state.

`recover()` runs at mount: it installs whatever a committed header names, then clears
the header. A crash (of the domain, of the power) before step 2 loses the transaction;
after step 2 it is replayed: each transaction is all or nothing.

Locking: `_state` (a kernel lock) guards outstanding/committing; the blocks list is
changed only under the file system's lock (`fslock`), which commit also takes.
Waits are short `ctx.sleep` slices, so an unwinding domain never blocks.
"""

import struct

from redleaf_lab.interfaces.rv6 import LOGHEADER_FORMAT, LOGSIZE, MAXOPBLOCKS

from .fserror import MountError

BEGIN_TIMEOUT_S = 10.0


class Log:
    def __init__(self, ctx, cache, logstart: int, nlog: int, fs_size: int, fslock) -> None:
        self._ctx = ctx
        self._cache = cache
        self.start = logstart  # the header block; log block i is start + 1 + i
        self.size = nlog
        self._fs_size = fs_size
        self._fslock = fslock
        self._state = ctx.lock()
        self.outstanding = 0
        self.committing = False
        self.poisoned = False  # an operation panicked inside the current transaction
        self.blocks = []  # home block numbers of this transaction, in log order
        self.commits = 0
        self.logged = 0
        self.trace = None  # a list to append commit steps to (teaching views), or None

    # -- transactions -----------------------------------------------------------------
    def begin_op(self) -> None:
        """Wait for room in the log (bounded: a log that stays full for BEGIN_TIMEOUT_S
        means a transaction was lost without end_op; panic rather than hang, and the
        restarted domain mounts the last committed state)."""
        waited = 0.0
        while True:
            with self._state:
                room = len(self.blocks) + (self.outstanding + 1) * MAXOPBLOCKS <= self.size
                if not self.committing and room:
                    self.outstanding += 1
                    return
            self._ctx.sleep(0.0002)
            waited += 0.0002
            if waited > BEGIN_TIMEOUT_S:
                raise RuntimeError(f"begin_op: no room in the log for {BEGIN_TIMEOUT_S} s "
                                   f"({self.outstanding} operations outstanding)")

    def abandon(self) -> None:
        """An operation failed with a bug: nothing of the current transaction may ever be
        committed. Later transactions fail too; the domain is panicking anyway."""
        with self._state:
            self.outstanding -= 1
            self.poisoned = True

    def end_op(self) -> None:
        with self._state:
            self.outstanding -= 1
            if self.poisoned:
                raise RuntimeError("end_op: an earlier operation of this transaction failed")
            if self.committing:
                raise RuntimeError("end_op: a commit is running")
            do_commit = self.outstanding == 0
            if do_commit:
                self.committing = True
        if not do_commit:
            return
        try:
            with self._fslock:
                self.commit()
        finally:
            with self._state:
                self.committing = False

    def log_write(self, buf) -> None:
        """Record that `buf` changed in the current transaction (caller holds fslock)."""
        if self.outstanding < 1:
            raise RuntimeError("log_write outside a transaction")
        if buf.blockno in self.blocks:
            return  # absorption: already logged in this transaction
        if len(self.blocks) >= self.size:
            raise RuntimeError("log_write: transaction too big for the log")
        self.blocks.append(buf.blockno)
        self._cache.pin(buf)

    # -- commit -------------------------------------------------------------------------
    def commit(self) -> None:
        if not self.blocks:
            return
        blocks = list(self.blocks)
        datas = [self._cache.peek(b).data.copy() for b in blocks]
        self._step("write-log", blocks)
        self._cache.write_many([self.start + 1 + i for i in range(len(blocks))], datas)
        self._step("commit", blocks)
        self._write_head(blocks)  # the commit point
        self._step("install", blocks)
        self._cache.write_many(blocks, datas)
        for b in blocks:
            self._cache.unpin(self._cache.peek(b))
        self._write_head([])
        self._step("done", blocks)
        self.blocks = []
        self.commits += 1
        self.logged += len(blocks)

    def _step(self, what: str, blocks) -> None:
        if self.trace is not None:
            self.trace.append((what, tuple(blocks)))

    def _write_head(self, blocks) -> None:
        buf = self._cache.bread(self.start)
        padded = list(blocks) + [0] * (LOGSIZE - len(blocks))
        struct.pack_into(LOGHEADER_FORMAT, buf.data, 0, len(blocks), *padded)
        self._cache.bwrite(buf)
        self._cache.brelse(buf)

    def read_head(self) -> tuple:
        buf = self._cache.bread(self.start)
        fields = struct.unpack_from(LOGHEADER_FORMAT, buf.data, 0)
        self._cache.brelse(buf)
        n = fields[0]
        if n > self.size:
            raise MountError(f"log header claims {n} blocks but the log holds {self.size}")
        blocks = tuple(fields[1:1 + n])
        for b in blocks:
            if not self.start + 1 + self.size <= b < self._fs_size:
                raise MountError(f"log header names block {b}, outside the inode, bitmap "
                                 f"and data area ({self.start + 1 + self.size}.."
                                 f"{self._fs_size - 1})")
        return blocks

    # -- recovery -------------------------------------------------------------------------
    def recover(self) -> int:
        """Install a committed transaction left by a crash; returns its block count."""
        blocks = self.read_head()
        if blocks:
            for i in range(0, len(blocks), 32):
                chunk = blocks[i:i + 32]
                # read each log block, then write it home
                homes = []
                datas = []
                for j, home in enumerate(chunk):
                    buf = self._cache.bread(self.start + 1 + i + j)
                    datas.append(buf.data.copy())
                    self._cache.brelse(buf)
                    homes.append(home)
                    cached = self._cache.peek(home)
                    if cached is not None:
                        cached.data[:] = datas[-1]
                self._cache.write_many(homes, datas)
            self._write_head([])
        return len(blocks)
