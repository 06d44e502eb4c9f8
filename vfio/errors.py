"""VfioError: every failure of the VFIO layer, with the likely cause and the fix in its
message (not bound to vfio-pci, group not viable, no IOMMU, permission denied, bad BDF,
IOVA space exhausted, ...). `errno` carries the OS error number when there was one.
"""

from __future__ import annotations


class VfioError(RuntimeError):
    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
