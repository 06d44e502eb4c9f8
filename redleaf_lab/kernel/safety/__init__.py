"""The safe-subset check for domain code: RedLeaf's `#![forbid(unsafe_code)]`.

RedLeaf builds isolation on Rust's type system: domains are compiled with
`#![forbid(unsafe_code)]`, so they can only reach memory the language lets them
reach. RedLeaf Lab's domains are Python folders; before the kernel loads one it
runs this package's AST check on every file, and it executes the domain in a
fresh namespace whose builtins come from `safe_builtins()` and whose imports go
through `make_importer()`.

The AST pass is the first of four layers; the others enforce at run time what
spelling cannot decide (see ARCHITECTURE.md, "Isolation"): `receiver` (private names
only on a method's checked receiver, checked attribute stores, checked `str.format`),
`classes` (every class a domain makes is checked; no metaclass is handed out),
`facades` (modules are read-only façades of allowed names) and `audit` (a CPython audit
hook refuses host operations while a thread is inside a domain). Together they hold
against the escape classes of `tests/security/`; they are not a sandbox against bugs in
the interpreter or in C extensions (README, "Honest limits").

Rules of the AST pass (rule id in brackets; `check_source` raises the first
violation in source order, `find_violations` returns all of them):

* [syntax]    the file does not parse.
* [import]    only the allow-lists below may be imported: `ALLOWED_STDLIB`,
              numpy minus `NUMPY_REFUSED_SUBMODULES`, and the domain API
              (`redleaf_lab.api`, `redleaf_lab.interfaces[.*]`), the latter only
              in the `from X import Y` form (`import redleaf_lab.api` would bind
              the name `redleaf_lab`, i.e. the whole trusted package). Star
              imports: not from numpy, and from project modules only from
              `redleaf_lab.api`. Relative imports (`from . import helper`) are
              the domain's own modules and are resolved at run time.
              Names imported from an allowed module that are themselves refused
              modules (`from dataclasses import sys`) are refused too.
* [builtin]   `REFUSED_BUILTINS` (eval, exec, compile, open, __import__,
              globals, locals, vars, breakpoint, input, help, exit, quit), used
              in any way, unless the name is rebound in the domain itself.
* [attribute] getattr/setattr/delattr/hasattr with a constant attribute name the
              attribute rules would refuse (e.g. `getattr(x, "__class__")`).
              With a computed name they are allowed: the run-time versions in
              `safe_builtins()` check the name.
* [dunder]    `x.__name__`-style attributes outside `ALLOWED_DUNDER_ATTRS`
              (`__class__`, `__globals__`, `__subclasses__`, `__dict__`, ...),
              and bare dunder names such as `__builtins__`, `__loader__`.
* [private]   `x._name` unless `x` is `self`/`cls`, the first parameter of a method
              written directly in a class body and bound nowhere else in it, or
              `super()` directly in such a method (the loader adds a run-time
              receiver check, safety.receiver); `from m import _name` for
              non-relative modules.
* [frame]     `FRAME_ATTRS`: frames, code objects, tracebacks (`tb_frame`,
              `f_globals`, `gi_frame`, `co_code`, ...).
* [numpy]     numpy's unsafe corners: `NUMPY_ANY_ATTRS` on any object
              (`arr.ctypes`, `as_strided`, `frombuffer`, `tofile`, `setflags`, ...),
              `NUMPY_MODULE_ATTRS` on names bound by numpy imports (`np.load`,
              `np.lib`, `np.memmap`, ...), `ndarray(...)`/`recarray(...)` with a
              buffer, offset or strides, and writes to `arr.flags`. Drivers reach
              device memory only through the Device capability; RRefs give
              numpy views.
* [module]    an attribute of an imported module that is itself a refused module
              (`dataclasses.sys`, `re.copyreg`), and assignments to attributes of
              modules (modules are shared by every domain and the kernel).
* [except]    bare `except:`, and catching `REFUSED_EXCEPT_NAMES`
              (BaseException, DomainUnwind, SystemExit, KeyboardInterrupt,
              GeneratorExit), also through `contextlib.suppress(...)`: they would
              swallow the kernel's asynchronous unwinding. Catch Exception.
* [attribute] also: storing into an attribute of anything but the receiver inside a
              tuple, loop, `with` or comprehension target, or a chained assignment.
* [generator] `yield`/`await` inside `try/finally`, a broad `except` or a `with`
              block (safety.generators).
* [global]    binding a dunder name (`__builtins__ = ...`, `import x as
              __builtins__`, ...) outside a class body, except `__all__`,
              `__version__`, `__author__`, `__doc__`. `global`/`nonlocal` are fine.

`async def` and `await` are allowed.

Run-time twins: `safe_builtins()` removes the refused builtins (and
`__loader__`/`__spec__`, interactive helpers and anything non-standard such as
IPython's `get_ipython`) and replaces getattr/setattr/delattr/hasattr with
versions that refuse the same attribute names; `make_importer()` refuses the
same imports as the AST pass. Run-time refusals are `SafetyError`s with
filename "<runtime>" and line 0.

The allow-lists are module-level frozensets; to extend one, rebind it, e.g.
`safety.ALLOWED_STDLIB = safety.ALLOWED_STDLIB | {"graphlib"}`: the checks read
them at call time. The package's constants are views of the submodule that
owns them (`safety.policy`; `safety.runtime` for RUNTIME_FILENAME): rebinding
`safety.X` rebinds `safety.policy.X` and vice versa. A name copied with
`from redleaf_lab.kernel.safety import X` is a snapshot, as with any module.

Layout of the package:

* `policy`     the allow-lists, refuse-lists and `is_allowed_import`.
* `messages`   the explanations attached to refusals (hints, message builders).
* `runtime`    `safe_builtins()`, the safe getattr & co, `make_importer()`.
* `ast_scopes` syntax-tree helpers of the AST pass (scopes, attribute chains).
* `ast_check`  the AST pass: `check_source`, `find_violations`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import policy, runtime
from .ast_check import check_source, find_violations
from .policy import (
    ALLOWED_DUNDER_ATTRS,
    ALLOWED_PROJECT_MODULES,
    ALLOWED_PROJECT_PACKAGES,
    ALLOWED_STDLIB,
    FRAME_ATTRS,
    NUMPY_ANY_ATTRS,
    NUMPY_MODULE_ATTRS,
    NUMPY_REFUSED_SUBMODULES,
    REFUSED_BUILTINS,
    REFUSED_DUNDER_ATTRS,
    REFUSED_EXCEPT_NAMES,
    STAR_IMPORT_PROJECT_MODULES,
    is_allowed_import,
)
from .runtime import RUNTIME_FILENAME, make_importer, safe_builtins

__all__ = [
    "ALLOWED_DUNDER_ATTRS",
    "ALLOWED_PROJECT_MODULES",
    "ALLOWED_PROJECT_PACKAGES",
    "ALLOWED_STDLIB",
    "FRAME_ATTRS",
    "NUMPY_ANY_ATTRS",
    "NUMPY_MODULE_ATTRS",
    "NUMPY_REFUSED_SUBMODULES",
    "REFUSED_BUILTINS",
    "REFUSED_DUNDER_ATTRS",
    "REFUSED_EXCEPT_NAMES",
    "RUNTIME_FILENAME",
    "STAR_IMPORT_PROJECT_MODULES",
    "check_source",
    "find_violations",
    "is_allowed_import",
    "make_importer",
    "safe_builtins",
]

# --------------------------------------------------------------------------
# Rebinding the constants on the package
# --------------------------------------------------------------------------
#
# The checks read each constant from the submodule that owns it, at call time.
# So that `safety.ALLOWED_STDLIB = ...` keeps extending the checks, this
# package's module object gets a ModuleType subclass whose properties read and
# rebind the constants in their owning submodule; the copies the imports above
# put in the package namespace are removed, so there is one source of truth.
# (The static imports stay for type checkers and readers.)

_OWNERS: dict[str, types.ModuleType] = {
    **dict.fromkeys(
        (
            "ALLOWED_DUNDER_ATTRS",
            "ALLOWED_PROJECT_MODULES",
            "ALLOWED_PROJECT_PACKAGES",
            "ALLOWED_STDLIB",
            "FRAME_ATTRS",
            "NUMPY_ANY_ATTRS",
            "NUMPY_MODULE_ATTRS",
            "NUMPY_REFUSED_SUBMODULES",
            "REFUSED_BUILTINS",
            "REFUSED_DUNDER_ATTRS",
            "REFUSED_EXCEPT_NAMES",
            "STAR_IMPORT_PROJECT_MODULES",
        ),
        policy,
    ),
    "RUNTIME_FILENAME": runtime,
}


def _forwarding(name: str, owner: types.ModuleType) -> property:
    """A property reading and rebinding `owner.<name>`."""

    def read(_package: types.ModuleType) -> Any:
        return getattr(owner, name)

    def rebind(_package: types.ModuleType, value: Any) -> None:
        setattr(owner, name, value)

    return property(read, rebind, doc=f"{owner.__name__}.{name}")


class _SafetyPackage(types.ModuleType):
    """The type of this package's module object: its constants live in submodules."""


for _name, _owner in _OWNERS.items():
    setattr(_SafetyPackage, _name, _forwarding(_name, _owner))
    del globals()[_name]
del _name, _owner

sys.modules[__name__].__class__ = _SafetyPackage
