"""The C core of RedLeaf Lab, compiled with cffi in API mode (see build.py).

Purpose: re-exports `ffi` and `lib` of the `_redleaf_core` extension: the shared-heap
arena and registry (csrc/heap.c) and, later, the device models. Use the typed wrapper in
`redleaf_lab._core.heap` rather than calling `lib` directly.

Locking/ownership: every `lib` call releases the GIL; the C code takes its own locks.
"""

from ._redleaf_core import ffi, lib

__all__ = ["ffi", "lib"]
