"""Compiled call gates for proxies: binds `redleaf_lab._core._gate` to the generated proxies.

Where the C extension is built, a proxy's methods are gates (csrc/gate/): each does the
generated Python fast path in C, in the same order: gate checks, argument checks, RRef
loans and moves with the registry's C functions, push, call, pop, the result's move
back. Every unusual case (a closed gate, a coercible or wrong argument, keywords, a
handle with live views, a refusal by the registry, more than two moved arguments, a
composite result) is handed to the generated Python method, the gate's fallback, before
anything happened, or to the generated result step (`res_fix`) after the call. The
gated proxy is an instance of a fresh `ProxyBase` subclass whose class attributes are
the gates, `interface`, and the private `_domain` / `_release_impl` the kernel and
shadows use; the Python proxy it falls back on is reachable only from C.

Selection: `boot(proxies="gate" | "python")`, else the environment variable
`REDLEAF_LAB_PROXIES`, else the gate where it is built. Without the extension (no
compiler where the package was built) the project runs on the Python proxies and warns
once.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from .._core import ffi, lib
from ..errors import DomainUnwind, ExchangeError
from ..heap.rref import Borrow, RRef
from ..kernel.context import local_holder
from . import calls
from .interface import Interface, MethodSpec
from .types import TypeSpec, check_value


def _address(function: Any) -> int:
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, function)))


try:
    from .._core import _gate  # type: ignore[attr-defined]
except ImportError:  # no compiler where the package was built
    _gate = None
else:
    _gate._setup(local_holder(), calls.failed, calls.after_gated, calls.returning,
                 DomainUnwind, calls.escaped_views, calls.unlend, Borrow,
                 _address("rl_move"), _address("rl_move_pair"), _address("rl_borrow"),
                 _address("rl_unborrow"))

PROXIES = ("gate", "python")
ENV = "REDLEAF_LAB_PROXIES"
_SCALARS = {int: "int", float: "float", str: "str", bytes: "bytes", bool: "bool"}
_warned = False


def gate_calls(gate_objects: tuple[Any, ...]) -> int:
    """Calls made through these gates (each counts its own in C)."""
    if not gate_objects or _gate is None:
        return 0
    return sum(_gate._count(g) for g in gate_objects)


def available() -> bool:
    """True where the compiled gate is built."""
    return _gate is not None


def choose(requested: str | None) -> str:
    """The proxy implementation to use: `requested`, else $REDLEAF_LAB_PROXIES, else
    "gate"; "gate" without the extension becomes "python" (one warning per process)."""
    global _warned
    mode = requested or os.environ.get(ENV) or "gate"
    if mode not in PROXIES:
        raise ValueError(f"proxies must be one of {PROXIES}, got {mode!r}")
    if mode == "gate" and _gate is None:
        if not _warned:
            _warned = True
            warnings.warn("redleaf_lab: the compiled call gate (redleaf_lab._core._gate) is "
                          "not built; proxies run on the generated Python code",
                          RuntimeWarning, stacklevel=3)
        return "python"
    return mode


def _handle(spec: TypeSpec, kind: str) -> tuple[Any, ...] | None:
    """The C descriptor of a moved or borrowed handle (csrc/gate/exchange.c)."""
    from .proxy import _viewless

    if not isinstance(spec.py_type, type):
        return None
    attr = "_layout" if spec.py_type is RRef else "_element"
    if kind == "borrow":
        return ("borrow", spec.py_type, spec.layout, attr)
    return ("move", spec.py_type, spec.layout, attr, _viewless(spec.py_type))


def _item(spec: TypeSpec) -> Any:
    if spec.kind == "value" and spec.py_type in _SCALARS:
        return _SCALARS[spec.py_type]
    if spec.kind in ("move", "borrow"):
        return _handle(spec, spec.kind)
    return None


def _arg_descriptors(m: MethodSpec) -> tuple[Any, ...] | None:
    """One descriptor per parameter, or None: every call takes the fallback."""
    out = [_item(p.spec) for p in m.params]
    return None if any(d is None for d in out) else tuple(out)


def _result_descriptor(m: MethodSpec) -> Any:
    spec = m.result
    if spec.kind == "move":
        return _handle(spec, "move")
    if spec.kind == "tuple" and not spec.variadic and spec.moves:
        items = [_item(it) if it.kind in ("value", "move") else None for it in spec.items]
        if None not in items and sum(it.kind == "move" for it in spec.items) == 2:
            return ("tuple", tuple(items))
    return None


def _result_fixer(iface: type[Interface], m: MethodSpec
                  ) -> tuple[type | None, Callable[[Any, Any, Any], Any]]:
    """(exact result type or None, fix(result, d, caller)): the generated code's result
    step (idl.proxy._result_source) for every result the C path does not take."""
    spec = m.result
    where = f"{iface.__name__}.{m.name} result"
    if spec.kind == "none":
        def fix_none(result: Any, d: Any, caller: Any) -> Any:
            raise calls.late_panic(d, caller, ExchangeError(where + ": expected None"))
        return type(None), fix_none
    if spec.kind == "move":
        return None, _move_fixer(spec, where)
    if spec.moves:
        def fix_moves(result: Any, d: Any, caller: Any) -> Any:
            return calls.move_out(result, spec, d, caller, where)
        return None, fix_moves

    def fix(result: Any, d: Any, caller: Any) -> Any:
        try:
            return check_value(result, spec, where)
        except Exception as bad:
            raise calls.late_panic(d, caller, bad) from None
    return (spec.py_type if spec.kind == "value" else None), fix


def _move_fixer(spec: TypeSpec, where: str) -> Callable[[Any, Any, Any], Any]:
    """The generated code's step for one moved result handle, line for line."""
    py_type, layout = spec.py_type, spec.layout
    attr = "_layout" if py_type is RRef else "_element"
    rl_move = lib.rl_move

    def fix_move(result: Any, d: Any, caller: Any) -> Any:
        if type(result) is not py_type or getattr(result, attr) is not layout:
            return calls.move_out(result, spec, d, caller, where)
        if (result._rw is not None or result._ro is not None) and result.live_views():
            raise calls.late_panic(d, caller, ExchangeError("the returned RRef has live views"))
        result._rw = result._ro = None
        rc = rl_move(d.heap.handle, result._id, d.id, caller.id)
        if rc:
            try:
                result._move_failed(rc, d.id)
            except Exception as bad:
                raise calls.late_panic(d, caller, bad) from None
        result._moved_to = ""
        return result
    return fix_move


