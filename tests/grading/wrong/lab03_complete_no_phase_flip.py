# The head wraps, but the expected phase tag never inverts.
def reap_one(self, timeout: float = 5.0) -> int:
    head = self.head
    if (int(self.cq32[head, 3]) >> 16) & 1 != self.phase:
        self.spin(self.cq32, head, self.phase, timeout)
    status = (int(self.cq32[head, 3]) >> 17) & 0x7FF
    head += 1
    if head == self.size:
        head = 0
    self.head = head
    self.device.write32(self.cq_db, head)
    self.completed += 1
    return status
