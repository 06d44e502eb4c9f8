"""Every error RedLeaf Lab raises, in one place.

The hierarchy mirrors who is at fault:

* `RpcError` is the only error a caller sees when a domain it called panicked
  (RedLeaf's `RpcError::PanicUnwind`). Only the trusted proxy code creates it.
* `DomainError` (e.g. `InvalidRequest`) is an error a domain returns on purpose;
  it crosses the proxy and the domain keeps running.
* `HeapError` and its subclasses report a misuse of the shared heap: use after
  move, a move while views are alive, writing through a borrow, a stale id.
* `ExchangeError` rejects a value that may not cross a domain boundary.
* `InterfaceError` rejects a bad interface definition at definition time.
* `SafetyError` rejects domain source that uses an escape hatch.
* `DomainLoadError` reports a domain that cannot be loaded (syntax error,
  missing `init`, bad manifest); the kernel stays healthy.

`DomainUnwind` is not an error for users: it is the asynchronous exception the
kernel delivers to threads executing inside a crashed domain. It derives from
BaseException so that `except Exception` in domain code cannot swallow it.
"""

from __future__ import annotations

import sys
from typing import Any


def _refuse_class_change(cls: type, name: str) -> None:
    """Refuse changing a trusted class while the calling thread is inside a domain."""
    context = sys.modules.get("redleaf_lab.kernel.context")
    if context is None:  # no kernel yet: no domain can be running
        return
    current = context.current_domain()
    if current is context.ROOT:
        return
    module = type.__dict__["__module__"].__get__(cls)
    if isinstance(module, str) and module.startswith("redleaf_lab"):
        raise SafetyError(
            "<runtime>", 0, "class",
            f"changing {name!r} of the trusted class {cls.__qualname__} refused inside domain "
            f"{current.name!r}: the class is shared by the kernel and every domain",
        )


class TrustedMeta(type):
    """The metaclass of trusted classes (errors here, `redleaf_lab.sealed.Sealed`): their
    attributes cannot be set or deleted from inside a domain."""

    def __setattr__(cls, name: str, value: Any) -> None:
        _refuse_class_change(cls, name)
        super().__setattr__(name, value)

    def __delattr__(cls, name: str) -> None:
        _refuse_class_change(cls, name)
        super().__delattr__(name)


_PLAIN = (str, int, float, bool, bytes, type(None))


def safe_repr(value: Any, limit: int = 60) -> str:
    """repr() of a value without running anybody's code: plain scalars (exact types) and
    tuples of them are shown, anything else as `<TypeName>` (a domain's `__repr__` must
    not run in its caller's context)."""
    t = type(value)
    if t in _PLAIN or (t.__module__ == "numpy" and t.__name__ in _NUMPY_SCALARS):
        text = repr(value)
    elif t is tuple:
        text = "(" + ", ".join(safe_repr(v, limit) for v in value[:8]) + (
            ", ...)" if len(value) > 8 else ",)" if len(value) == 1 else ")")
    else:
        text = f"<{type.__dict__['__qualname__'].__get__(t)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: Any) -> str:
    """The name of a value's type, read without running a metaclass's code."""
    return type.__dict__["__qualname__"].__get__(type(value))


_NUMPY_SCALARS = frozenset({
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
    "float32", "float64", "longdouble", "bool", "bool_", "intc", "uintc", "longlong",
    "ulonglong", "short", "ushort", "byte", "ubyte", "long", "ulong"})
# An exception's arguments, read past any `args` property a domain's exception class defines.
exception_args = BaseException.__dict__["args"].__get__


def describe_exception(exc: BaseException) -> str:
    """`TypeName: message` of an exception, computed without running its class's code
    (no `__str__`, no `args` property of a domain's exception class). The message is
    shown when every argument is a plain value."""
    name = type.__dict__["__qualname__"].__get__(type(exc))
    args = exception_args(exc)
    if len(args) == 1 and type(args[0]) is str:
        message = args[0]
    else:
        message = ", ".join(safe_repr(a, 200) for a in args)
    return f"{name}: {message}" if message else name


class RedLeafError(Exception, metaclass=TrustedMeta):
    """Base class of every RedLeaf Lab error."""


class RpcError(RedLeafError):
    """The callee domain panicked (or was already dead) during a cross-domain call.

    Attributes:
        domain: name of the domain that failed.
        reason: short text: "panic", "crashed", "stopped", "restart limit", ...
        original: the exception that caused the panic, if any; its traceback is kept.
    """

    def __init__(
        self, domain: str, reason: str, original: BaseException | None = None,
        detail: str | None = None,
    ) -> None:
        if detail is None and original is not None:
            detail = describe_exception(original)
        super().__init__(f"domain {domain!r} {reason}" + (f": {detail}" if detail else ""))
        self.domain = domain
        self.reason = reason
        self.original = original
        if original is not None:
            self.__cause__ = original

    @property
    def original_traceback(self) -> Any:
        return None if self.original is None else self.original.__traceback__


class DomainError(RedLeafError):
    """An error a domain returns to its caller on purpose: RedLeaf's `Err` inside
    `RpcResult<Result<T, E>>`. The proxy passes it through (a fresh instance with the
    message only, no traceback into the callee) and the callee keeps running. Any other
    exception is a panic. Only classes defined by RedLeaf Lab pass; a domain raises one
    of these from `redleaf_lab.api`."""


class InvalidRequest(DomainError):
    """The request is malformed or out of range (bad block number, bad length, ...)."""


class DomainUnwind(BaseException, metaclass=TrustedMeta):
    """Delivered asynchronously to threads executing inside a crashed domain."""


class InjectedPanic(RedLeafError):
    """A panic raised on purpose by fault injection."""


class HeapError(RedLeafError):
    """A misuse of the shared heap or of an RRef."""


class StaleRefError(HeapError):
    """The RRef's object was freed, reclaimed, or moved into a container."""


class UseAfterMoveError(HeapError):
    """The RRef was moved to another domain; this domain no longer owns it."""


class NotOwnerError(HeapError):
    """The current domain neither owns nor borrows this RRef."""


class BorrowedError(HeapError):
    """The object is borrowed (or has live views) and cannot be moved or freed."""


class BorrowWriteError(HeapError):
    """Attempt to write through an immutable borrow."""


class HeapFullError(HeapError):
    """The shared-heap arena or registry is full."""


class DeadDomainError(HeapError):
    """The target domain of a heap operation is dead."""


class ExchangeError(RedLeafError):
    """A value that may not cross a domain boundary was passed to a proxy."""


class DeviceRevokedError(RedLeafError):
    """A domain wrote a device's registers while another domain (or nobody, after its
    driver crashed) is the device's driver: a dead incarnation's thread that has not
    unwound yet must not disturb the controller its successor re-initialized."""


class InterfaceError(RedLeafError):
    """An interface definition mentions a non-exchangeable type or is malformed."""


class SafetyError(RedLeafError):
    """Domain source refused by the safe-subset check.

    Attributes: filename, line, rule (a short rule id such as "import"), message.
    """

    def __init__(self, filename: str, line: int, rule: str, message: str) -> None:
        super().__init__(f"{filename}:{line}: [{rule}] {message}")
        self.filename = filename
        self.line = line
        self.rule = rule
        self.message = message


class DomainLoadError(RedLeafError):
    """A domain could not be loaded; the kernel is unaffected."""
