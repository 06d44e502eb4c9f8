"""Proxy generation: redIDL's generated proxies, as Python source.

For each interface, `proxy_source(Iface)` writes the source of a factory
`make_proxy(_d, _impl)` that returns a proxy object bound to one domain
incarnation `_d` and its implementation object `_impl`. The source is
compiled once per interface and cached; instantiating a proxy (at load and
at every restart) only runs the factory, which is cheap.

Every generated method does the same steps, inline, in this order:

  1. gate: `if d.gate is not None` (dead, stopped, tracing or fault armed), in which
     case the `_slow_` twin of the method runs: it asks the gate, which raises
     RpcError for a dead callee or says whether an injected fault trips now;
  2. check scalar arguments (`type(x) is int`), reject mutable objects;
  3. read the thread's continuation stack; the caller is `stack[-1]`;
  4. move RRef arguments to the callee (one C registry call each) or lend them;
  5. push the callee (this *is* the domain switch) and call the implementation;
  6. on an exception: `calls.failed` turns it into `RpcError` (a panic);
  7. if the callee's gate closed during the call (it crashed while we were inside,
     and returned before the unwinding reached this thread), the result is not
     trusted: the call fails with RpcError (`calls.after_gated`);
  8. pop, check the caller is still alive, move the result back, return it.

The code is kept short because it is the cost of isolation that
`redleaf-lab bench calls` measures.
"""

from __future__ import annotations

from typing import Any

from .._core import lib
from ..errors import DomainUnwind
from ..heap.rref import RRef
from ..heap.slots import _SlotContainer
from ..kernel import unwind
from ..kernel.context import local_holder
from ..sealed import Sealed
from . import calls, gates
from .interface import Interface, MethodSpec
from .types import TypeSpec


class ProxyBase(Sealed):
    """Base class of generated proxies. `interface` is a class attribute; the callee
    incarnation `_domain` and `_release_impl` are private class attributes: domain code
    reaches private names only on its own objects (kernel.safety.receiver), so a
    capability exposes its interface and nothing else."""

    __slots__ = ()
    interface: type[Interface]
    _domain: Any

    def __repr__(self) -> str:
        return f"<proxy {self.interface.__name__} -> {self._domain.name}#{self._domain.id}>"


_SOURCE_CACHE: dict[type, tuple[str, Any]] = {}


def _value_check(var: str, spec: TypeSpec, const: str, where: str, out: list[str]) -> None:
    if spec.kind == "value":
        out.append(f"        if type({var}) is not {spec.py_type.__name__}:")
        out.append(f"            {var} = _bad_arg({var}, {const}, {where!r})")
    elif spec.kind in ("tuple", "optional", "iface", "none"):
        if spec.moves:
            return  # checked by move_in via _bad_arg below
        out.append(f"        {var} = _check({var}, {const}, {where!r})")


