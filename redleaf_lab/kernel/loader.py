"""The domain loader: manifest, safe-subset check, compile once, run many times.

A domain is a folder with a `domain.toml` manifest and Python files:

    name = "kvstore"
    description = "A key-value store of 4 KiB blocks"
    entry = "kvstore.py"                          # defines init(ctx, **caps)
    provides = "redleaf_lab.interfaces.kv:KV"     # the interface init() implements
    [needs]                                       # capabilities init() expects
    checksum = "redleaf_lab.interfaces.checksum:Checksum"   # a proxy of this interface
    store = "object"                              # a trusted kernel object (device, store)

`load_image(folder)` reads the manifest, runs the safe-subset check on every
.py file (`kernel.safety`) and compiles them: a `DomainImage`, cached by
folder and file modification times. Restarts reuse the image: they never
re-parse. `instantiate(image, domain)` executes the cached code objects in
fresh module namespaces with restricted builtins; relative imports resolve
to the domain's own files (`from . import log`), each incarnation getting
its own copies. `find_domains()` lists the folders under drivers/ and
domains/ that have a manifest: adding a domain touches only its folder.

Domain libraries. Code that several domains need (the Internet checksum, ARP
replies) lives once, as a file in a `lib/` folder under drivers/ or domains/
(`domains/lib/inet.py`), and a manifest asks for it by name:

    libraries = ["inet"]                          # then `from .inet import checksum`

The loader checks and compiles the library like the domain's own files and adds
it to the image as one more module of the domain, as RedLeaf links a crate into
each domain's ELF: every incarnation executes its own copy, so two domains that
use a library share its text, never its state. A library has no `init` and no
manifest; its name must not clash with one of the domain's files.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DomainLoadError, SafetyError
from ..idl.interface import Interface
from . import safety
from .safety import receiver
from .safety.classes import ClassPolicy
from .safety.facades import FacadeMaker
from .safety.formatting import safe_format_attr
from .safety.parsing import compile_tree, parse
from .safety.receiver import insert_guards

MANIFEST = "domain.toml"
LIBRARY_FOLDER = "lib"  # domain libraries: <root>/lib/<name>.py under each search root


@dataclass(frozen=True)
class DomainImage:
    name: str
    path: Path
    description: str
    entry: str
    provides: type[Interface]
    needs: dict[str, type[Interface] | None]
    modules: dict[str, types.CodeType] = field(repr=False)
    stamp: tuple[tuple[str, float], ...] = field(repr=False)
    libraries: tuple[str, ...] = ()  # the domain libraries linked in (also in `modules`)


_CACHE: dict[Path, DomainImage] = {}


def search_roots() -> list[Path]:
    packages = [importlib.import_module(f"redleaf_lab.{name}") for name in ("drivers", "domains")]
    roots = [Path(p) for pkg in packages for p in pkg.__path__]
    extra = os.environ.get("REDLEAF_LAB_DOMAIN_PATH", "")
    roots.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return roots


def find_domains() -> dict[str, Path]:
    """Every domain folder on the search path, by manifest name."""
    found: dict[str, Path] = {}
    for root in search_roots():
        if not root.is_dir():
            continue
        for manifest in sorted(root.glob(f"*/{MANIFEST}")):
            try:
                name = tomllib.loads(manifest.read_text()).get("name", manifest.parent.name)
            except tomllib.TOMLDecodeError:
                name = manifest.parent.name
            found.setdefault(str(name), manifest.parent)
    return found


def resolve(what: str | os.PathLike[str]) -> Path:
    """A domain name (found under drivers/ and domains/ and REDLEAF_LAB_DOMAIN_PATH) or a
    folder path (a `Path`, or a string with a path separator: `./membdev`, `/x/y`).

    A bare name is never looked up in the working directory: a folder called `membdev`
    there must not silently replace the real driver."""
    is_path = not isinstance(what, str) or os.sep in what or (
        os.altsep is not None and os.altsep in what) or what in (".", "..")
    if is_path:
        path = Path(what)
        if path.is_dir():
            return path.resolve()
        raise DomainLoadError(f"no domain folder at {str(path)!r}")
    known = find_domains()
    if what in known:
        return known[what].resolve()
    raise DomainLoadError(
        f"no domain named {what!r} (known: {', '.join(sorted(known)) or 'none'}); "
        "give a folder path or put the domain under drivers/ or domains/"
    )


def _import_symbol(ref: str, where: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise DomainLoadError(f"{where}: {ref!r} must look like 'package.module:Name'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise DomainLoadError(f"{where}: cannot import {ref!r}: {exc}") from exc


def _stamp(folder: Path) -> tuple[tuple[str, float], ...]:
    files = sorted([folder / MANIFEST, *folder.glob("*.py")])
    return tuple((f.name, f.stat().st_mtime) for f in files if f.exists())


def find_library(name: str) -> Path:
    """The file of domain library `name` (`lib/<name>.py` under a search root)."""
    if not name.isidentifier():
        raise DomainLoadError(f"{name!r} is not a library name (a Python identifier)")
    roots = search_roots()
    for root in roots:
        path = root / LIBRARY_FOLDER / f"{name}.py"
        if path.is_file():
            return path
    raise DomainLoadError(f"no domain library {name!r} (looked for {LIBRARY_FOLDER}/{name}.py "
                          f"under {', '.join(str(r) for r in roots)})")


_LIBRARY_CACHE: dict[Path, tuple[float, types.CodeType]] = {}


def _library_code(path: Path) -> types.CodeType:
    """A library checked and compiled like a domain's file (cached until it changes)."""
    mtime = path.stat().st_mtime
    cached = _LIBRARY_CACHE.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    source = path.read_text()
    safety.check_source(source, str(path))  # raises SafetyError
    code = compile_tree(insert_guards(parse(source, str(path))), str(path))
    _LIBRARY_CACHE[path] = (mtime, code)
    return code


