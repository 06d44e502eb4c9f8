"""The slow paths of a cross-domain call, shared by every generated proxy.

Generated proxy code (idl.proxy) keeps the fast path inline: gate check,
argument checks, one registry move per RRef, push, call, pop, result move. It
calls into this module only when something is unusual:

* `failed`: an exception left the callee. Restore the continuation stack, then
  decide: an error value (`DomainError`, passed on; the callee lives), a panic
  of the callee (crash it: unwind its threads, reclaim its heap) or the end of
  an unwinding that was already under way. Returns the
  exception the caller should see: `RpcError`, or `DomainUnwind` when the
  caller itself is dead and must keep unwinding.
* `returning`: the callee returned normally but the caller died meanwhile
  (the thread was in the callee when the caller crashed): unwind the caller.
* `late_panic`: the callee returned something it may not (a bad type, an
  RRef it does not own, a borrowed view that outlived the call).
* `lend` / `unlend`: the borrow protocol for `Borrowed[...]` arguments.
* `move_in` / `move_out`: moves for several RRefs or RRefs inside tuples,
  all-or-nothing.

Locking: none of its own; registry operations are atomic C calls and the
kernel's crash path takes the kernel lock.
"""

from __future__ import annotations

from typing import Any

from .. import errors as errors_module
from .._core import lib
from ..errors import (
    DomainError,
    DomainUnwind,
    ExchangeError,
    HeapError,
    InjectedPanic,
    RpcError,
    describe_exception,
    exception_args,
)
from ..heap.rref import Borrow, HeapObject, RRef
from ..kernel.context import ThreadState
from ..kernel.interrupts import claim as claim_interrupt
from ..kernel.unwind import cancel_pending
from .types import TypeSpec, check_value

RUNNING = "running"
ALIVE = ("running", "loading")  # a caller in its init() may call the capabilities it got
_rl_borrow = lib.rl_borrow
_rl_unborrow = lib.rl_unborrow


def _pop_through(ts: ThreadState, callee: Any) -> None:
    """Pop the stack down to and including `callee`; nothing if it is not on the stack
    (the generated proxy pops the callee itself before it calls the slow paths)."""
    stack = ts.stack
    if not any(entry is callee for entry in stack):
        return
    while len(stack) > 1:
        if stack.pop() is callee:
            return


def _unwind_caller(ts: ThreadState, caller: Any) -> DomainUnwind:
    ts.unwind_target = caller
    return DomainUnwind(f"unwinding {caller.name}")


def failed(ts: ThreadState, callee: Any, caller: Any, exc: BaseException) -> BaseException:
    """An exception escaped `callee`; return what to raise in `caller`."""
    _pop_through(ts, callee)
    if claim_interrupt(ts, exc):  # the user's Ctrl-C: no panic, no retry, to the user
        if caller.id == 1:
            ts.user_interrupt = None
        return exc
    if isinstance(exc, DomainUnwind):
        if callee.state == RUNNING:
            return exc  # unwinding a domain below us: keep going
        if ts.unwind_target is callee:
            ts.unwind_target = None
        if callee.crash is not None:  # the thread has left the crashed domain
            callee.crash.left_threads += 1
        error: BaseException = RpcError(callee.name, callee.state_reason())
    elif callee.state == RUNNING and _is_error_value(exc):
        error = _error_value_copy(exc)
    else:
        if ts.unwind_target is callee:  # left by another exception: drop the pending unwind
            ts.unwind_target = None
            cancel_pending()
        if callee.state == RUNNING:
            callee.kernel.crash(callee, exc)
            error = _panic_error(callee, caller, "panicked", exc)
        else:
            error = _panic_error(callee, caller, callee.state_reason(), exc)
    if caller.state not in ALIVE:
        return _unwind_caller(ts, caller)
    return error


def after_gated(ts: ThreadState, callee: Any, caller: Any, loans: tuple[Borrow, ...]) -> None:
    """The callee returned while its gate was closed: did it crash during the call?

    The kernel's asynchronous `DomainUnwind` fires at the thread's next
    eval-breaker check, which may come only after the callee has returned (a
    C call that released the GIL, then a return with no check in between). No
    such check lies between the call and this function's caller, so the pending
    unwinding is cancelled here and the call fails as if it had been unwound.
    """
    if callee.state == RUNNING:
        return  # the gate is closed for tracing or an armed fault: nothing happened
    unlend_all(loans)
    if ts.unwind_target is callee:
        ts.unwind_target = None
        cancel_pending()
    _pop_through(ts, callee)
    if caller.state not in ALIVE:
        raise _unwind_caller(ts, caller)
    raise RpcError(callee.name, callee.state_reason())


_ERROR_VALUES = frozenset(
    c for c in vars(errors_module).values()
    if isinstance(c, type) and issubclass(c, DomainError))


def _is_error_value(exc: BaseException) -> bool:
    """Exactly one of RedLeaf Lab's own DomainError classes (by identity: a domain's class
    that claims `__module__ = "redleaf_lab.errors"` is not one)."""
    return type(exc) in _ERROR_VALUES


def _error_value_copy(exc: BaseException) -> BaseException:
    """A fresh instance for the caller: the message only (no traceback into the callee,
    and no argument objects of the callee's), built without running the callee's code."""
    args = exception_args(exc)
    if all(type(a) in (str, int, float, bool) for a in args):
        return type(exc)(*args)
    return type(exc)(describe_exception(exc))


