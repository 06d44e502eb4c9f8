# Arms every slot: the tail catches up with the head, and RDT == RDH means "empty".
def arm_from(self, packets) -> int:
    n = packets.move_to_ring(self.held, self.size - self.count, "data",
                             self.descriptors, (self.oldest + self.count) % self.size)
    self.count += n
    return n
