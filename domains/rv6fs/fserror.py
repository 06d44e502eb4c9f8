"""Errors inside the file-system domain.

`FsError(errno)` is an expected failure of one call (a missing file, a full disk): the
syscall layer (sysfile.py) turns it into the negative errno the caller gets. `MountError`
refuses a malformed image when the domain starts (init fails with a clear message; the
kernel reports it to whoever loaded the domain). Anything else raised inside the domain
is a bug: a panic, which the core domain sees as an RpcError and answers with EIO.
"""


class FsError(Exception):
    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why)
        self.errno = errno
        self.why = why


class MountError(Exception):
    """The image cannot be mounted: the message names the broken field."""
