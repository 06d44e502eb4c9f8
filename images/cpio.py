"""A minimal writer of cpio "newc" archives, the format the Linux kernel unpacks as an
initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).

Purpose: build the test guest's initramfs without root and without the cpio tool, with
device nodes (/dev/console) that an unprivileged mknod could not create. Interface:
`Archive().directory(path)`, `.file(path, data, mode)`, `.char_device(path, major, minor)`,
`.finish() -> bytes`. Each entry is a 110-byte ASCII header ("070701" and 13 8-digit hex
fields), the NUL-terminated name, and the data, both padded to 4 bytes; the archive ends
with an entry named "TRAILER!!!".
"""

from __future__ import annotations

import stat

MAGIC = b"070701"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


class Archive:
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        raw = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0]
        header = MAGIC + b"".join(b"%08X" % f for f in fields)
        self._parts += [header, raw, _pad(len(header) + len(raw)), data, _pad(len(data))]
        self._ino += 1

    def directory(self, path: str, mode: int = 0o755) -> None:
        self._entry(path, stat.S_IFDIR | mode, nlink=2)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(path, stat.S_IFREG | mode, data)

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        return b"".join(self._parts)