def _method_source(iface: type[Interface], m: MethodSpec, consts: dict[str, Any],
                   slow: bool) -> list[str]:
    """One method. The fast variant runs while the callee's gate is open (None); the
    slow variant also asks the gate (dead? tracing? injected fault?) and checks that
    the caller is alive before entering."""
    name = m.name
    args = [p.name for p in m.params]
    arglist = "".join(", " + a for a in args)
    out = [f"    def {'_slow_' if slow else ''}{name}(self{arglist}):"]
    out.append("        d = _d")
    if slow:
        out.append("        trip = d.gate() if d.gate is not None else False")
    else:
        out.append("        if d.gate is not None:")
        out.append(f"            return self._slow_{name}({', '.join(args)})")
    movers: list[str] = []
    loans: list[str] = []
    for p in m.params:
        const = f"_S_{name}_{p.name}"
        consts[const] = p.spec
        where = f"{iface.__name__}.{name}({p.name})"
        _value_check(p.name, p.spec, const, where, out)
        if p.spec.kind == "move":
            consts[f"_T_{name}_{p.name}"] = p.spec.py_type
            consts[f"_L_{name}_{p.name}"] = p.spec.layout
            attr = "_layout" if p.spec.py_type is RRef else "_element"
            out.append(
                f"        if type({p.name}) is not _T_{name}_{p.name} or "
                f"{p.name}.{attr} is not _L_{name}_{p.name}:"
            )
            out.append(f"            _bad_arg({p.name}, {const}, {where!r})")
            movers.append(p.name)
        elif p.spec.moves:
            out.append(f"        {p.name} = _check({p.name}, {const}, {where!r})")
            movers.append(p.name)
        elif p.spec.kind == "borrow":
            loans.append(p.name)
    out.append("        d.proxy_calls += 1")
    out.append("        stack = _local.stack")
    out.append("        caller = stack[-1]")
    # A caller whose gate is closed may be dead (a thread that swallowed its unwind):
    # it may not start a call; `_entering` re-raises its DomainUnwind.
    out.append("        if caller.gate is not None:")
    out.append("            _entering(_local.ts, caller)")
    out.append("        cid = caller.id")
    call_args = list(args)
    prep: list[str] = []  # lends and moves; with loans, undone in reverse on any failure
    for a in loans:
        const = f"_S_{name}_{a}"
        prep.append(f"        {a}_loan = _lend({a}, cid, {const}, {iface.__name__ + '.' + name!r})")
        prep.append(f"        made.append({a}_loan)")
        call_args[call_args.index(a)] = f"{a}_loan"
    if len(movers) == 1 and m.params[args.index(movers[0])].spec.kind == "move":
        a = movers[0]
        prep.append(f"        if {a}._rw is not None or {a}._ro is not None:")
        prep.append(f"            {a}._check_no_views('move')")
        prep.append(f"        rc = _rl_move(_hp, {a}._id, cid, _did)")
        prep.append("        if rc:")
        prep.append(f"            {a}._move_failed(rc, cid, _dname)")
        prep.append(f"        {a}._moved_to = _dname")
    elif len(movers) == 2 and all(m.params[args.index(a)].spec.kind == "move" for a in movers):
        a, b = movers  # e.g. two deques: one C call moves both, or neither
        views = [f"{x}._rw is not None or {x}._ro is not None" for x in movers
                 if not _viewless(m.params[args.index(x)].spec.py_type)]
        prep.append(f"        if ({' or '.join([*views, f'_rl_move_pair(_hp, {a}._id, {b}._id, cid, _did)'])}):")
        prep.append(f"            _move_in(({a}, {b},), cid, d)  # the precise error, or the move")
        prep.append("        else:")
        prep.append(f"            {a}._moved_to = {b}._moved_to = _dname")
    elif movers:
        prep.append(f"        _move_in(({', '.join(movers)},), cid, d)")
    if loans:
        out.append("        made = []")
        out.append("        try:")
        out.extend("    " + line for line in prep)
        out.append("        except BaseException:")
        out.append("            _unlend_all(tuple(reversed(made)))")
        out.append("            raise")
    else:
        out.extend(prep)
    # The push is the try's first step: an unwind delivered right after it (the crash saw
    # this thread inside the callee) fires inside the try and is handled like any other.
    out.append("        try:")
    out.append("            stack.append(d)")
    # The callee may have crashed between the gate check and the push, after the crash
    # chose which threads to unwind: such a thread must not run the dead incarnation.
    out.append("            if d.gate is not None and d.state != 'running':")
    out.append("                raise DomainUnwind('entered ' + _dname + ' after its crash')")
    if slow:
        out.append("            if trip:")
        out.append("                _trip(d)")
    out.append(f"            result = _m_{name}({', '.join(call_args)})")
    # A pending asynchronous unwind aimed at the callee fires at the next Python
    # function entry; it is cleared inline (a C call: no check before it) before
    # calling any Python helper, so it cannot escape the proxy.
    # Leave the callee before anything else (plain bytecode, no call: no point where a
    # thread switch lets a crash see this thread still inside and unwind it again), then
    # drop an unwind already pending for it with a direct C call, then call helpers.
    out.append("        except BaseException as exc:")
    out.append("            if stack[-1] is d:")
    out.append("                del stack[-1]")
    out.append("            ts = _local.ts")
    out.append("            if ts.unwind_target is d:")
    out.append("                _clear_async(ts.ident, None)")
    if loans:
        out.append(f"            _unlend_all(({''.join(a + '_loan, ' for a in loans)}))")
    out.append("            raise _failed(ts, d, caller, exc)")
    out.append("        if d.gate is not None and d.state != 'running':")
    out.append("            if stack[-1] is d:  # leave first, as in the except path")
    out.append("                del stack[-1]")
    out.append("            ts = _local.ts")
    out.append("            if ts.unwind_target is d:")
    out.append("                _clear_async(ts.ident, None)")
    loan_tuple = f"({''.join(a + '_loan, ' for a in loans)})"
    out.append(f"            _after_gated(ts, d, caller, {loan_tuple})")
    out.append("        del stack[-1]")
    if loans:  # every loan ends, even when an earlier one had views escape
        out.append(f"        escaped = {' + '.join(f'_unlend({a}_loan)' for a in loans)}")
        out.append("        if escaped:")
        out.append("            raise _escaped(d, caller, escaped)")
    out.append("        if caller.gate is not None:")
    out.append("            _returning(_local.ts, caller)")
    out.extend(_result_source(iface, m, consts))
    out.append("        return result")
    return out


