"""A Checksum domain that reaches for the operating system: the loader refuses it."""

import os
import zlib


class Crc32Service:
    def crc32(self, data) -> int:
        return zlib.crc32(data.array()) ^ (os.getpid() & 0)


def init(ctx):
    return Crc32Service()
