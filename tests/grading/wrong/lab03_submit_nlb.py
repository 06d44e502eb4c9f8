# NLB written as a count (CDW12 is 0-based): the controller reads two pages.
def submit_run(self, opcode: int, nsid: int, iovas, slba: int) -> None:
    n = len(iovas)
    slot = self.tail
    prp2 = 0
    if n == 2:
        prp2 = int(iovas[1])
    elif n > 2:
        prp2 = self._list_page(slot)
        self.prp_lists[slot, : n - 1] = iovas[1:]
    shift = self.lba_shift
    self.sq64[slot] = (opcode | (slot << 16) | (nsid << 32), 0, 0, int(iovas[0]), prp2,
                       slba << shift, n << shift, 0)
    self.tail = (slot + 1) % self.size
    self.device.write32(self.sq_db, self.tail)
