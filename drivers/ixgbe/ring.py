"""One RX or TX descriptor ring of the 82599, driven with numpy, a batch at a time.

Purpose: a ring is `size` 16-byte descriptors in DMA memory (§7.1.6 / §7.2.3.2.4) plus
the packet buffers the NIC currently owns, in slot order (zero copy: the buffers stay in
the shared heap and are never touched by Python). Both rings keep the handle-free
batches taken out of the caller's deques as they are (`batches`, oldest first), so a
batch that goes back out whole costs no deque move into and out of the driver. A TX
batch is handed back when all of it was sent. RX frames arrive one by one: whole
batches are handed on as they complete, and a batch is split (through the RRefDeque
`split`, which then holds its rest, in front of `batches`) only when no whole batch is
complete, so a trickle of frames is never held back.

Armed slots are the window [oldest, oldest + count) modulo `size`. Descriptors complete
in ring order, so the completed ones are a prefix of the window: the last descriptor of
the window is read first (all done: the common case), else one vectorized status check
per run of slots finds the prefix (a window crossing the end of the ring is two runs).
At most size - 1 slots are armed, so the tail never catches up with the head (§7.1.9:
RDT == RDH means "no descriptor").

* `RxRing.completed(limit)` -> (n, lengths): how many of the oldest buffers hold a
  received frame (DD set, EOP required: one frame per buffer) and their lengths;
  `received(n)` returns (up to n of) them as batches, in order, and forgets them;
  `arm(batch, iovas)` writes read-format descriptors (packet address, header address
  0, which clears DD) after the window and keeps the batch.
* `TxRing.completed(limit)` -> n: how many of the oldest frames were sent (DD written
  back, RS is set on every descriptor); `descriptor_words(lengths)` builds the second
  quadwords and checks the lengths with one table lookup; `post(batch, iovas, words)`
  writes advanced data descriptors after the window and keeps the batch; `sent_batches(n, room)`
  returns the oldest batches that are wholly sent and fit in `room`, and forgets them.
The caller writes the tail register once per batch.

Ownership: the ring memory comes from device.dma_alloc and `split` is allocated here;
the batches were taken out of the caller's deques by this domain. All are owned by the
driver domain, and a crash reclaims them (after the kernel quiesced the device).
Memory ordering: descriptors are written before the tail; a status word is read before
the length next to it. Not thread safe: one ring per caller.
"""

from collections import deque

import numpy as np

from redleaf_lab.api import RRefDeque
from redleaf_lab.interfaces.net import Packet

from .regs import (
    DESC_BYTES,
    RX_LENGTH_WORD,
    RX_STAT_DD,
    RX_STAT_EOP,
    RX_STATUS_DWORD,
    TX_CMD_ONE_BUFFER,
    TX_PAYLEN_SHIFT,
    TX_STAT_DD,
    TX_STATUS_DWORD,
    IxgbeError,
)

RX_DONE = RX_STAT_DD | RX_STAT_EOP


def _tx_words(min_frame: int, max_frame: int) -> np.ndarray:
    """The second quadword of a TX data descriptor for every frame length 0..max_frame:
    dword 2 = length | DTYP | DCMD, dword 3 = PAYLEN << 14 (its DD bit 0 starts clear).
    The fields do not overlap (length < 2^16). Lengths below min_frame get 0, which no
    valid length has: one table lookup per batch builds the words and checks the lengths
    (an index past max_frame raises IndexError)."""
    lengths = np.arange(max_frame + 1, dtype=np.uint64)
    words = lengths * np.uint64(1 + (1 << (32 + TX_PAYLEN_SHIFT))) + np.uint64(TX_CMD_ONE_BUFFER)
    words[:min_frame] = 0
    return words


class Ring:
    """What RX and TX rings share: memory, views, the armed window."""

    def __init__(self, device, queue: int, size: int, status_dword: int) -> None:
        self.queue = queue
        self.size = size
        self.mem = device.dma_alloc(size * DESC_BYTES)
        self.d64 = self.mem.array.view(np.uint64).reshape(size, 2)
        self.d32 = self.mem.array.view(np.uint32).reshape(size, 4)
        self.d16 = self.mem.array.view(np.uint16).reshape(size, 8)
        self.status = self.d32[:, status_dword]  # of the writeback format
        self.oldest = 0  # first armed slot: the next descriptor the NIC completes
        self.count = 0  # armed slots (buffers held), kept here to save a registry call

    @property
    def tail(self) -> int:
        """One past the newest armed slot: the value of the tail register."""
        return (self.oldest + self.count) % self.size

    @property
    def room(self) -> int:
        return self.size - 1 - self.count

    def runs(self, start: int, n: int) -> list:
        """Slots [start, start + n) modulo size as at most two (slot, count) runs."""
        first = min(n, self.size - start)
        if first == n:
            return [(start, n)]
        return [(start, first), (0, n - first)]

    def consume(self, n: int) -> None:
        self.oldest = (self.oldest + n) % self.size
        self.count -= n

    def release(self, device) -> None:
        device.dma_free(self.mem.handle)