def _result_source(iface: type[Interface], m: MethodSpec, consts: dict[str, Any]) -> list[str]:
    spec = m.result
    const = f"_R_{m.name}"
    consts[const] = spec
    where = f"{iface.__name__}.{m.name} result"
    if spec.kind == "none":
        return [
            "        if result is not None:",
            f"            raise _late(d, caller, _exchange({where!r} + ': expected None'))",
        ]
    if spec.kind == "value":
        return [
            f"        if type(result) is not {spec.py_type.__name__}:",
            "            try:",
            f"                result = _check(result, {const}, {where!r})",
            "            except Exception as bad:",
            "                raise _late(d, caller, bad) from None",
        ]
    if spec.kind == "move":
        attr = "_layout" if spec.py_type is RRef else "_element"
        consts[f"_RT_{m.name}"] = spec.py_type
        consts[f"_RL_{m.name}"] = spec.layout
        return [
            f"        if type(result) is not _RT_{m.name} or result.{attr} is not _RL_{m.name}:",
            f"            result = _move_out(result, {const}, d, caller, {where!r})",
            "        else:",
            "            if (result._rw is not None or result._ro is not None) and "
            "result.live_views():",
            "                raise _late(d, caller, _exchange('the returned RRef has live views'))",
            "            result._rw = result._ro = None",
            "            rc = _rl_move(_hp, result._id, _did, cid)",
            "            if rc:",
            "                try:",
            "                    result._move_failed(rc, _did)",
            "                except Exception as bad:",
            "                    raise _late(d, caller, bad) from None",
            "            result._moved_to = ''",
        ]
    fast = _tuple_result_fast_path(m, spec, consts)
    if fast:
        return [*fast, f"        result = _move_out(result, {const}, d, caller, {where!r})"]
    if spec.moves:
        return [f"        result = _move_out(result, {const}, d, caller, {where!r})"]
    return [
        "        try:",
        f"            result = _check(result, {const}, {where!r})",
        "        except Exception as bad:",
        "            raise _late(d, caller, bad) from None",
    ]


def _viewless(py_type: Any) -> bool:
    """True for handle types that never export views (containers: their memory is never
    handed to domain code, heap/slots.py), so the generated fast paths skip the check."""
    return isinstance(py_type, type) and issubclass(py_type, _SlotContainer)


def _tuple_result_fast_path(m: MethodSpec, spec: Any, consts: dict[str, Any]) -> list[str]:
    """For a result that is a fixed tuple of scalars and exactly two moved handles (the
    batched `(n, submit, collect)` form): the tuple is unpacked once, inline checks and
    one C call move both back, and the method returns; anything unusual falls through to
    the generic `_move_out` (the line the caller appends)."""
    if spec.kind != "tuple" or spec.variadic or not spec.moves:
        return []
    items = list(spec.items)
    handles = [i for i, it in enumerate(items) if it.kind == "move"]
    scalars = [i for i, it in enumerate(items) if it.kind == "value"]
    if len(handles) != 2 or len(handles) + len(scalars) != len(items):
        return []
    conds = []
    for i in scalars:
        conds.append(f"type(_r{i}) is {items[i].py_type.__name__}")
    names = []
    for i in handles:
        it = items[i]
        attr = "_layout" if it.py_type is RRef else "_element"
        consts[f"_RT_{m.name}_{i}"] = it.py_type
        consts[f"_RL_{m.name}_{i}"] = it.layout
        conds.append(f"type(_r{i}) is _RT_{m.name}_{i}")
        conds.append(f"_r{i}.{attr} is _RL_{m.name}_{i}")
        if not _viewless(it.py_type):
            conds.append(f"_r{i}._rw is None and _r{i}._ro is None")
        names.append(f"_r{i}")
    a, b = names
    unpacked = ", ".join(f"_r{i}" for i in range(len(items)))
    return [
        f"        if type(result) is tuple and len(result) == {len(items)}:",
        f"            {unpacked} = result",
        f"            if ({' and '.join(conds)}\n"
        f"                    and not _rl_move_pair(_hp, {a}._id, {b}._id, _did, cid)):",
        f"                {a}._moved_to = {b}._moved_to = ''",
        "                return result",
    ]


