"""The run-time twins of the AST pass: a domain's builtins and importer.

`safe_builtins()` builds the `__builtins__` of a domain namespace (no refused
builtins; getattr/setattr/delattr/hasattr that refuse the attribute names the
AST pass refuses) and `make_importer()` builds its `__import__`, which refuses
the imports the AST pass refuses. Run-time refusals are `SafetyError`s with
filename RUNTIME_FILENAME ("<runtime>") and line 0.
"""

from __future__ import annotations

import builtins
import opcode
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from redleaf_lab.errors import SafetyError

from . import policy
from .classes import ClassPolicy
from .formatting import safe_format_attr
from .messages import (
    _frame_message,
    _import_message,
    _module_message,
    _numpy_message,
    _plain_project_import_message,
    _private_message,
)
from .policy import (
    _is_numpy_module,
    _is_project_module,
    _numpy_submodule_refused,
    is_allowed_import,
)

RUNTIME_FILENAME = "<runtime>"
_FORMAT_NAMES = frozenset({"format", "format_map"})

# --------------------------------------------------------------------------
# Run-time attribute checks
# --------------------------------------------------------------------------


def _runtime_attr_refusal(obj: Any, name: str) -> str | None:
    """Why getattr(obj, name) and friends are refused at run time, or None."""
    if name.startswith("_"):
        return (
            f"attribute name {name!r} refused: names starting with '_' cannot be "
            "reached through getattr/setattr/delattr/hasattr in a domain"
        )
    if name in policy.FRAME_ATTRS:
        return _frame_message(name)
    if name in policy.NUMPY_ANY_ATTRS:
        return _numpy_message(name)
    if (
        name in policy.NUMPY_MODULE_ATTRS
        and isinstance(obj, types.ModuleType)
        and _is_numpy_module(obj.__name__)
    ):
        return _numpy_message(name)
    return None


def _refuse_runtime(rule: str, message: str) -> SafetyError:
    return SafetyError(RUNTIME_FILENAME, 0, rule, message)


def _check_runtime_value(value: Any, name: str) -> None:
    if isinstance(value, types.ModuleType) and not is_allowed_import(value.__name__):
        raise _refuse_runtime("attribute", _module_message(name, value.__name__))


# --------------------------------------------------------------------------
# Run-time builtins
# --------------------------------------------------------------------------

_real_getattr = builtins.getattr
_real_setattr = builtins.setattr
_real_delattr = builtins.delattr
_real_hasattr = builtins.hasattr
_real_import = builtins.__import__


def _safe_getattr(obj: Any, name: str, *default: Any) -> Any:
    """getattr() for domains: refuses private, dunder, frame and numpy-escape names;
    `format`/`format_map` of a str come back checked (safety.formatting)."""
    if isinstance(name, str):
        why = _runtime_attr_refusal(obj, name)
        if why is not None:
            raise _refuse_runtime("attribute", why)
        if name in _FORMAT_NAMES and (obj is str or isinstance(obj, str)):
            return safe_format_attr(obj, name)
    value = _real_getattr(obj, name, *default)
    _check_runtime_value(value, name)
    return value


def _safe_hasattr(obj: Any, name: str) -> bool:
    """hasattr() for domains: refuses the names getattr() refuses."""
    if isinstance(name, str):
        why = _runtime_attr_refusal(obj, name)
        if why is not None:
            raise _refuse_runtime("attribute", why)
    return _real_hasattr(obj, name)


def _check_runtime_store(obj: Any, name: str) -> None:
    if isinstance(name, str):
        why = _runtime_attr_refusal(obj, name)
        if why is not None:
            raise _refuse_runtime("attribute", why)
    if isinstance(obj, types.ModuleType):
        raise _refuse_runtime(
            "attribute",
            f"changing attribute {name!r} of module {obj.__name__!r} refused: modules are "
            "shared by every domain and the kernel",
        )


def _safe_setattr(obj: Any, name: str, value: Any) -> None:
    """setattr() for domains: refuses the names getattr() refuses, and modules."""
    _check_runtime_store(obj, name)
    _real_setattr(obj, name, value)


def _safe_delattr(obj: Any, name: str) -> None:
    """delattr() for domains: refuses the names getattr() refuses, and modules."""
    _check_runtime_store(obj, name)
    _real_delattr(obj, name)


