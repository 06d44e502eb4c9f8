"""One RX or TX descriptor ring of the 82599, driven with numpy, a batch at a time.

Purpose: a ring is `size` 16-byte descriptors in DMA memory (§7.1.6 / §7.2.3.2.4) plus
the packet buffers the NIC currently owns, in slot order, in an RRefDeque of this
domain (`held`; zero copy: the buffers stay in the shared heap and are never touched by
Python). Buffers move between the caller's deques and `held` with one registry call
per batch (RRefDeque.move_*), which also writes their descriptors or their lengths: no
batch object and no per-packet Python.

Armed slots are the window [oldest, oldest + count) modulo `size`; `held` holds the
window's buffers, front first. Descriptors complete in ring order, so the completed
ones are a prefix of the window: the last descriptor of the window is read first (all
done: the common case), else one vectorized status check per run of slots finds the
prefix (a window crossing the end of the ring is two runs). At most size - 1 slots are
armed, so the tail never catches up with the head (§7.1.9: RDT == RDH means "no
descriptor").

* `completed(limit)` (both rings) -> n: how many of the oldest armed slots the NIC has
  written back (RX: any status bit; TX: DD, RS being set on every descriptor).
* `RxRing.deliver(n, collect)` moves them (as many as `collect` has room for) to `collect`
  with their lengths set from the writebacks, checking each has DD and EOP (one frame
  per buffer), in one call;
  `arm_from(packets)` moves free buffers from `packets` onto the ring, writing
  their read-format descriptors (packet address, header address 0, which clears DD) in
  the same registry call (RRefDeque.move_to_ring).
* `TxRing.hand_back(n, collect)` moves (up to) n sent
  buffers to `collect`; `post_from(packets, limit)` moves frames onto the ring, writing
  their advanced data descriptors in the same call; the descriptor word comes from a
  table indexed by frame length, which also checks the length.
The caller writes the tail register once per batch.

Ownership: the ring memory comes from device.dma_alloc and `held` is allocated here;
both are owned by the driver domain, and a crash reclaims them, with the buffers on the
ring, after the kernel quiesced the device. Memory ordering: descriptors are written
before the tail; a status word is read before the length next to it. Not thread safe:
one ring per caller.
"""

import numpy as np

