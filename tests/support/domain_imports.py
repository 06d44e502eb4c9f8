"""Plain imports of domain modules in tests, with their libraries linked as the loader does.

Unit tests import a domain's pure modules as ordinary Python
(`from redleaf_lab.domains.kvnet.frames import reply_frame`). Inside the kernel, a
domain's `from .inet import checksum` resolves to the domain library
`domains/lib/inet.py` that its manifest lists (kernel/loader.py); in a plain import the
same line looks for `redleaf_lab.domains.kvnet.inet`. This finder answers exactly those
names, for the libraries the domain's manifest lists, with the library module itself.
It is installed for the test session by tests/conftest.py; the product never uses it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import tomllib
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from redleaf_lab.kernel import loader

PREFIX = "redleaf_lab.domains."


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass


class LibraryFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        parts = fullname.split(".")
        if not fullname.startswith(PREFIX) or len(parts) != 4:
            return None
        domain, library = parts[2], parts[3]
        folder = loader.find_domains().get(domain)
        if folder is None:
            return None
        manifest = tomllib.loads((Path(folder) / loader.MANIFEST).read_text())
        if library not in manifest.get("libraries", []):
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(PREFIX + "lib." + library))


def install() -> None:
    if not any(isinstance(f, LibraryFinder) for f in sys.meta_path):
        sys.meta_path.append(LibraryFinder())