for _fn, _name in (
    (_safe_getattr, "getattr"),
    (_safe_hasattr, "hasattr"),
    (_safe_setattr, "setattr"),
    (_safe_delattr, "delattr"),
):
    _fn.__name__ = _name
    _fn.__qualname__ = _name
del _fn, _name

_KEPT_BUILTIN_DUNDERS = frozenset({"__build_class__", "__debug__", "__doc__", "__name__"})


def _standard_builtin(name: str, value: Any) -> bool:
    """True for the interpreter's own builtins (not site's or IPython's additions)."""
    if name.startswith("_"):
        return name in _KEPT_BUILTIN_DUNDERS
    if value is None or value is Ellipsis or value is NotImplemented or isinstance(value, bool):
        return True
    if isinstance(value, (type, types.BuiltinFunctionType)):
        return _real_getattr(value, "__module__", None) in {"builtins", None}
    return False


def safe_builtins(
    importer: Callable[..., Any], classes: ClassPolicy | None = None
) -> dict[str, Any]:
    """The `__builtins__` dict of a domain namespace.

    The interpreter's builtins minus REFUSED_BUILTINS, minus `__loader__`/`__spec__`
    (BuiltinImporter can load `posix`) and anything added by `site` or IPython
    (help, exit, license, get_ipython, display, ...); `__import__` is `importer`
    and getattr/setattr/delattr/hasattr refuse private, dunder, frame and numpy-escape
    names with a SafetyError (rule "attribute", filename "<runtime>", line 0).
    `__build_class__` and `__name__` are kept so class definitions work. With a
    `ClassPolicy`, `__build_class__` and `type` are its checked versions (every class
    the domain makes is checked and recorded, safety.classes).
    """
    table = {
        name: value
        for name, value in vars(builtins).items()
        if name not in policy.REFUSED_BUILTINS and _standard_builtin(name, value)
    }
    table["__import__"] = importer
    table["getattr"] = _safe_getattr
    table["hasattr"] = _safe_hasattr
    table["setattr"] = _safe_setattr
    table["delattr"] = _safe_delattr
    if classes is not None:
        table["__build_class__"] = classes.build_class
        table["type"] = classes.type_builtin()
        checked = classes

        def setattr_(obj: Any, name: str, value: Any) -> None:
            _check_runtime_store(obj, name)
            checked.check_store(obj, name)
            _real_setattr(obj, name, value)

        def delattr_(obj: Any, name: str) -> None:
            _check_runtime_store(obj, name)
            checked.check_store(obj, name)
            _real_delattr(obj, name)

        setattr_.__name__ = setattr_.__qualname__ = "setattr"
        delattr_.__name__ = delattr_.__qualname__ = "delattr"
        table["setattr"] = setattr_
        table["delattr"] = delattr_
    return table


# --------------------------------------------------------------------------
# Run-time importer
# --------------------------------------------------------------------------


def _public_names(module: Any) -> list[str]:
    names = _real_getattr(module, "__all__", None)
    if names is None:
        return [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if isinstance(n, str)]


_IMPORT_NAME = opcode.opmap["IMPORT_NAME"]


def _internal_import(fromlist: Any, level: int) -> bool:
    """Is this call C code's `PyImport_Import` rather than an import statement?

    `PyImport_Import` (what C extensions use to import lazily) looks up
    `__import__` in the builtins of the *current Python frame*, which is the
    domain's frame when domain code called into C, and passes an empty list
    as fromlist. An import statement (IMPORT_NAME) passes None or a tuple,
    and the calling frame is executing IMPORT_NAME.
    """
    if level != 0 or not isinstance(fromlist, list) or fromlist:
        return False
    try:
        frame = sys._getframe(2)
    except ValueError:  # no Python caller at all: C code
        return True
    code = frame.f_code.co_code
    return not (0 <= frame.f_lasti < len(code) and code[frame.f_lasti] == _IMPORT_NAME)


