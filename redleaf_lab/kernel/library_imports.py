"""Plain imports of domain modules, with their libraries linked as the loader does.

Trusted code (tests, the grader, a lab's reference solution) sometimes imports a
domain's pure modules as ordinary Python (`from redleaf_lab.domains.netstack.tcp_rto
import Rto`). Inside the kernel, a domain's `from .inet import checksum` resolves to the
domain library `domains/lib/inet.py` that its manifest lists (kernel/loader.py); in a
plain import the same line looks for `redleaf_lab.domains.netstack.inet`. This finder
answers exactly those names (`redleaf_lab.{domains,drivers}.<domain>.<library>`, for a
library the domain's manifest lists) with the library's file, one module per domain as
in the kernel. The domains and drivers packages install it when imported. Domains never import these packages (the safe subset refuses it), so
this changes nothing a domain can reach.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import tomllib
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGES = ("redleaf_lab.domains", "redleaf_lab.drivers")


class LibraryFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        package, _, rest = fullname.rpartition(".")
        parent, _, domain = package.rpartition(".")
        if parent not in PACKAGES or domain == "lib":
            return None
        from . import loader  # lazily: the kernel imports these packages itself

        listed: list[str] = []
        for root in sys.modules[parent].__path__:  # the package being imported from
            try:
                manifest = tomllib.loads((Path(root) / domain / loader.MANIFEST).read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            listed = list(manifest.get("libraries", []))
            break
        if rest not in listed:
            return None
        # its own module object per domain, as in the kernel: no state shared across them
        return importlib.util.spec_from_file_location(fullname, loader.find_library(rest))


def install() -> None:
    """Add the finder to sys.meta_path once per process."""
    if not any(isinstance(f, LibraryFinder) for f in sys.meta_path):
        sys.meta_path.append(LibraryFinder())
