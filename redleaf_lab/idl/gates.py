"""Compiled call gates for proxies: binds `redleaf_lab._core._gate` to the generated proxies.

Where the C extension is built, a proxy's methods are gates (csrc/gate/gate.c): each does
the generated Python fast path in C, in the same order, and hands every unusual case
(closed gates, coercible or wrong arguments, keywords, RRef moves and borrows in this
version) to the generated Python method, its fallback. The gated proxy is an instance of
a fresh `ProxyBase` subclass whose class attributes are the gates, `interface`, and the
private `_domain` / `_release_impl` the kernel and shadows use; the Python proxy it falls
back on is reachable only from C.

Selection: `boot(proxies="gate" | "python")`, else the environment variable
`REDLEAF_LAB_PROXIES`, else "python": the gate is opt-in until it takes moves and borrows
in C and its failure path leaves the callee before it clears a pending unwind, as the
generated proxy now does (idl/proxy.py). Asked for without the extension, the project
runs on the Python proxies and warns once.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import DomainUnwind, ExchangeError
from ..kernel.context import local_holder
from . import calls
from .interface import Interface, MethodSpec
from .types import check_value

try:
    from .._core import _gate  # type: ignore[attr-defined]
except ImportError:  # no compiler where the package was built
    _gate = None
else:
    _gate._setup(local_holder(), calls.failed, calls.after_gated, calls.returning,
                 DomainUnwind)

PROXIES = ("gate", "python")
ENV = "REDLEAF_LAB_PROXIES"
_SCALARS = {int: "int", float: "float", str: "str", bytes: "bytes", bool: "bool"}
_warned = False


def available() -> bool:
    """True where the compiled gate is built."""
    return _gate is not None


def choose(requested: str | None) -> str:
    """The proxy implementation to use: `requested`, else $REDLEAF_LAB_PROXIES, else
    "python"; "gate" without the extension becomes "python" (one warning per process)."""
    global _warned
    mode = requested or os.environ.get(ENV) or "python"
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


def _kinds(m: MethodSpec) -> tuple[str, ...] | None:
    """The argument type names the C fast path checks, or None: always the fallback."""
    kinds = []
    for p in m.params:
        if p.spec.kind != "value" or p.spec.py_type not in _SCALARS:
            return None
        kinds.append(_SCALARS[p.spec.py_type])
    if m.result.moves:
        return None
    return tuple(kinds)


def _result_fixer(iface: type[Interface], m: MethodSpec
                  ) -> tuple[type | None, Callable[[Any, Any, Any], Any]]:
    """(exact result type or None, fix(result, d, caller)): the generated code's result
    step for a result that is not of the exact type (idl.proxy._result_source)."""
    spec = m.result
    where = f"{iface.__name__}.{m.name} result"
    if spec.kind == "none":
        def fix_none(result: Any, d: Any, caller: Any) -> Any:
            raise calls.late_panic(d, caller, ExchangeError(where + ": expected None"))
        return type(None), fix_none

    def fix(result: Any, d: Any, caller: Any) -> Any:
        try:
            return check_value(result, spec, where)
        except Exception as bad:
            raise calls.late_panic(d, caller, bad) from None
    return (spec.py_type if spec.kind == "value" else None), fix


def gated(iface: type[Interface], python_proxy: Any, incarnation: Any, impl: Any,
          base: type, gone: Callable[..., Any]) -> Any:
    """A proxy whose methods are gates falling back on `python_proxy`'s methods."""
    assert _gate is not None
    gates = []
    namespace: dict[str, Any] = {"__slots__": (), "interface": iface, "_domain": incarnation,
                                 "__module__": f"redleaf_lab.generated.{iface.__name__}"}
    entered = f"entered {incarnation.name} after its crash"
    for m in iface.__methods__.values():
        res_type, fix = _result_fixer(iface, m)
        gate = _gate._make(incarnation, getattr(impl, m.name), getattr(python_proxy, m.name),
                           _kinds(m), res_type, fix, f"{iface.__name__}.{m.name}", entered)
        gates.append(gate)
        namespace[m.name] = gate
    release_python = type(python_proxy)._release_impl
    def release() -> None:
        release_python()
        for gate in gates:
            _gate._release(gate, gone)

    namespace["_release_impl"] = staticmethod(release)
    cls = type(base)(f"{iface.__name__}Proxy", (base,), namespace)
    return cls()