def proxy_source(iface: type[Interface]) -> str:
    """The generated proxy source for `iface` (shown in the labs)."""
    return _compiled(iface)[0]


def _compiled(iface: type[Interface]) -> tuple[str, Any]:
    cached = _SOURCE_CACHE.get(iface)
    if cached is not None:
        return cached
    consts: dict[str, Any] = {}
    methods = list(iface.__methods__.values())
    lines = [
        f"# Generated proxy for {iface.__module__}.{iface.__qualname__}.",
        "# One class per domain incarnation; `_d` is the callee incarnation, `_impl` the",
        "# object its init() returned.",
        "def make_proxy(_d, _impl):",
        "    _did = _d.id",
        "    _dname = _d.name",
        "    _hp = _d.heap.handle",
    ]
    for m in methods:
        lines.append(f"    _m_{m.name} = _impl.{m.name}")
    names = [f"_m_{m.name}" for m in methods]
    lines += ["", "    def _release():",
              "        # the incarnation is dead: drop its state (and the heap memory its views pin)"]
    lines += [f"        nonlocal {', '.join(names)}",
              f"        {' = '.join(names)} = _gone"] if names else ["        pass"]
    lines.append("")
    lines.append(f"    class {iface.__name__}Proxy(_ProxyBase):")
    lines.append("        __slots__ = ()")
    lines.append("        interface = _iface")
    lines.append("        _domain = _d")
    lines.append("        _release_impl = staticmethod(_release)")
    lines.append("")
    for m in methods:
        for slow in (False, True):
            body = _method_source(iface, m, consts, slow)
            lines.extend("    " + line for line in body)
            lines.append("")
    lines.append(f"    return {iface.__name__}Proxy()")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {
        "__name__": f"redleaf_lab.generated.{iface.__name__}",
        "_ProxyBase": ProxyBase,
        "_iface": iface,
        "_local": local_holder(),
        "_failed": calls.failed,
        "_returning": calls.returning,
        "_after_gated": calls.after_gated,
        "_clear_async": unwind.clear_async_exc,
        "_entering": calls.entering,
        "_trip": calls.trip,
        "_late": calls.late_panic,
        "_bad_arg": calls.bad_arg,
        "_check": calls.check_value,
        "_move_in": calls.move_in,
        "_move_out": calls.move_out,
        "_lend": calls.lend,
        "_unlend": calls.unlend,
        "_unlend_all": calls.unlend_all,
        "_escaped": calls.escaped_views,
        "_exchange": _exchange_error,
        "_rl_move": lib.rl_move,
        "_rl_move_pair": lib.rl_move_pair,
        "_gone": _gone,
        "DomainUnwind": DomainUnwind,
    }
    namespace.update(consts)
    code = compile(source, f"<proxy {iface.__name__}>", "exec")
    exec(code, namespace)
    result = (source, namespace["make_proxy"])
    _SOURCE_CACHE[iface] = result
    return result


def _gone(*args: Any) -> Any:
    """What a dead incarnation's proxy calls in place of its released implementation."""
    raise RuntimeError("this domain incarnation crashed or stopped; its state was released")


def _exchange_error(text: str) -> Exception:
    from ..errors import ExchangeError

    return ExchangeError(text)


def make_proxy(iface: type[Interface], incarnation: Any, impl: Any,
               proxies: str | None = None) -> ProxyBase:
    """Bind a proxy of `iface` to a domain incarnation and its implementation.

    `proxies`: "gate" (compiled call gates, idl.gates) or "python" (the generated proxy
    alone); by default the incarnation's kernel's choice (`boot(proxies=...)`)."""
    missing = [name for name in iface.__methods__ if not callable(getattr(impl, name, None))]
    if missing:
        from ..errors import DomainLoadError

        raise DomainLoadError(
            f"{incarnation.name}: init() returned {type(impl).__name__}, which lacks "
            f"{iface.__name__} method(s): {', '.join(missing)}"
        )
    factory = _compiled(iface)[1]
    proxy: ProxyBase = factory(incarnation, impl)
    if proxies is None:
        proxies = getattr(getattr(incarnation, "kernel", None), "proxies", None)
    if gates.choose(proxies) == "gate":
        gate_proxy: ProxyBase = gates.gated(iface, proxy, incarnation, impl, ProxyBase, _gone)
        return gate_proxy
    return proxy
