"""Classes a domain creates: checked at creation, recorded for the receiver guard.

Every class a domain makes goes through one check, `ClassPolicy.validate`, whichever
road it takes: a class statement (the domain's `__build_class__`), three-argument
`type()` (the domain's `type`), `abc.ABCMeta(...)`, the enum functional API and
`dataclasses.make_dataclass` (their façades, safety.facades). A class is refused when:

* a class in its MRO is a trusted class: one of RedLeaf Lab's own (a proxy, an RRef,
  the context, a device...) or another domain's, except the plain exception classes
  in `redleaf_lab.errors` and the checked factory classes below. A subclass of a
  capability's class would be a forged capability, and its methods would reach the
  capability's internals;
* its metaclass is a trusted class;
* its own namespace sets a name in `FORBIDDEN_CLASS_ATTRS`: numpy's array protocols
  (`__array_interface__` turns any address into an array), the buffer protocol
  and `__del__` (a finalizer runs in whatever domain the collector
  happens to run in: domain finalizers do not run at all);
* its `__module__` is not one of the domain's own modules (a class posing as a kernel
  module).

Classes made by a class statement or by `type(name, bases, ns)` are recorded in the
incarnation's `own` set; the receiver guard (safety.receiver) admits only instances of
exactly those classes as `self`. The safe `type(x)` refuses to hand out a metaclass
(`type(SomeClass)` is `type` itself, a class factory that skips these checks).
"""

from __future__ import annotations

import abc
import builtins
import enum
import operator
import types
from collections.abc import Callable
from typing import Any

from redleaf_lab.errors import SafetyError

RUNTIME = "<runtime>"
FORBIDDEN_CLASS_ATTRS: frozenset[str] = frozenset(
    {
        "__array__",
        "__array_finalize__",
        "__array_function__",
        "__array_interface__",
        "__array_prepare__",
        "__array_priority__",
        "__array_struct__",
        "__array_ufunc__",
        "__array_wrap__",
        "__buffer__",
        "__class__",
        "__del__",
        "__dlpack__",
        "__dlpack_device__",
        "__release_buffer__",
    }
)
_TRUSTED_PREFIXES = ("redleaf_lab", "redleaf_domain")
_real_type = builtins.type
_SUBCLASSABLE: frozenset[type] = frozenset()  # set at the end of this module
_IN_PLACE: dict[str, Callable[[Any, Any], Any]] = {
    name: getattr(operator, name) for name in (
        "iadd", "isub", "imul", "imatmul", "itruediv", "ifloordiv", "imod", "ipow",
        "ilshift", "irshift", "ior", "ixor", "iand")}


def _refuse(message: str, rule: str = "class") -> SafetyError:
    return SafetyError(RUNTIME, 0, rule, message)


def _module_of(cls: Any) -> str:
    module = _real_type.__dict__["__module__"].__get__(cls) if isinstance(cls, type) else None
    return module if isinstance(module, str) else ""


def _subclassable_trusted() -> frozenset[type]:
    from redleaf_lab import errors

    plain = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    return frozenset(plain | set(CHECKED_FACTORIES) | {errors.TrustedMeta})


