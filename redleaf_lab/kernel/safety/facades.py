"""Modules as domains see them: read-only façades that hold only allow-listed names.

An import statement in a domain binds a façade, never the module itself: a fresh module
object, not in sys.modules, that holds the module's public names, minus the ones this file refuses; a name that
is itself a module becomes a façade again (if its import is allowed), so no alias,
parameter or attribute chain reaches a module's own imports (`m = contextlib; m.os`).
Façades cannot be changed (`np.x = 1` raises: attribute stores on modules are refused)
or copied (modules cannot be pickled).

Some names are refused outright (`REFUSED_NAMES`: process-wide state, host files,
string-keyed attribute access, metaclasses) and some replaced by checked versions
(`functools.wraps`, `contextlib.suppress`, `abc.ABCMeta`, the enum bases,
`dataclasses.make_dataclass`...). `random` gets one generator per domain incarnation
(seeding it cannot change another domain's or the kernel's numbers), and
`dataclasses` one façade per incarnation (a `slots=True` dataclass is a new class that
must join the incarnation's own classes).

Façades of modules that have nothing per-incarnation are built once and shared.
"""

from __future__ import annotations

import contextlib
import functools
import random
import types
from collections.abc import Callable
from typing import Any

from redleaf_lab.errors import SafetyError

from . import classes, policy
from .classes import ClassPolicy

_PROCESS = "changes state shared by the whole process (the kernel and every domain)"
_HOST = "reaches the host's files"
_STRING_ATTRS = "reaches attributes by name, past the attribute checks"
_META = "is a metaclass: it creates classes outside the checks; subclass the base class"
_NUMPY_NAMES = frozenset({"byte_bounds", "loads", "dumps"})
_NUMPY_STATE = frozenset({"seterr", "seterrcall", "set_printoptions", "setbufsize",
                          "set_string_function", "seed", "set_state", "set_bit_generator"})

REFUSED_NAMES: dict[str, dict[str, str]] = {
    "contextlib": {
        "chdir": _PROCESS + " (the working directory)",
        "redirect_stdout": _PROCESS + " (sys.stdout)",
        "redirect_stderr": _PROCESS + " (sys.stderr)",
    },
    "copy": {"dispatch_table": _PROCESS + " (how every object is copied)"},
    "string": {"Formatter": _STRING_ATTRS + " (Formatter.get_field returns any attribute)"},
    "typing": {"get_type_hints": "evaluates strings in another module's namespace"},
    "enum": {"EnumMeta": _META, "EnumType": _META},
    "decimal": {
        "getcontext": _PROCESS + " (the thread's decimal context); use localcontext()",
        "setcontext": _PROCESS + " (the thread's decimal context); use localcontext()",
        "DefaultContext": _PROCESS + " (the template of every new thread's context)",
        "BasicContext": _PROCESS + " (a shared context object)",
        "ExtendedContext": _PROCESS + " (a shared context object)",
    },
}
"""Names refused on the façade of a module, with the reason shown in the SafetyError."""


def _refuse(message: str, rule: str = "module") -> SafetyError:
    return SafetyError("<runtime>", 0, rule, message)


# --------------------------------------------------------------------------
# Checked replacements
# --------------------------------------------------------------------------

_WRAPPER_ASSIGNMENTS = functools.WRAPPER_ASSIGNMENTS
_WRAPPER_UPDATES = functools.WRAPPER_UPDATES


def _safe_update_wrapper(wrapper: Any, wrapped: Any, assigned: Any = _WRAPPER_ASSIGNMENTS,
                         updated: Any = _WRAPPER_UPDATES) -> Any:
    if tuple(assigned) != tuple(_WRAPPER_ASSIGNMENTS) or tuple(updated) != tuple(
            _WRAPPER_UPDATES):
        raise _refuse("functools.update_wrapper/wraps with other `assigned`/`updated` names "
                      "refused: " + _STRING_ATTRS, "attribute")
    return functools.update_wrapper(wrapper, wrapped)


def _safe_wraps(wrapped: Any, assigned: Any = _WRAPPER_ASSIGNMENTS,
                updated: Any = _WRAPPER_UPDATES) -> Callable[[Any], Any]:
    return functools.partial(_safe_update_wrapper, wrapped=wrapped, assigned=assigned,
                             updated=updated)


def _safe_suppress(*exceptions: Any) -> contextlib.suppress:
    for exc in exceptions:
        if not (isinstance(exc, type) and issubclass(exc, Exception)):
            raise _refuse(
                f"contextlib.suppress({getattr(exc, '__name__', exc)!r}) refused: only "
                "subclasses of Exception may be suppressed (BaseException would swallow the "
                "kernel's unwinding)", "except")
    return contextlib.suppress(*exceptions)


def _dataclasses_facade_values(policy_: ClassPolicy) -> dict[str, Any]:
    import dataclasses

    def foreign(obj: Any) -> bool:
        cls = obj if isinstance(obj, type) else type(obj)
        return cls not in policy_.own and policy_.trusted(cls)

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(obj: Any, *args: Any, **kw: Any) -> Any:
            if foreign(obj):
                raise _refuse(f"dataclasses.{fn.__name__} of a {type(obj).__qualname__} "
                              "refused: it reads a trusted object's private fields", "attribute")
            return fn(obj, *args, **kw)
        call.__name__ = call.__qualname__ = fn.__name__
        return call

    def dataclass(cls: Any = None, /, **kw: Any) -> Any:
        def wrap(c: Any) -> Any:
            if foreign(c):
                raise _refuse(f"@dataclass on {c.__qualname__} refused: it is not the "
                              "domain's class", "class")
            made = dataclasses.dataclass(**kw)(c)
            if made is not c:  # slots=True builds a new class: check it, it is ours
                policy_.validate(made)
                policy_.own.add(made)
            return made
        return wrap if cls is None else wrap(cls)

    def make_dataclass(cls_name: str, fields: Any, **kw: Any) -> Any:
        made = dataclasses.make_dataclass(cls_name, fields, **kw)
        classes._check_created(made, "dataclass")
        return made

    values = _public_values(dataclasses)
    values.update(dataclass=dataclass, make_dataclass=make_dataclass)
    for name in ("fields", "asdict", "astuple", "replace"):
        values[name] = guarded(getattr(dataclasses, name))
    return values


