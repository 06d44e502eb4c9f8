"""setuptools entry for the compiled extensions: the cffi API-mode modules
redleaf_lab._core._redleaf_core (shared heap, keeps the GIL) and redleaf_lab._core._redleaf_dev
(device models, releases it), and the call gate redleaf_lab._core._gate (a CPython
extension type, csrc/gate/gate.c; optional: without a compiler the project runs on the
generated Python proxies and says so).

Everything else lives in pyproject.toml; `cffi_modules` has no pyproject.toml key yet.
"""

import glob

from setuptools import Extension, setup

setup(
    cffi_modules=[
        "redleaf_lab/_core/build.py:ffibuilder",
        "redleaf_lab/_core/build_dev.py:ffibuilder",
    ],
    ext_modules=[
        Extension(
            "redleaf_lab._core._gate",
            sources=sorted(glob.glob("redleaf_lab/_core/csrc/gate/*.c")),
            depends=glob.glob("redleaf_lab/_core/csrc/gate/*.h"),
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
    ],
)