def _panic_error(callee: Any, caller: Any, reason: str, exc: BaseException) -> RpcError:
    """RpcError for a panic. The root context (a test, a notebook) keeps the original
    exception for debugging; a domain gets its description only: holding the callee's
    exception object would let it run the callee's methods as itself."""
    if caller.id == 1:
        return RpcError(callee.name, reason, exc)
    return RpcError(callee.name, reason, None, detail=describe_exception(exc))


def returning(ts: ThreadState, caller: Any) -> None:
    """After a normal return: if the caller died meanwhile, unwind it now."""
    if caller.state not in ALIVE:
        raise _unwind_caller(ts, caller)


def entering(ts: ThreadState, caller: Any) -> None:
    """Before a call: a dead caller must not start new calls."""
    if caller.state not in ALIVE:
        raise _unwind_caller(ts, caller)


def trip(callee: Any) -> None:
    """Raise the injected panic inside the callee."""
    raise InjectedPanic(f"fault injected into {callee.name}")


def late_panic(callee: Any, caller: Any, exc: BaseException) -> BaseException:
    """The callee returned something invalid: that is its panic."""
    if callee.state == RUNNING:
        callee.kernel.crash(callee, exc)
    if caller.state not in ALIVE:
        from ..kernel.context import thread_state

        return _unwind_caller(thread_state(), caller)
    return _panic_error(callee, caller, "panicked", exc)


def bad_arg(value: Any, spec: TypeSpec, where: str) -> Any:
    """A mis-typed argument: coerce harmless scalars, else raise ExchangeError."""
    if isinstance(value, Borrow) and spec.kind == "move":
        raise ExchangeError(f"{where}: a borrowed RRef cannot be moved; it belongs to the lender")
    return check_value(value, spec, where)


def move_in(values: tuple[Any, ...], src: int, dst: Any) -> None:
    """Move every RRef in `values` from `src` to `dst`, all or nothing."""
    done: list[HeapObject] = []
    try:
        for v in _handles(values):
            v._move(src, dst.id, dst.name)
            done.append(v)
    except BaseException:
        for v in reversed(done):
            try:
                v._move(dst.id, src, "")
            except HeapError:
                pass
        raise


def move_out(result: Any, spec: TypeSpec, callee: Any, caller: Any, where: str) -> Any:
    """Check a composite result and move its RRefs to the caller."""
    try:
        checked = _check_result(result, spec, where)
        move_in((checked,), callee.id, caller)
    except (ExchangeError, HeapError) as exc:
        raise late_panic(callee, caller, exc) from None
    return checked


def _check_result(value: Any, spec: TypeSpec, where: str) -> Any:
    if spec.kind == "move":
        return check_value(value, spec, where)
    if spec.kind == "optional":
        return None if value is None else _check_result(value, spec.items[0], where)
    if spec.kind == "tuple" and type(value) is tuple and not spec.variadic:
        if len(value) != len(spec.items):
            raise ExchangeError(f"{where}: expected {len(spec.items)} items, got {len(value)}")
        return tuple(_check_result(v, s, f"{where}[{i}]")
                     for i, (v, s) in enumerate(zip(value, spec.items, strict=True)))
    if spec.kind == "tuple" and type(value) is tuple:
        return tuple(_check_result(v, spec.items[0], f"{where}[{i}]")
                     for i, v in enumerate(value))
    return check_value(value, spec, where)


def _handles(value: Any) -> list[HeapObject]:
    if isinstance(value, HeapObject):
        return [value]
    if type(value) is tuple:
        out: list[HeapObject] = []
        for v in value:
            out.extend(_handles(v))
        return out
    return []


def lend(value: Any, lender: int, spec: TypeSpec, where: str) -> Borrow:
    """Start a borrow of `value` for one call; returns the callee's Borrow.

    One C call: the registry checks that the lender owns the object.
    """
    if type(value) is spec.py_type:
        target, owner = value, lender
    elif isinstance(value, Borrow):  # re-lending a borrow: the lender stays the owner
        value._require_live()
        target, owner = value._target, value._lender
    else:
        raise ExchangeError(f"{where}: expected {spec.text}, got {value!r}")
    layout = target._layout if type(target) is RRef else getattr(target, "_element", None)
    if layout is not spec.layout:
        raise ExchangeError(f"{where}: expected {spec.text}, got {target!r}")
    rc = _rl_borrow(target._hp, target._id, owner)
    if rc:
        target._move_failed(rc, owner)  # raises: stale, moved away, not the owner
    return Borrow(target, owner)


def unlend(loan: Borrow) -> int:
    """End a borrow; returns how many views of it escaped the call."""
    escaped = loan._end()
    target = loan._target
    _rl_unborrow(target._hp, target._id)
    return escaped


def unlend_all(loans: tuple[Borrow, ...]) -> None:
    for loan in loans:
        if loan._live:
            unlend(loan)


def escaped_views(callee: Any, caller: Any, count: int) -> BaseException:
    exc = HeapError(f"{count} view(s) of a borrowed RRef outlived the call that lent it")
    return late_panic(callee, caller, exc)