def _random_facade_values() -> dict[str, Any]:
    generator = random.Random()
    values = _public_values(random)
    for name, value in list(values.items()):
        if isinstance(value, types.MethodType) and getattr(value, "__self__", None) is getattr(
                random, "_inst", None):
            values[name] = getattr(generator, name)
    return values


REPLACED: dict[str, dict[str, Any]] = {
    "functools": {"update_wrapper": _safe_update_wrapper, "wraps": _safe_wraps},
    "contextlib": {"suppress": _safe_suppress},
    "abc": {"ABCMeta": classes.CheckedABCMeta},
    "enum": {
        "Enum": classes.Enum,
        "IntEnum": classes.IntEnum,
        "StrEnum": classes.StrEnum,
        "Flag": classes.Flag,
        "IntFlag": classes.IntFlag,
    },
}


# --------------------------------------------------------------------------
# The façade
# --------------------------------------------------------------------------


def _refused_names(module_name: str) -> dict[str, str]:
    refused = dict(REFUSED_NAMES.get(module_name, {}))
    if module_name == "numpy" or module_name.startswith("numpy."):
        why = "is one of numpy's raw-memory or file corners"
        for name in policy.NUMPY_MODULE_ATTRS | policy.NUMPY_ANY_ATTRS | _NUMPY_NAMES:
            refused.setdefault(name, why)
        for name in _NUMPY_STATE:
            refused.setdefault(name, _PROCESS + " (numpy's error handling, printing or global "
                               "random state); use np.errstate(), np.printoptions() or "
                               "np.random.default_rng()")
    return refused


def _public_values(module: types.ModuleType) -> dict[str, Any]:
    """The module's loaded public names that are not modules and not refused."""
    refused = _refused_names(module.__name__)
    names = getattr(module, "__all__", None)
    items = vars(module).items() if names is None else (
        (n, vars(module).get(n)) for n in names if isinstance(n, str) and n in vars(module))
    values = {}
    for name, value in items:
        if name.startswith("_") or name in refused or isinstance(value, types.ModuleType):
            continue
        values[name] = value
    values.update(REPLACED.get(module.__name__, {}))
    return values


def _make(module: types.ModuleType, values: dict[str, Any],
          wrap: Callable[[types.ModuleType], Any]) -> types.ModuleType:
    """A fresh module object holding `values`; names not in it are looked up lazily by its
    module-level `__getattr__` (PEP 562), which refuses private and refused names and
    wraps submodules. A real module object keeps CPython's fast attribute path for
    `np.zeros` in hot loops; domain code cannot change it (attribute stores on modules
    are refused: safety.receiver, safety.runtime) nor reach its `__getattr__`."""
    module_name = module.__name__
    refused = _refused_names(module_name)
    facade = types.ModuleType(module_name, getattr(module, "__doc__", None))
    namespace = vars(facade)

    def lookup(name: str) -> Any:
        if name.startswith("_"):
            raise _refuse(f"{module_name}.{name} refused: private names of modules are escape "
                          "hatches", "private")
        if name in refused:
            raise _refuse(f"{module_name}.{name} refused: it {refused[name]}")
        value = getattr(module, name)  # AttributeError if there is no such name
        if isinstance(value, types.ModuleType):
            if not policy.is_allowed_import(value.__name__):
                raise _refuse(f"{module_name}.{name} refused: it is the module "
                              f"{value.__name__!r}, which domains may not use")
            value = wrap(value)
        namespace[name] = value
        return value

    namespace.update(values)
    namespace["__getattr__"] = lookup
    return facade


_SHARED: dict[str, types.ModuleType] = {}
_PER_INCARNATION = frozenset({"random", "dataclasses"})


class FacadeMaker:
    """The façades of one domain incarnation (shared ones come from a global cache)."""

    def __init__(self, class_policy: ClassPolicy) -> None:
        self.class_policy = class_policy
        self.own: dict[str, types.ModuleType] = {}

    def __call__(self, module: types.ModuleType) -> types.ModuleType:
        name = module.__name__
        if name in _PER_INCARNATION:
            facade = self.own.get(name)
            if facade is None:
                values = (_random_facade_values() if name == "random"
                          else _dataclasses_facade_values(self.class_policy))
                facade = self.own[name] = _make(module, values, self)
            return facade
        facade = _SHARED.get(name)
        if facade is None:
            facade = _SHARED[name] = _make(module, _public_values(module), self._shared)
        return facade

    @staticmethod
    def _shared(module: types.ModuleType) -> types.ModuleType:
        if module.__name__ in _PER_INCARNATION:  # e.g. statistics.random: the global RNG
            raise _refuse(f"{module.__name__!r} reached as another module's attribute "
                          f"refused: `import {module.__name__}` gives the domain its own")
        facade = _SHARED.get(module.__name__)
        if facade is None:
            facade = _SHARED[module.__name__] = _make(
                module, _public_values(module), FacadeMaker._shared)
        return facade
