"""In-place build of the call gate extension `redleaf_lab._core._gate` (csrc/gate/*.c).

setup.py builds it with the package (`Extension(..., optional=True)`); this script
compiles only the gate, next to this file, for development:

    python redleaf_lab/_core/build_gate.py

It uses setuptools' own build_ext (same flags as setup.py) in a temporary directory and
copies the finished module here.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile

from setuptools import Distribution, Extension

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob(os.path.join(HERE, "csrc", "gate", "*.c")))


def build() -> str:
    """Compile the gate; returns the path of the module copied next to this file."""
    ext = Extension("redleaf_lab._core._gate", sources=SOURCES,
                    extra_compile_args=["-O2", "-std=c11"])
    with tempfile.TemporaryDirectory() as tmp:
        dist = Distribution({"name": "redleaf_lab_gate", "ext_modules": [ext]})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = os.path.join(tmp, "lib")
        cmd.build_temp = os.path.join(tmp, "tmp")
        cmd.ensure_finalized()
        cmd.run()
        built = cmd.get_ext_fullpath(ext.name)
        target = os.path.join(HERE, os.path.basename(built))
        shutil.copy2(built, target)
    return target


if __name__ == "__main__":
    print(build(), file=sys.stderr)
