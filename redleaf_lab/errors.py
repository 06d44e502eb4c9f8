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

from typing import Any


class RedLeafError(Exception):
    """Base class of every RedLeaf Lab error."""


class RpcError(RedLeafError):
    """The callee domain panicked (or was already dead) during a cross-domain call.

    Attributes:
        domain: name of the domain that failed.
        reason: short text: "panic", "crashed", "stopped", "restart limit", ...
        original: the exception that caused the panic, if any; its traceback is kept.
    """

    def __init__(
        self, domain: str, reason: str, original: BaseException | None = None
    ) -> None:
        detail = f": {type(original).__name__}: {original}" if original is not None else ""
        super().__init__(f"domain {domain!r} {reason}{detail}")
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


class DomainUnwind(BaseException):
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
