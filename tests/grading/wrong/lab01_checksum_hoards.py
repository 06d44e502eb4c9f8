# Right CRC, but the domain keeps a heap object per call: the hidden test counts them.
import zlib

from redleaf_lab.api import Block, RRef


class Crc32Service:
    def __init__(self):
        self.seen = []

    def crc32(self, data) -> int:
        self.seen.append(RRef.new(Block))
        return zlib.crc32(data.array())


def init(ctx):
    return Crc32Service()


checksum_domain = init
