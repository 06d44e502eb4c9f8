"""Exchangeable types: what may cross a domain boundary, and how.

`classify(annotation)` turns one annotation of an interface method into a
`TypeSpec` that says how the proxy passes the value:

    value   immutable scalars: int, float, bool, str, bytes, None (checked, passed as is)
    tuple   a tuple of exchangeable types (checked element by element)
    move    RRef[L], RRefDeque[L, N], RRefArray[L, N], RRefVec[L]: ownership moves
    borrow  Borrowed[RRef[L]] (or a borrowed container): lent for the call
    iface   another Interface: a proxy (a capability) is passed
    optional  X | None

Anything else (list, dict, set, numpy arrays, arbitrary classes, Any) is not
exchangeable: a mutable Python object shared by two domains would let one
domain's crash corrupt the other. `classify` raises `InterfaceError` for it.

`check_value(value, spec, where)` is the run-time twin used by proxies for
values that are not simple scalars; it raises `ExchangeError`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ExchangeError, InterfaceError, safe_repr, type_name
from ..heap.containers import RRefArray, RRefDeque
from ..heap.layout import Layout
from ..heap.rref import RRef
from ..heap.vec import RRefVec

SCALARS: dict[Any, type] = {int: int, float: float, bool: bool, str: str, bytes: bytes}
MOVABLE = (RRef, RRefDeque, RRefArray, RRefVec)


class Borrowed:
    """Annotation marker: `Borrowed[RRef[Block]]` lends the object for one call."""

    def __class_getitem__(cls, item: Any) -> types.GenericAlias:
        return types.GenericAlias(cls, item)


@dataclass(frozen=True)
class TypeSpec:
    kind: str  # value | tuple | move | borrow | iface | optional | none
    py_type: Any = None  # the Python class to check against
    layout: Layout | None = None
    items: tuple[TypeSpec, ...] = field(default_factory=tuple)
    variadic: bool = False  # tuple[X, ...]
    text: str = ""

    @property
    def moves(self) -> bool:
        """Does passing this value move heap ownership?"""
        if self.kind == "move":
            return True
        return any(i.moves for i in self.items)


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _heap_spec(origin: Any, args: tuple[Any, ...], text: str) -> TypeSpec:
    layout = args[0] if args else None
    if not isinstance(layout, Layout):
        raise InterfaceError(f"{text}: the element type must be a declared Layout")
    if origin in (RRefDeque, RRefArray) and (len(args) != 2 or not isinstance(args[1], int)):
        raise InterfaceError(f"{text}: give the capacity, e.g. {origin.__name__}[Block, 32]")
    return TypeSpec("move", py_type=origin, layout=layout, text=text)


def classify(annotation: Any, *, allow_borrow: bool = True) -> TypeSpec:
    """Classify one annotation or raise InterfaceError saying why it cannot cross."""
    from .interface import Interface  # circular: interfaces use classify

    text = _describe(annotation)
    if annotation is None or annotation is type(None):
        return TypeSpec("none", type(None), text="None")
    if annotation in SCALARS:
        return TypeSpec("value", SCALARS[annotation], text=text)
    if isinstance(annotation, type) and issubclass(annotation, Interface):
        return TypeSpec("iface", annotation, text=text)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in MOVABLE:
        return _heap_spec(origin, args, text)
    if origin is Borrowed:
        if not allow_borrow:
            raise InterfaceError(f"{text}: a borrow cannot be returned (it ends with the call)")
        inner = classify(args[0], allow_borrow=False) if args else None
        if inner is None or inner.kind != "move":
            raise InterfaceError(f"{text}: only RRefs and RRef containers can be borrowed")
        return TypeSpec("borrow", inner.py_type, inner.layout, text=text)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = classify(args[0], allow_borrow=False)
            return TypeSpec("tuple", tuple, items=(item,), variadic=True, text=text)
        items = tuple(classify(a, allow_borrow=False) for a in args)
        return TypeSpec("tuple", tuple, items=items, text=text)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = classify(rest[0], allow_borrow=allow_borrow)
            return TypeSpec("optional", items=(inner,), text=text)
        raise InterfaceError(f"{text}: unions other than `X | None` are not exchangeable")
    if annotation is tuple:
        raise InterfaceError(f"{text}: give the element types, e.g. tuple[int, ...]")
    why = "it is mutable" if annotation in (list, dict, set, bytearray) or origin in (
        list, dict, set) else "it is not a fixed-layout type"
    if annotation is np.ndarray:
        why = "numpy arrays are mutable; pass an RRef of a Layout instead"
    if annotation is typing.Any or annotation is object:
        why = "Any/object could be anything; name an exchangeable type"
    raise InterfaceError(f"{text} is not exchangeable: {why}")


def check_value(value: Any, spec: TypeSpec, where: str) -> Any:
    """Check a value against a value/tuple/optional/iface spec; returns it (ints coerced)."""
    kind = spec.kind
    if kind == "value":
        t = type(value)
        if t is spec.py_type:
            return value
        # Coerce only numpy's own scalar types, by exact type: int() of a subclass would
        # run its __int__/__index__ (a domain's code) in the caller's context.
        if spec.py_type is int and (t is bool or t in _NUMPY_INTS):
            return int(value)
        if spec.py_type is float and (t is int or t in _NUMPY_INTS or t in _NUMPY_FLOATS):
            return float(value)
        raise ExchangeError(f"{where}: expected {spec.text}, got {type_name(value)} {_short(value)}")
    if kind == "none":
        if value is not None:
            raise ExchangeError(f"{where}: expected None, got {type_name(value)}")
        return None
    if kind == "optional":
        return None if value is None else check_value(value, spec.items[0], where)
    if kind == "tuple":
        if type(value) is not tuple:
            raise ExchangeError(
                f"{where}: expected {spec.text}, got {type_name(value)} {_short(value)}"
                + (" (lists are mutable: pass a tuple)" if isinstance(value, list) else "")
            )
        if spec.variadic:
            return tuple(check_value(v, spec.items[0], f"{where}[{i}]")
                         for i, v in enumerate(value))
        if len(value) != len(spec.items):
            raise ExchangeError(f"{where}: expected {len(spec.items)} items, got {len(value)}")
        return tuple(check_value(v, s, f"{where}[{i}]")
                     for i, (v, s) in enumerate(zip(value, spec.items, strict=True)))
    if kind == "move":
        if type(value) is spec.py_type:
            layout = value._layout if spec.py_type is RRef else value._element
            if layout is spec.layout:
                return value
        raise ExchangeError(f"{where}: expected {spec.text}, got {_short(value)}")
    if kind == "iface":
        from .proxy import ProxyBase

        if not isinstance(value, ProxyBase) or not issubclass(value.interface, spec.py_type):
            raise ExchangeError(
                f"{where}: expected a {spec.text} capability (a proxy), got {_short(value)}"
            )
        return value
    raise ExchangeError(f"{where}: cannot check {spec.kind}")


def _short(value: Any) -> str:
    return safe_repr(value)


_NUMPY_INTS = frozenset(np.dtype(c).type for c in "bBhHiIlLqQ")
_NUMPY_FLOATS = frozenset(np.dtype(c).type for c in "efdg")