from redleaf_lab.api import DescriptorRing, RRefDeque, WritebackField
from redleaf_lab.interfaces.net import MAX_FRAME, Packet

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
# §7.1.6.2: the writeback's second quadword holds the status (bits 0..31, DD and EOP in
# bits 0..1) and the packet length (bits 32..47), at most MAX_FRAME (jumbo frames off,
# FCS stripped): a longer one would have run past the buffer's data field
RX_WRITEBACK = WritebackField(word=1, shift=8 * (2 * RX_LENGTH_WORD - DESC_BYTES // 2),
                              mask=0xFFFF, check_mask=RX_DONE, check_want=RX_DONE,
                              limit=MAX_FRAME)


def _tx_words(min_frame: int, max_frame: int) -> np.ndarray:
    """The second quadword of a TX data descriptor for every frame length 0..max_frame:
    dword 2 = length | DTYP | DCMD, dword 3 = PAYLEN << 14 (its DD bit 0 starts clear).
    The fields do not overlap (length < 2^16). Lengths below min_frame get 0, which no
    valid length has: the lookup (in C, RRefDeque.move_to_ring) builds the words and
    checks the lengths (0, or past max_frame, refuses the batch)."""
    lengths = np.arange(max_frame + 1, dtype=np.uint64)
    words = lengths * np.uint64(1 + (1 << (32 + TX_PAYLEN_SHIFT))) + np.uint64(TX_CMD_ONE_BUFFER)
    words[:min_frame] = 0
    return words


class Ring:
    """What RX and TX rings share: memory, views, the armed window."""

    def __init__(self, device, queue: int, size: int, status_dword: int, done_bits: int,
                 word_table=None) -> None:
        self.queue = queue
        self.size = size
        self.mem = device.dma_alloc(size * DESC_BYTES)
        self.d64 = self.mem.array.view(np.uint64).reshape(size, 2)
        self.d32 = self.mem.array.view(np.uint32).reshape(size, 4)
        self.status = self.d32[:, status_dword]  # of the writeback format
        self.done_bits = done_bits  # in `status`: the NIC wrote this descriptor back
        self.descriptors = DescriptorRing(self.d64, word_table)  # RRefDeque.move_to_ring
        self.held = RRefDeque.new(Packet, size)  # the buffers of the armed slots, in order
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

    def completed(self, limit: int) -> int:
        """How many of the oldest armed slots the NIC has written back (`done_bits` set in
        their status: arming clears it), at most `limit`."""
        window = min(self.count, limit)
        if window <= 0:
            return 0
        column, done = self.status, self.done_bits
        if column[(self.oldest + window - 1) % self.size] & done:
            return window  # written back in ring order: the last one written means all are
        if not column[self.oldest] & done:
            return 0  # nor the first: none is (an idle poll; no vector temporaries)
        n = 0
        for slot, count in self.runs(self.oldest, window):
            written = (column[slot : slot + count] & done) != 0
            if written.all():
                n += count
                continue
            n += int(written.argmin())
            break
        return n

    def consume(self, n: int) -> None:
        self.oldest = (self.oldest + n) % self.size
        self.count -= n


class RxRing(Ring):
    def __init__(self, device, queue: int, size: int) -> None:
        # any status bit means written back (the 0 of the read format is cleared);
        # `deliver` then checks that each holds a whole frame (DD and EOP)
        super().__init__(device, queue, size, RX_STATUS_DWORD, 0xFFFF_FFFF)

    def deliver(self, n: int, collect) -> int:
        """Move (up to) the `n` oldest buffers to `collect`, as many as it has room for,
        each one's `len` set from its writeback (§7.1.6.2), which must have DD and EOP (one
        frame per buffer) and a length of at most MAX_FRAME: one registry call. They leave
        the ring; returns how many. A writeback without them is the NIC breaking the
        datasheet: IxgbeError (a panic), and nothing moves."""
        try:
            moved = self.held.move_from_ring(collect, n, self.descriptors, self.oldest, "len",
                                             RX_WRITEBACK)
        except ValueError as error:
            raise IxgbeError(f"rx queue {self.queue}: {error} (a frame larger than one buffer, "
                             "a writeback without DD, or a length past the buffer)") from None
        self.consume(moved)
        return moved

    def arm_from(self, packets) -> int:
        """Lend free buffers of `packets` to the NIC, as many as there are free slots: they
        move onto the ring and get read-format descriptors in the slots after the window
        (§7.1.6.1), in one registry call. Returns how many."""
        # {packet address, header address 0}: the 0 also clears the old writeback's DD
        n = packets.move_to_ring(self.held, self.size - 1 - self.count, "data",
                                 self.descriptors, (self.oldest + self.count) % self.size)
        self.count += n
        return n


class TxRing(Ring):
    def __init__(self, device, queue: int, size: int, min_frame: int, max_frame: int) -> None:
        # dword 3 holds PAYLEN << 14 until the writeback: only its DD bit says "sent"
        super().__init__(device, queue, size, TX_STATUS_DWORD, TX_STAT_DD,
                         _tx_words(min_frame, max_frame))

    def hand_back(self, n: int, collect) -> int:
        """Move up to `n` of the oldest (sent) buffers to `collect`, as many as it has room
        for: one registry call. They leave the ring. Returns how many."""
        moved = self.held.move_to(collect, n)
        self.consume(moved)
        return moved

    def post_from(self, packets, limit: int) -> int:
        """Send up to `limit` frames of `packets`: they move onto the ring in one registry
        call that also writes their advanced data descriptors (§7.2.3.2.4: one buffer per
        frame, RS on each), the second word looked up by frame length (which checks it:
        a length outside min_frame..max_frame refuses the batch, ValueError, and nothing
        moves). Returns how many."""
        n = packets.move_to_ring(self.held, min(limit, self.size - 1 - self.count), "data",
                                 self.descriptors, (self.oldest + self.count) % self.size,
                                 key="len")
        self.count += n
        return n
