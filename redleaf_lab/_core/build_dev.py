"""cffi API-mode build of the device models: `redleaf_lab._core._redleaf_dev`.

Purpose: compiles the C device models (csrc/nvme_*.c: the NVMe controller model and the
C baseline host loop) into a second extension module. Unlike `_redleaf_core` (build.py),
this module RELEASES the GIL around every call: device models run long passes, block in
their own threads (nvm_stop_thread joins) and never touch Python objects, so Python
threads (the driver) run while the model works. setup.py names
`redleaf_lab/_core/build_dev.py:ffibuilder` in cffi_modules; `python
redleaf_lab/_core/build_dev.py` compiles it in place for quick iteration.

Interface: CSOURCES/CHEADERS/CDEFS as in build.py. Locking/ownership: none here; see
csrc/nvme_model.h for the model's locking and memory-ordering rules.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")
MODULE_NAME = "redleaf_lab._core._redleaf_dev"

CSOURCES = ["nvme_model.c", "nvme_cmd.c", "nvme_host.c", "ixgbe_model.c", "ixgbe_ring.c",
            "ixgbe_wire.c", "ixgbe_host.c", "hashtable.c", "maglev_host.c", "kv_host.c"]
CHEADERS = ["nvme_model.h", "ixgbe_model.h", "maglev_host.h", "kv_host.h"]
CDEFS = ["nvme.cdef", "ixgbe.cdef", "maglev.cdef", "kv.cdef"]


def _core_build() -> Any:
    """build.py, loaded by path: cffi runs this file as a script, without its package."""
    spec = importlib.util.spec_from_file_location("_redleaf_core_build",
                                                  os.path.join(HERE, "build.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_build = _core_build()


def make_builder(relative_paths: bool = True) -> FFI:
    """The device models' builder: no KEEP_GIL preamble, so calls release the GIL."""
    builder: FFI = _build.make_ffi(MODULE_NAME, CSOURCES, CHEADERS, CDEFS, "", relative_paths)
    return builder


ffibuilder = make_builder()


if __name__ == "__main__":
    print(_build.build_in_place(make_builder, verbose="-v" in sys.argv[1:]))
