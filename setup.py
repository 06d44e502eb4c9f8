"""setuptools entry for the cffi API-mode extensions: redleaf_lab._core._redleaf_core
(shared heap, keeps the GIL) and redleaf_lab._core._redleaf_dev (device models, releases it).

Everything else lives in pyproject.toml; `cffi_modules` has no pyproject.toml key yet.
"""

from setuptools import setup

setup(
    cffi_modules=[
        "redleaf_lab/_core/build.py:ffibuilder",
        "redleaf_lab/_core/build_dev.py:ffibuilder",
    ]
)
