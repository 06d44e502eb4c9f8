"""Inline device-model passes that keep the GIL (see csrc/keepgil.h for why).

`pass_pointers(fn, raw)` turns a `_redleaf_dev` function pointer and model pointer into
`_redleaf_core` `void *`s; `call_keeping_gil(fn, arg)` then runs the pass without
releasing the GIL. The sim NVMe backend uses it for control-register and admin-queue
writes in inline mode (I/O doorbells still release the GIL: a pass may move megabytes);
the sim 82599 backend uses it for every inline pass (one batch of packets: microseconds).
"""

from __future__ import annotations

from typing import Any

from .._core import ffi as core_ffi
from .._core import lib as core_lib
from .._core._redleaf_dev import ffi as dev_ffi

call_keeping_gil = core_lib.rl_call_keeping_gil


def pass_pointers(fn: Any, raw: Any) -> tuple[Any, Any]:
    """(function, argument) as the core module's `void *`s."""
    fn_address = int(dev_ffi.cast("uintptr_t", fn))
    raw_address = int(dev_ffi.cast("uintptr_t", raw))
    return core_ffi.cast("void *", fn_address), core_ffi.cast("void *", raw_address)
