"""The shared heap as domains see it: layouts, RRef and its containers."""

from .batch import RRefBatch
from .containers import RRefArray, RRefDeque
from .deque_ops import DescriptorRing, WritebackField
from .layout import BLOCK_SIZE, BlkReq, Block, Layout
from .rref import Borrow, HeapObject, RRef
from .vec import RRefVec

__all__ = ["BLOCK_SIZE", "BlkReq", "Block", "Borrow", "DescriptorRing", "HeapObject", "Layout", "RRef",
           "RRefArray", "RRefBatch", "RRefDeque", "RRefVec", "WritebackField"]