class RxRing(Ring):
    def __init__(self, device, queue: int, size: int) -> None:
        super().__init__(device, queue, size, RX_STATUS_DWORD)
        self.lengths = self.d16[:, RX_LENGTH_WORD]
        self.split = RRefDeque.new(Packet, size)  # the oldest armed buffers, if a batch split
        self.in_split = 0  # how many (len(split), without a registry call)
        self.batches = deque()  # the other armed buffers, as the batches they came in

    def received(self, n: int) -> list:
        """Hand over up to `n` of the oldest buffers (all hold a frame) as batches in ring
        order; they leave the ring. Whole batches go as they are (no deque move); a batch
        is split (through `split`) only when no whole one is complete, so a trickle of
        frames is never held back and a steady flow keeps the batches whole."""
        out = []
        left = n
        if self.in_split:
            k = min(left, self.in_split)
            out.append(self.split.take_batch(k))
            self.in_split -= k
            left -= k
        while left and not self.in_split:
            size = len(self.batches[0])
            if size <= left:
                out.append(self.batches.popleft())
                left -= size
            elif out:
                break  # the rest of the frames go at the next call, with their batch
            else:
                self.split.put_batch(self.batches.popleft())
                out.append(self.split.take_batch(left))
                self.in_split = size - left
                left = 0
        self.consume(n - left)
        return out

    def written_prefix(self, limit: int) -> tuple:
        """(n, [status arrays]): the leading written-back (non-zero status) slots of the
        window, at most `limit`; arming zeroes the status, so non-zero means done."""
        window = min(self.count, limit)
        if window <= 0:
            return 0, []
        column = self.status
        last = (self.oldest + window - 1) % self.size
        if column[last] and self.oldest + window <= self.size:
            # the NIC writes back in ring order: the last one written means all are (the
            # EOP/DD check in `completed` catches a device that breaks this)
            return window, [column[self.oldest : self.oldest + window]]
        n = 0
        parts = []
        for slot, count in self.runs(self.oldest, window):
            status = column[slot : slot + count]
            written = status != 0
            if written.all():
                parts.append(status)
                n += count
                continue
            k = int(written.argmin())
            parts.append(status[:k])
            n += k
            break
        return n, parts

    def completed(self, limit: int) -> tuple:
        """(n, lengths as uint16[n]) of the oldest received frames, at most `limit`."""
        n, parts = self.written_prefix(limit)
        if n == 0:
            return 0, None
        status = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if int(np.bitwise_and.reduce(status)) & RX_DONE != RX_DONE:  # one pass over all
            bad = int(np.flatnonzero((status & RX_DONE) != RX_DONE)[0])
            raise IxgbeError(f"rx queue {self.queue}: descriptor {(self.oldest + bad) % self.size}"
                             f" has status {int(status[bad]):#x}: a frame larger than one buffer "
                             "(no EOP) or a writeback without DD")
        runs = self.runs(self.oldest, n)
        if len(runs) == 1:  # a view: the caller copies it (RRefBatch.set) before re-arming
            lengths = self.lengths[self.oldest : self.oldest + n]
        else:
            lengths = np.concatenate([self.lengths[s : s + c] for s, c in runs])
        return n, lengths

    def arm(self, batch, iovas) -> None:
        """Give the NIC the buffers of `batch` (data at `iovas`) in the slots after the
        window (§7.1.6.1); the ring keeps the batch."""
        n = len(iovas)
        if n > self.room:
            raise IxgbeError(f"rx queue {self.queue}: {n} buffers for {self.room} free slots")
        done = 0
        for slot, count in self.runs(self.tail, n):
            ring = self.d64[slot : slot + count]
            ring[:, 0] = iovas[done : done + count]
            ring[:, 1] = 0  # header address 0: clears the status (DD) of the old writeback
            done += count
        self.count += n
        self.batches.append(batch)


class TxRing(Ring):
    def __init__(self, device, queue: int, size: int, min_frame: int, max_frame: int) -> None:
        super().__init__(device, queue, size, TX_STATUS_DWORD)
        self.words = _tx_words(min_frame, max_frame)
        self.batches = deque()  # the posted batches, oldest first (handle-free, ours)

    def descriptor_words(self, lengths):
        """The second descriptor quadword of each frame, or None if a length is outside
        min_frame..max_frame."""
        try:
            words = self.words.take(lengths)
        except IndexError:  # longer than max_frame
            return None
        return words if words.all() else None

    def sent_batches(self, done: int, room: int) -> list:
        """The oldest batches whose frames are all among the `done` sent ones and that fit
        together in `room`; they leave the ring."""
        out = []
        while self.batches:
            size = len(self.batches[0])
            if size > done or size > room:
                break
            out.append(self.batches.popleft())
            done -= size
            room -= size
            self.consume(size)
        return out

    def completed(self, limit: int) -> int:
        """How many of the oldest frames the NIC has sent (DD written back), at most `limit`."""
        # dword 3 holds PAYLEN << 14 until the writeback: test only the DD bit
        window = min(self.count, limit)
        if window <= 0:
            return 0
        column = self.status
        if column[(self.oldest + window - 1) % self.size] & TX_STAT_DD:
            return window  # written back in ring order: the last one sent means all are
        n = 0
        for slot, count in self.runs(self.oldest, window):
            sent = (column[slot : slot + count] & TX_STAT_DD) != 0
            if sent.all():
                n += count
                continue
            n += int(sent.argmin())
            break
        return n

    def post(self, batch, iovas, words) -> None:
        """Advanced data descriptors (§7.2.3.2.4), one buffer per frame, RS on each: the
        buffer addresses and the second quadwords (`tx_words` of the lengths); the ring
        keeps `batch` until all of it was sent."""
        n = len(iovas)
        if n > self.room:
            raise IxgbeError(f"tx queue {self.queue}: {n} frames for {self.room} free slots")
        done = 0
        for slot, count in self.runs(self.tail, n):
            ring = self.d64[slot : slot + count]
            ring[:, 0] = iovas[done : done + count]
            ring[:, 1] = words[done : done + count]
            done += count
        self.count += n
        self.batches.append(batch)