def _link_libraries(names: Any, modules: dict[str, types.CodeType], where: str
                    ) -> tuple[tuple[str, ...], tuple[tuple[str, float], ...]]:
    """Add the libraries `names` to `modules`; returns their names and their stamp."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise DomainLoadError(f"{where}: `libraries` must be a list of library names")
    if len(set(names)) != len(names):
        raise DomainLoadError(f"{where}: `libraries` names a library twice: {list(names)}")
    stamp = []
    for name in names:
        if name in modules:
            raise DomainLoadError(f"{where}: library {name!r} has the name of one of the "
                                  "domain's own modules")
        path = find_library(name)
        modules[name] = _library_code(path)
        stamp.append((f"{LIBRARY_FOLDER}/{name}.py", path.stat().st_mtime))
    return tuple(names), tuple(stamp)


def _library_stamp(names: tuple[str, ...]) -> tuple[tuple[str, float], ...] | None:
    try:
        return tuple((f"{LIBRARY_FOLDER}/{n}.py", find_library(n).stat().st_mtime)
                     for n in names)
    except (DomainLoadError, OSError):
        return None  # gone: reload, which says so


def load_image(what: str | os.PathLike[str]) -> DomainImage:
    """Check and compile a domain folder (cached until its files or libraries change)."""
    folder = resolve(what)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise DomainLoadError(f"{folder}: no {MANIFEST} manifest")
    stamp = _stamp(folder)
    cached = _CACHE.get(folder)
    if cached is not None and cached.stamp[:len(stamp)] == stamp and \
            cached.stamp[len(stamp):] == _library_stamp(cached.libraries):
        return cached
    try:
        manifest = tomllib.loads(manifest_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise DomainLoadError(f"{manifest_path}: {exc}") from exc
    name = str(manifest.get("name", folder.name))
    entry = str(manifest.get("entry", f"{folder.name}.py"))
    if "provides" not in manifest:
        raise DomainLoadError(f"{manifest_path}: the manifest must say what it `provides`")
    provides = _import_symbol(str(manifest["provides"]), str(manifest_path))
    if not (isinstance(provides, type) and issubclass(provides, Interface)):
        raise DomainLoadError(f"{manifest_path}: provides {provides!r}, which is not an Interface")
    needs: dict[str, type[Interface] | None] = {}
    for cap, ref in dict(manifest.get("needs", {})).items():
        needs[cap] = None if ref == "object" else _import_symbol(str(ref), str(manifest_path))
    modules: dict[str, types.CodeType] = {}
    for source_path in sorted(folder.glob("*.py")):
        source = source_path.read_text()
        safety.check_source(source, str(source_path))  # raises SafetyError
        tree = insert_guards(parse(source, str(source_path)))
        modules[source_path.stem] = compile_tree(tree, str(source_path))
    entry_module = Path(entry).stem
    if entry_module not in modules:
        raise DomainLoadError(f"{manifest_path}: entry file {entry!r} not found in {folder}")
    libraries, library_stamp = _link_libraries(manifest.get("libraries", []), modules,
                                               str(manifest_path))
    image = DomainImage(
        name=name, path=folder, description=str(manifest.get("description", "")),
        entry=entry_module, provides=provides, needs=needs, modules=modules,
        stamp=stamp + library_stamp, libraries=libraries,
    )
    _CACHE[folder] = image
    return image


_SOURCE_CACHE: dict[tuple[str, str, str], types.CodeType] = {}
_SOURCE_CACHE_LIMIT = 128


def image_from_sources(name: str, sources: dict[str, str], entry: str,
                       provides: type[Interface], needs: dict[str, type[Interface] | None],
                       origin: str, libraries: tuple[str, ...] = ()) -> DomainImage:
    """A domain image from source text instead of a folder (Rv6 loads user programs read
    from its own file system this way, as RedLeaf loads an ELF). Every module gets the
    same safe-subset check, guard rewrite and compile as a folder's files (SafetyError
    names `origin/module.py`); compiled code is cached by text, so spawning a program
    again does not re-check it. Only trusted code calls this: it picks `provides` and
    `needs`, and the capabilities come from whoever loads the image."""
    modules: dict[str, types.CodeType] = {}
    for module, source in sources.items():
        filename = f"{origin}/{module}.py"
        key = (filename, module, source)
        code = _SOURCE_CACHE.get(key)
        if code is None:
            safety.check_source(source, filename)  # raises SafetyError
            tree = insert_guards(parse(source, filename))
            code = compile_tree(tree, filename)
            if len(_SOURCE_CACHE) >= _SOURCE_CACHE_LIMIT:
                _SOURCE_CACHE.pop(next(iter(_SOURCE_CACHE)))
            _SOURCE_CACHE[key] = code
        modules[module] = code
    if entry not in modules:
        raise DomainLoadError(f"{origin}: no entry module {entry!r}")
    linked, _ = _link_libraries(list(libraries), modules, origin)
    return DomainImage(name=name, path=Path(origin), description=f"loaded from {origin}",
                       entry=entry, provides=provides, needs=needs, modules=modules, stamp=(),
                       libraries=linked)


class _DomainNamespace:
    """The modules of one incarnation, executed lazily on first import."""

    def __init__(self, image: DomainImage, prefix: str) -> None:
        self.image = image
        self.prefix = prefix
        self.package = types.ModuleType(prefix)
        self.package.__path__ = []  # marks it as a package for relative imports
        self.modules: dict[str, types.ModuleType] = {}
        # The classes this incarnation makes (checked, recorded for the receiver guard)
        # and the module façades its imports bind.
        self.classes = ClassPolicy(prefix)
        self.importer = safety.make_importer(
            local_modules=self.local_module, facade=FacadeMaker(self.classes))
        self.builtins = safety.safe_builtins(self.importer, self.classes)
        self.guard_names = {
            receiver.OWN_SET: self.classes.own,
            receiver.REAL_TYPE: type,
            receiver.STRANGER: ClassPolicy.stranger,
            receiver.CLASS_OK: self.classes.class_ok,
            receiver.SAFE_FORMAT: safe_format_attr,
        }
        stores = self.classes.store_functions()
        self.guard_names.update(zip(
            (receiver.STORE_ATTR, receiver.AUG_ATTR, receiver.DEL_ATTR), stores, strict=True))

    def local_module(self, name: str) -> types.ModuleType:
        """Resolve `from . import name` / `from .name import x` inside the domain."""
        if not name:
            return self.package
        if name in self.modules:
            return self.modules[name]
        code = self.image.modules.get(name)
        if code is None:
            raise ImportError(f"domain {self.image.name} has no module {name!r}")
        module = types.ModuleType(f"{self.prefix}.{name}")
        module.__dict__["__builtins__"] = self.builtins
        module.__dict__["__package__"] = self.prefix
        module.__dict__["__file__"] = code.co_filename  # a library's own file, too
        module.__dict__.update(self.guard_names)
        self.modules[name] = module
        # Registered so that dataclasses/typing can resolve the module by name; the kernel
        # removes it when the incarnation ends (`forget`), so crashes leak nothing.
        sys.modules[module.__name__] = module
        setattr(self.package, name, module)
        exec(code, module.__dict__)
        return module


def module_prefix(image: DomainImage, incarnation_id: int) -> str:
    return f"redleaf_domain.{image.name}.d{incarnation_id}"


def forget(image: DomainImage, incarnation_id: int) -> None:
    """Drop an ended incarnation's modules from sys.modules."""
    prefix = module_prefix(image, incarnation_id) + "."
    # list(): one C-level copy of the keys. Iterating sys.modules itself lets another
    # thread import (another domain loading) between two steps and the walk fails with
    # "dictionary changed size during iteration" in the middle of a crash or a stop.
    for name in [n for n in list(sys.modules) if n.startswith(prefix)]:
        sys.modules.pop(name, None)  # another forget of the same incarnation may race


def instantiate(image: DomainImage, incarnation_id: int) -> types.ModuleType:
    """Execute the domain's cached code in fresh namespaces; returns the entry module."""
    namespace = _DomainNamespace(image, module_prefix(image, incarnation_id))

    def lazy(attr: str) -> types.ModuleType:
        if attr in image.modules:
            return namespace.local_module(attr)
        raise AttributeError(attr)

    namespace.package.__dict__["__getattr__"] = lazy
    try:
        return namespace.local_module(image.entry)
    except SafetyError:
        raise
    except ImportError as exc:
        raise DomainLoadError(f"{image.name}: {exc}") from exc