class ClassPolicy:
    """The class checks of one domain incarnation; `own` holds the classes it made."""

    def __init__(self, module_prefix: str) -> None:
        self.module_prefix = module_prefix + "."
        self.own: set[type] = set()

    # -- the check ------------------------------------------------------------
    def trusted(self, cls: type) -> bool:
        """Is `cls` a class of the kernel's or of another domain (not ours)?"""
        if cls in self.own or cls in _SUBCLASSABLE:
            return False
        return _module_of(cls).startswith(_TRUSTED_PREFIXES)

    def validate(self, cls: type) -> type:
        """The checks of a made class: its MRO, its metaclass, its own namespace."""
        name = _real_type.__dict__["__qualname__"].__get__(cls)
        self._check_bases(name, cls.__mro__[1:])
        meta = _real_type(cls)
        if self.trusted(meta):
            raise _refuse(f"class {name!r} refused: its metaclass {meta.__qualname__} is trusted")
        self._check_namespace(name, _real_type.__dict__["__dict__"].__get__(cls))
        return cls

    # -- the roads to a class -------------------------------------------------
    def build_class(self, func: Callable[..., Any], name: str, *bases: Any,
                    metaclass: Any = None, **kw: Any) -> Any:
        """The domain's `__build_class__`: the class statement, checked before any code of
        the new class runs. It does what CPython's does (bases, metaclass, `__prepare__`,
        the body, the metaclass call), checking the bases and the metaclass before the
        body and the namespace before the metaclass sees it; a metaclass or
        `__init_subclass__` of the domain's therefore never holds a class that fails."""
        original = bases
        resolved = types.resolve_bases(bases)
        for base in resolved:
            if isinstance(base, type):
                self._check_bases(name, base.__mro__)
        meta = metaclass if metaclass is not None else (
            _real_type(resolved[0]) if resolved else _real_type)
        if isinstance(meta, type):
            meta = _most_derived_metaclass(meta, resolved)
            if self.trusted(meta):
                raise _refuse(f"class {name!r} refused: its metaclass {meta.__qualname__} is "
                              "trusted")
        prepare = getattr(meta, "__prepare__", None)
        namespace = prepare(name, resolved, **kw) if prepare is not None else {}
        exec(func.__code__, func.__globals__, namespace, closure=func.__closure__)
        self._check_namespace(name, namespace)
        if resolved is not original:
            namespace["__orig_bases__"] = original
        cls = meta(name, resolved, namespace, **kw)
        if isinstance(cls, type):
            self.validate(cls)
            self.own.add(cls)
        return cls

    def _check_bases(self, name: str, mro: tuple[type, ...]) -> None:
        for base in mro:
            if self.trusted(base):
                raise _refuse(
                    f"class {name!r} refused: it derives from {base.__module__}."
                    f"{base.__qualname__}, a trusted class (a capability, a heap handle or "
                    "another domain's class); wrap the object you were given instead")

    def _check_namespace(self, name: str, namespace: Any) -> None:
        bad = sorted(FORBIDDEN_CLASS_ATTRS & set(namespace))
        if bad:
            raise _refuse(
                f"class {name!r} refused: it defines {', '.join(bad)}; array and buffer "
                "protocols reach raw memory, `__class__` lies to isinstance() and finalizers "
                "run in another domain's context")
        module = namespace.get("__module__")
        if not (isinstance(module, str) and module.startswith(self.module_prefix)):
            raise _refuse(f"class {name!r} refused: its __module__ is {module!r}, not one of "
                          "this domain's modules (a class may not pose as another module's)")

    def safe_type(self, *args: Any) -> Any:
        """The domain's `type`: `type(x)` for objects, checked `type(name, bases, ns)`."""
        if len(args) == 1:
            result = _real_type(args[0])
            if issubclass(result, _real_type):
                raise _refuse(
                    "type() of a class refused: it returns the metaclass, which creates "
                    "classes outside the checks; use isinstance(x, type) to test for a class",
                    "builtin",
                )
            return result
        if len(args) == 3:
            name, bases, namespace = args
            if not isinstance(namespace, dict):
                raise TypeError("type.__new__() argument 3 must be dict")
            namespace = dict(namespace)
            namespace.setdefault("__module__", self.module_prefix + "dynamic")
            cls = _real_type(name, bases, namespace)
            self.validate(cls)
            self.own.add(cls)
            return cls
        raise TypeError("type() takes 1 or 3 arguments")

    def type_builtin(self) -> SafeTypeBuiltin:
        return SafeTypeBuiltin(self)

    def class_ok(self, cls: Any) -> bool:
        """The `cls` guard: a class this domain made, or one whose MRO holds nothing
        trusted (e.g. a subclass of ours being created: `__init_subclass__`)."""
        if cls in self.own:
            return True
        if not isinstance(cls, type):
            return False
        return not any(self.trusted(c) for c in cls.__mro__)

    # -- attribute stores outside the receiver (safety.receiver rewrites them) ----
    def check_store(self, obj: Any, name: str) -> None:
        """May domain code set or delete `obj.<name>`? Raise SafetyError if not."""
        if isinstance(obj, type):
            if obj in self.own:
                return
            raise _refuse(
                f"changing {name!r} of class {obj.__qualname__} refused: only classes the "
                "domain made itself may be changed (library and kernel classes are shared "
                "by every domain)", "attribute")
        cls = _real_type(obj)
        if cls in self.own:
            return
        if self.trusted(cls):
            raise _refuse(
                f"changing {name!r} of a {cls.__qualname__} refused: it is a trusted object "
                "(a capability, a heap handle, a layout or a device), shared with the kernel",
                "attribute")
        owner = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(
            obj, "__module__", "")
        if isinstance(obj, (types.FunctionType, types.MethodType, types.ModuleType)) and \
                not str(owner or "").startswith(self.module_prefix):
            raise _refuse(f"changing {name!r} of {obj!r} refused: it belongs to a library "
                          "shared by every domain", "attribute")

    def store_functions(self) -> tuple[Callable[..., None], Callable[..., None],
                                       Callable[..., None]]:
        """(store, augmented store, delete) for the rewritten attribute stores: closures
        whose common case (an instance of one of the domain's own classes) is one set
        look-up before the store itself."""
        own, check = self.own, self.check_store

        def store_attr(obj: Any, name: str, value: Any) -> None:
            if _real_type(obj) not in own:
                check(obj, name)
            setattr(obj, name, value)

        def aug_attr(obj: Any, name: str, op: str, value: Any) -> None:
            if _real_type(obj) not in own:
                check(obj, name)
            setattr(obj, name, _IN_PLACE[op](getattr(obj, name), value))

        def del_attr(obj: Any, name: str) -> None:
            if _real_type(obj) not in own:
                check(obj, name)
            delattr(obj, name)

        return store_attr, aug_attr, del_attr

    @staticmethod
    def stranger(receiver: Any, where: str) -> None:
        raise _refuse(
            f"{where} called with a {_real_type(receiver).__qualname__} as its receiver: "
            "private attributes are reachable only on instances of the domain's own classes",
            "private",
        )


