"""Interfaces: the only way domains talk to each other (RedLeaf's redIDL traits).

An interface is a class deriving from `Interface` whose public methods carry
full annotations:

    class BDev(Interface):
        def read(self, block: int, data: RRef[Block]) -> RRef[Block]: ...
        def write(self, block: int, data: Borrowed[RRef[Block]]) -> None: ...

When the class is defined, every public method's parameters and return type
are classified (`idl.types.classify`). A missing annotation or a type that is
not exchangeable raises `InterfaceError` naming the method and the argument,
so a bad interface never reaches a proxy. `*args`, `**kwargs` and keyword-only
parameters are refused: proxies pass arguments positionally, like redIDL.

The resulting `MethodSpec`s drive proxy generation (`idl.proxy`).
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import InterfaceError
from ..sealed import Sealed
from .types import TypeSpec, classify


@dataclass(frozen=True)
class ParamSpec:
    name: str
    spec: TypeSpec


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: tuple[ParamSpec, ...]
    result: TypeSpec
    doc: str

    def signature(self) -> str:
        args = ", ".join(f"{p.name}: {p.spec.text}" for p in self.params)
        return f"{self.name}({args}) -> {self.result.text}"


class Interface(Sealed):
    """Base class of every cross-domain interface."""

    __methods__: ClassVar[dict[str, MethodSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        methods: dict[str, MethodSpec] = {}
        for base in reversed(cls.__mro__[1:]):
            methods.update(getattr(base, "__methods__", {}))
        for name, member in cls.__dict__.items():
            if name.startswith("_") or not callable(member):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                raise InterfaceError(f"{cls.__name__}.{name}: interface methods are instance methods")
            methods[name] = _method_spec(cls, name, member)
        cls.__methods__ = methods

    @classmethod
    def methods(cls) -> dict[str, MethodSpec]:
        return dict(cls.__methods__)


def _method_spec(cls: type, name: str, func: Any) -> MethodSpec:
    where = f"{cls.__name__}.{name}"
    try:
        hints = typing.get_type_hints(func, localns={cls.__name__: cls})
    except Exception as exc:  # NameError for unknown names, etc.
        raise InterfaceError(f"{where}: cannot resolve annotations: {exc}") from exc
    sig = inspect.signature(func)
    params = []
    for i, (pname, param) in enumerate(sig.parameters.items()):
        if i == 0:
            if pname != "self":
                raise InterfaceError(f"{where}: the first parameter must be `self`")
            continue
        if param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            raise InterfaceError(
                f"{where}: argument {pname!r}: only plain positional parameters may cross "
                "a domain boundary (no *args, **kwargs or keyword-only parameters)"
            )
        if param.default is not inspect.Parameter.empty:
            raise InterfaceError(f"{where}: argument {pname!r}: defaults are not supported")
        if pname not in hints:
            raise InterfaceError(f"{where}: argument {pname!r} has no type annotation")
        try:
            spec = classify(hints[pname])
        except InterfaceError as exc:
            raise InterfaceError(f"{where}: argument {pname!r}: {exc}") from None
        params.append(ParamSpec(pname, spec))
    if "return" not in hints:
        raise InterfaceError(f"{where}: the return type is not annotated (use -> None)")
    try:
        result = classify(hints["return"], allow_borrow=False)
    except InterfaceError as exc:
        raise InterfaceError(f"{where}: return type: {exc}") from None
    return MethodSpec(name, tuple(params), result, inspect.getdoc(func) or "")