def make_importer(
    allowed: Callable[[str], bool] | None = None,
    local_modules: Callable[[str], Any] | None = None,
    facade: Callable[[types.ModuleType], Any] | None = None,
) -> Callable[..., Any]:
    """An `__import__` replacement for a domain namespace.

    Absolute imports: refused (SafetyError, rule "import", filename "<runtime>")
    unless `allowed(name)` (default: `is_allowed_import`); project modules only in
    the `from X import Y` form; private names in the fromlist, numpy's unsafe
    names, star imports from numpy or from project modules other than
    redleaf_lab.api, and fromlist names that turn out to be refused modules are
    refused too. Otherwise the real `builtins.__import__` does the work.

    Relative imports (the domain's own modules), level 1 only:
    `from .helper import f` returns `local_modules("helper")`;
    `from . import a, b` returns a namespace whose attributes `a`, `b` are
    `local_modules("a")`, `local_modules("b")`. `local_modules` returns a module
    object (or raises ImportError / returns None if there is no such module); if
    `local_modules("")` returns a package-like object it is used for
    `from . import a, b` instead. With `local_modules=None` relative imports are
    refused.

    Imports that C code performs for itself while a domain's frame is current
    (numpy's lazy `numpy._core._methods`, `time.strptime`'s `_strptime`) also
    arrive here, because CPython takes `__import__` from the current frame's
    builtins; they are recognised (empty *list* fromlist, caller not executing
    an import statement) and passed to the real `__import__` unchecked: the
    module goes to the C code, not into the domain's namespace.

    With `facade`, what an import statement binds is `facade(module)` (a read-only
    façade with only the allowed names, safety.facades), never the module itself.
    """
    check = allowed if allowed is not None else is_allowed_import

    def _refuse(message: str, rule: str = "import") -> SafetyError:
        return _refuse_runtime(rule, message)

    def _local(name: str) -> Any:
        assert local_modules is not None
        module = local_modules(name)
        if module is None:
            raise ImportError(f"the domain has no module {name!r}", name=name)
        return module

    def _relative(name: str, fromlist: tuple[str, ...], level: int) -> Any:
        if local_modules is None:
            raise _refuse(f"relative import of {name or '.'!r} refused: no domain modules here")
        if level != 1:
            raise _refuse("relative imports beyond the domain's own folder (`from ..`) are refused")
        if name:
            return _local(name)
        if "*" in fromlist:
            raise _refuse("`from . import *` refused: import the module's names explicitly")
        try:
            package = local_modules("")
        except ImportError:
            package = None
        if package is not None:
            return package
        return types.SimpleNamespace(**{item: _local(item) for item in fromlist})

    def _check_fromlist(name: str, module: Any, fromlist: tuple[str, ...]) -> None:
        for item in fromlist:
            if item == "*":
                if _is_numpy_module(name):
                    raise _refuse(f"`from {name} import *` refused: import names explicitly")
                if _is_project_module(name) and name not in policy.STAR_IMPORT_PROJECT_MODULES:
                    raise _refuse(
                        f"`from {name} import *` refused: star imports from project modules "
                        "are allowed only from redleaf_lab.api"
                    )
                for public in _public_names(module):
                    _check_runtime_value(vars(module).get(public), public)
                continue
            if item.startswith("_"):
                raise _refuse(f"`from {name} import {item}` refused: " + _private_message(item))
            if _is_numpy_module(name):
                if _numpy_submodule_refused(f"{name}.{item}"):
                    raise _refuse(_import_message(f"{name}.{item}"))
                if item in policy.NUMPY_ANY_ATTRS or item in policy.NUMPY_MODULE_ATTRS:
                    raise _refuse(_numpy_message(item), "numpy")
            value = _real_getattr(module, item, None)
            if isinstance(value, types.ModuleType) and not check(value.__name__):
                raise _refuse(_module_message(item, value.__name__))

    def importer(
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        if _internal_import(fromlist, level):
            # C code called by the domain imports a helper module for itself
            # (numpy's lazy imports, time.strptime's _strptime): the module
            # object goes to that C code, not into the domain's namespace.
            return _real_import(name, globals, locals, fromlist, level)
        items = tuple(fromlist or ())
        if level > 0:
            return _relative(name, items, level)
        if not check(name):
            raise _refuse(_import_message(name))
        if _is_project_module(name) and not items:
            raise _refuse(_plain_project_import_message(name))
        module = _real_import(name, globals, locals, items, 0)
        if items:
            _check_fromlist(name, module, items)
        return module if facade is None else facade(module)

    importer.__name__ = "__import__"
    importer.__qualname__ = "__import__"
    return importer
