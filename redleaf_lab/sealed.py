"""Trusted classes that domain code can hold but not change, copy or rebuild.

Everything the kernel hands a domain (capabilities, contexts, heap handles, views,
layouts, devices) is an instance of a class derived from `Sealed`, and every error class
is made by `TrustedMeta`:

* `TrustedMeta` refuses to set or delete a class attribute while the calling thread is
  inside a domain (`RRef.drop = ...` or `type(cap).interface = ...` would change the
  class for the kernel and every domain). The kernel (root context) is unaffected.
* `Sealed` refuses `copy.copy`, `copy.deepcopy` and pickling: a copy of a view's
  exporter or of a borrow would be a handle that the live-view count and the end of the
  borrow never see.

Instance attributes of trusted objects are protected where domain code writes them:
the loader turns every attribute store outside the method's own receiver into a
checked call (kernel.safety.receiver), which refuses trusted objects. A Python-level
`__setattr__` here would slow the kernel's own hot paths, so there is none.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import SafetyError, TrustedMeta

__all__ = ["Sealed", "TrustedMeta"]


def _refuse_copy(obj: Any) -> NoReturn:
    raise SafetyError(
        "<runtime>", 0, "copy",
        f"copying a {type(obj).__qualname__} refused: it is a trusted object (a capability, "
        "a heap handle or a view) and a copy would escape the kernel's bookkeeping; "
        "copy the data instead (e.g. rref.tobytes())",
    )


class Sealed(metaclass=TrustedMeta):
    """Base of trusted classes: no copies, no pickles, no class changes from domains."""

    __slots__ = ()

    def __copy__(self) -> NoReturn:
        _refuse_copy(self)

    def __deepcopy__(self, memo: Any) -> NoReturn:
        _refuse_copy(self)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse_copy(self)

    def __reduce__(self) -> NoReturn:
        _refuse_copy(self)
