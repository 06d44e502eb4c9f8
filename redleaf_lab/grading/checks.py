"""What every exercise checker shares: the failure type, a fresh kernel with a leak check,
and short descriptions of what went wrong inside a domain.

Interface: `ExerciseFailed` (an AssertionError, so nbgrader counts a failing test cell as
failed, and its message is what the student reads); `fresh_kernel(heap_mb)` boots a new
microkernel for one check and, when the check's body ended normally, shuts it down and
fails if anything leaked (no handle reaches it) or is still alive (the checker dropped all
its own objects, so a live one is held by the student's code); `panic_text(err)` is the driver's own error behind an RpcError.
Ownership: a checker owns the kernel and every device it makes, and closes them all, even
when the student's code failed.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RpcError, describe_exception
from ..kernel.kernel import Kernel, boot


class ExerciseFailed(AssertionError):
    """A graded check failed; the message says what the student's code did wrong."""


@contextmanager
def fresh_kernel(heap_mb: int = 64) -> Iterator[Kernel]:
    """A new kernel for one check; after a normal end, leaked heap objects fail the check."""
    kernel = boot(heap_bytes=heap_mb << 20)
    ok = False
    try:
        yield kernel
        ok = True
    finally:
        gc.collect()
        leaked = kernel.shutdown()
        gc.collect()
        alive = kernel.heap.stats().live_objects
    if ok and leaked["objects"]:
        raise ExerciseFailed(f"{leaked['objects']} heap objects ({leaked['bytes']} bytes) leaked: "
                             "nothing owns them any more and no handle reaches them")
    if ok and alive:
        raise ExerciseFailed(f"{alive} heap objects are still alive after the check: your code "
                             "keeps RRefs (in a global, a closure, a default argument) that it "
                             "should have given back or dropped")


@contextmanager
def workdir() -> Iterator[Path]:
    """A throwaway folder for the student's domain copies."""
    with tempfile.TemporaryDirectory(prefix="redleaf-grade-") as folder:
        yield Path(folder)


def panic_text(err: BaseException) -> str:
    """The domain's own error behind an RpcError (or the error itself), one line."""
    original = err.original if isinstance(err, RpcError) else None
    return describe_exception(original if original is not None else err)
