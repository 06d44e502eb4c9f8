"""RedLeaf Lab: RedLeaf's isolation domains, shared heap, proxies and recovery, in Python.

    import redleaf_lab
    kernel = redleaf_lab.boot()
    kv = kernel.load("kvstore", checksum=kernel.load("checksum"))

The public surface is re-exported here; `redleaf_lab.api` is what domain code
may import.
"""

from __future__ import annotations

from .errors import (
    BorrowedError,
    BorrowWriteError,
    DomainError,
    DomainLoadError,
    ExchangeError,
    HeapError,
    InterfaceError,
    InvalidRequest,
    NotOwnerError,
    RpcError,
    SafetyError,
    StaleRefError,
    UseAfterMoveError,
)
from .heap import BlkReq, Block, Layout, RRef, RRefArray, RRefDeque, RRefVec
from .idl import Borrowed, Interface, proxy_source
from .kernel.kernel import Kernel, boot

__version__ = "0.1.0"


def load_ipython_extension(ip: object) -> None:
    """`%load_ext redleaf_lab`: register `%redleaf` and boot a lab session (lazy import)."""
    from .jupyter import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: object) -> None:
    from .jupyter import unload_ipython_extension as unload

    unload(ip)


__all__ = [
    "BlkReq",
    "Block",
    "Borrowed",
    "BorrowWriteError",
    "BorrowedError",
    "DomainError",
    "DomainLoadError",
    "ExchangeError",
    "HeapError",
    "Interface",
    "InterfaceError",
    "InvalidRequest",
    "Kernel",
    "Layout",
    "NotOwnerError",
    "RRef",
    "RRefArray",
    "RRefDeque",
    "RRefVec",
    "RpcError",
    "SafetyError",
    "StaleRefError",
    "UseAfterMoveError",
    "boot",
    "load_ipython_extension",
    "proxy_source",
    "unload_ipython_extension",
]

