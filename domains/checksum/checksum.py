"""The checksum domain: CRC-32 over a borrowed block, without taking ownership."""

import zlib


class ChecksumService:
    def __init__(self) -> None:
        self.calls = 0

    def crc32(self, data) -> int:
        self.calls += 1
        return zlib.crc32(data.array())


def init(ctx) -> ChecksumService:
    ctx.log("checksum service ready")
    return ChecksumService()
