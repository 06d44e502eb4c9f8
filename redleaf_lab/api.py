"""The domain-facing API: the only project module domain code may import from.

    from redleaf_lab.api import RRef, RRefDeque, Block, RpcError

Everything here is safe for a domain to hold: heap handles check ownership on
every access, layouts are immutable, errors are plain exceptions.
"""

from .errors import (
    BorrowedError,
    BorrowWriteError,
    DomainError,
    ExchangeError,
    HeapError,
    InvalidRequest,
    NotOwnerError,
    RpcError,
    StaleRefError,
    UseAfterMoveError,
)
from .heap import (
    BLOCK_SIZE,
    BlkReq,
    Block,
    Borrow,
    DescriptorRing,
    Layout,
    RRef,
    RRefArray,
    RRefBatch,
    RRefDeque,
    RRefVec,
    WritebackField,
)

__all__ = ["BLOCK_SIZE", "BlkReq", "Block", "Borrow", "BorrowWriteError", "BorrowedError",
           "DescriptorRing", "DomainError", "ExchangeError", "InvalidRequest", "HeapError", "Layout", "NotOwnerError", "RRef", "RRefArray",
           "RRefBatch", "RRefDeque", "RRefVec", "RpcError", "StaleRefError", "UseAfterMoveError",
           "WritebackField"]
