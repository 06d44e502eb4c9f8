# Waits for the completion with an unbounded loop on the wrong phase: it never ends.
def reap_one(self, timeout: float = 5.0) -> int:
    while (int(self.cq32[self.head, 3]) >> 16) & 1 == self.phase:
        pass
    return 0
