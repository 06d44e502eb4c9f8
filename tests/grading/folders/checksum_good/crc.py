"""A student's Checksum domain in a folder of its own: CRC-32 of a borrowed block."""

import zlib

from .table import POLY


class Crc32Service:
    def crc32(self, data) -> int:
        assert POLY == 0xEDB88320  # a second file of the domain, imported relatively
        return zlib.crc32(data.array())


def init(ctx):
    return Crc32Service()
