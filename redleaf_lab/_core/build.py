"""cffi API-mode build of the C core: `redleaf_lab._core._redleaf_core`.

Purpose: compiles every C source in `csrc/` and the matching cdef declarations into one
extension module. setup.py names `redleaf_lab/_core/build.py:ffibuilder` in cffi_modules,
so `pip install -e .` builds it; `python redleaf_lab/_core/build.py` compiles it in place
(the .so lands next to this file) for quick iteration.

Interface: to add C code (device models, ...), append to CSOURCES (files in csrc/),
CHEADERS (headers the generated module must include) and CDEFS (cdef files next to this
one). Paths are resolved from this file's directory, so the build works from any cwd.

Locking/ownership: none here; the C files document their own locking. The build only
reads this directory; the in-place build compiles in a temporary directory and copies
only the finished extension next to this file.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")
MODULE_NAME = "redleaf_lab._core._redleaf_core"

# Calls into this module keep the GIL. cffi wraps each call in Py_BEGIN/END_ALLOW_THREADS;
# redefining the pair as a plain block in the preamble (which cffi places after Python.h)
# removes the release. Registry operations are short and constant-time, so holding the
# GIL costs nothing, saves ~50 ns per call (a third of a call's cost here), and makes
# each registry operation atomic with respect to other Python threads and to the
# kernel's asynchronous unwinding. C code that blocks or runs long (device models with
# their own threads) belongs in a separate cffi module that releases the GIL.
KEEP_GIL = """\
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
"""

CSOURCES = ["heap.c", "query.c", "arena.c", "bulk.c", "deque.c", "deque_move.c", "handle.c",
            "keepgil.c", "hashtable.c"]
CHEADERS = ["heap.h", "handle.h", "keepgil.h", "hashtable.h"]
CDEFS = ["heap.cdef", "handle.cdef", "keepgil.cdef", "hashtable.cdef"]


def _portable_path(path: str) -> str:
    """Relative to the cwd when below it (setuptools prefers relative sources), else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def make_ffi(module_name: str, sources: list[str], headers: list[str], cdefs: list[str],
             preamble: str = "", relative_paths: bool = True) -> FFI:
    """An API-mode FFI builder for C files in csrc/ and cdef files next to this one;
    absolute paths when it will chdir (compile()). build_dev.py uses it too."""
    resolve = _portable_path if relative_paths else os.path.abspath
    texts = []
    for name in cdefs:
        with open(os.path.join(HERE, name), encoding="utf-8") as handle:
            texts.append(handle.read())
    builder = FFI()
    builder.cdef("\n".join(texts))
    builder.set_source(
        module_name,
        preamble + "\n".join(f'#include "{header}"' for header in headers),
        sources=[resolve(os.path.join(CSRC, name)) for name in sources],
        include_dirs=[resolve(CSRC)],
        extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        libraries=["pthread"],
    )
    return builder


def make_builder(relative_paths: bool = True) -> FFI:
    """The core's builder: the shared heap, keeping the GIL."""
    return make_ffi(MODULE_NAME, CSOURCES, CHEADERS, CDEFS, KEEP_GIL, relative_paths)


ffibuilder = make_builder()


def build_in_place(factory: Callable[[bool], FFI] = make_builder, verbose: bool = False) -> str:
    """Compile an extension and copy it next to this file; returns the copied path."""
    with tempfile.TemporaryDirectory(prefix="redleaf-cffi-") as scratch:
        built = factory(False).compile(tmpdir=scratch, verbose=verbose)
        target = os.path.join(HERE, os.path.basename(built))
        # a new file renamed over the old one: processes that have the old module loaded
        # keep its inode (overwriting it in place crashed them with SIGBUS)
        staged = target + ".new"
        shutil.copyfile(built, staged)
        os.replace(staged, target)
    return target


if __name__ == "__main__":
    print(build_in_place(verbose="-v" in sys.argv[1:]))