def gated(iface: type[Interface], python_proxy: Any, incarnation: Any, impl: Any,
          base: type, gone: Callable[..., Any]) -> Any:
    """A proxy whose methods are gates falling back on `python_proxy`'s methods."""
    assert _gate is not None
    gates = []
    namespace: dict[str, Any] = {"__slots__": (), "interface": iface, "_domain": incarnation,
                                 "__module__": f"redleaf_lab.generated.{iface.__name__}"}
    entered = f"entered {incarnation.name} after its crash"
    heap = incarnation.heap
    heap_address = int(ffi.cast("uintptr_t", heap.handle))
    for m in iface.__methods__.values():
        res_type, fix = _result_fixer(iface, m)
        gate = _gate._make(incarnation, getattr(impl, m.name), getattr(python_proxy, m.name),
                           _arg_descriptors(m), _result_descriptor(m), res_type, fix,
                           f"{iface.__name__}.{m.name}", entered, heap, heap_address)
        gates.append(gate)
        namespace[m.name] = gate
    release_python = type(python_proxy)._release_impl
    def release() -> None:
        release_python()
        for gate in gates:
            _gate._release(gate, gone)

    namespace["_release_impl"] = staticmethod(release)
    incarnation.gates = (*incarnation.gates, *gates)
    cls = type(base)(f"{iface.__name__}Proxy", (base,), namespace)
    return cls()