# --------------------------------------------------------------------------
# Checked class factories handed out by the façades
# --------------------------------------------------------------------------


def _most_derived_metaclass(meta: type, bases: tuple[Any, ...]) -> type:
    """The metaclass a class statement uses (what `types._calculate_meta` computes)."""
    winner = meta
    for base in bases:
        base_meta = _real_type(base)
        if issubclass(winner, base_meta):
            continue
        if issubclass(base_meta, winner):
            winner = base_meta
            continue
        raise TypeError("metaclass conflict: the metaclass of a derived class must be a "
                        "(non-strict) subclass of the metaclasses of all its bases")
    return winner


def _check_created(cls: type, what: str) -> None:
    """Checks for classes made by library factories (enum's functional API, ABCMeta,
    make_dataclass): no kernel class in the MRO, no forbidden names of its own. Their
    `__module__` is the library's, and they are never `own`."""
    for c in cls.__mro__[1:]:
        if c not in _SUBCLASSABLE and _module_of(c).startswith("redleaf_lab"):
            raise _refuse(f"{what} {cls.__qualname__!r} refused: it derives from "
                          f"{c.__module__}.{c.__qualname__}, a trusted class")
    bad = sorted(FORBIDDEN_CLASS_ATTRS & set(_real_type.__dict__["__dict__"].__get__(cls)))
    if bad:
        raise _refuse(f"{what} {cls.__qualname__!r} refused: it defines {', '.join(bad)}")


class CheckedType(type):
    """What `class M(type)` derives from in a domain: every class it makes is checked."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kw: Any) -> Any:
        cls = super().__new__(mcls, name, bases, namespace, **kw)
        _check_created(cls, "class")
        return cls


class SafeTypeBuiltin:
    """The domain's `type`: `type(x)` is the real class of x (not for classes: that is a
    metaclass), `type(name, bases, ns)` is checked, `isinstance(x, type)` and
    `issubclass(c, type)` work, and `class M(type)` derives from `CheckedType`."""

    __slots__ = ("_policy",)

    def __init__(self, class_policy: ClassPolicy) -> None:
        self._policy = class_policy

    def __call__(self, *args: Any) -> Any:
        return self._policy.safe_type(*args)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, _real_type)

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(cls, _real_type)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (CheckedType,)

    def __repr__(self) -> str:
        return "<class 'type'>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise _refuse("copying `type` refused", "copy")


class CheckedABCMeta(abc.ABCMeta):
    """`abc.ABCMeta` for domains: every class it makes is checked."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kw: Any) -> Any:
        cls = super().__new__(mcls, name, bases, namespace, **kw)
        _check_created(cls, "class")
        return cls


class _CheckedEnumMixin:
    """Checks every enum class made from a checked base, the functional API included
    (`Enum("E", [("__array_interface__", ...)])` would otherwise set a class attribute)."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.__module__ != __name__:  # not the checked bases below
            _check_created(cls, "enum")


class Enum(_CheckedEnumMixin, enum.Enum):
    pass


class IntEnum(_CheckedEnumMixin, enum.IntEnum):
    pass


class StrEnum(_CheckedEnumMixin, enum.StrEnum):
    pass


class Flag(_CheckedEnumMixin, enum.Flag):
    pass


class IntFlag(_CheckedEnumMixin, enum.IntFlag):
    pass


for _checked in (Enum, IntEnum, StrEnum, Flag, IntFlag):
    _checked.__module__ = "enum"
CHECKED_FACTORIES: tuple[type, ...] = (
    CheckedType, CheckedABCMeta, _CheckedEnumMixin, Enum, IntEnum, StrEnum, Flag, IntFlag)
_SUBCLASSABLE = _subclassable_trusted()
