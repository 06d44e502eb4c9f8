"""`str.format` for domains: replacement fields may not name private or frame attributes.

`'{0.__class__.__init__.__globals__}'.format(x)` walks attributes by name inside C, past
every attribute check; RestrictedPython and Jinja2's sandbox both had to close the same
hole. The loader rewrites each `.format` / `.format_map` attribute load in domain code
into `safe_format_attr(obj, name)` (safety.receiver), and the domain's `getattr` does the
same: for a `str` (or the `str` class) it returns a version that parses the format
string first and refuses a field whose attribute chain has a name starting with `_` or
a frame/code attribute. Other objects' `format` attributes are returned as they are.
"""

from __future__ import annotations

import _string
from collections.abc import Callable
from typing import Any

from redleaf_lab.errors import SafetyError

from . import policy


def _check_field(field: str, fmt: str) -> None:
    _first, rest = _string.formatter_field_name_split(field)
    for is_attribute, key in rest:
        if is_attribute and (str(key).startswith("_") or key in policy.FRAME_ATTRS):
            raise SafetyError(
                "<runtime>", 0, "format",
                f"format string {fmt!r} refused: the field {field!r} reads the attribute "
                f"{key!r}; format fields may not reach private, dunder or frame attributes",
            )


def check_format_string(fmt: str) -> None:
    """Raise SafetyError if a replacement field (nested ones too) names a refused attribute."""
    for _literal, field, spec, _conversion in _string.formatter_parser(fmt):
        if field:
            _check_field(field, fmt)
        if spec and "{" in spec:
            check_format_string(spec)


def _format(fmt: str, *args: Any, **kwargs: Any) -> str:
    if not isinstance(fmt, str):
        raise TypeError(f"descriptor 'format' for 'str' objects doesn't apply to {fmt!r}")
    check_format_string(fmt)
    return str.format(fmt, *args, **kwargs)


def _format_map(fmt: str, mapping: Any) -> str:
    if not isinstance(fmt, str):
        raise TypeError(f"descriptor 'format_map' for 'str' objects doesn't apply to {fmt!r}")
    check_format_string(fmt)
    return str.format_map(fmt, mapping)


_UNBOUND: dict[str, Callable[..., str]] = {"format": _format, "format_map": _format_map}


def safe_format_attr(obj: Any, name: str) -> Any:
    """`obj.format` / `obj.format_map` as domain code gets it."""
    if obj is str:
        return _UNBOUND[name]
    if isinstance(obj, str):
        unbound = _UNBOUND[name]
        return lambda *args, **kwargs: unbound(obj, *args, **kwargs)
    return getattr(obj, name)
