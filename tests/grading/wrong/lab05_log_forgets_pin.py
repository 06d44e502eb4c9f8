# Absorbs repeats but never pins the buffer: a small cache evicts it before the commit.
def log_write(self, buf):
    if self.outstanding < 1:
        raise RuntimeError("log_write outside a transaction")
    if buf.blockno in self.blocks:
        return
    if len(self.blocks) >= self.size:
        raise RuntimeError("log_write: transaction too big for the log")
    self.blocks.append(buf.blockno)
