"""Generator and coroutine cleanup code: the part of a domain that can run anywhere.

A generator (or coroutine) that is dropped before it finishes is closed by the garbage
collector, in whichever thread and domain happens to collect it, maybe the kernel's:
CPython throws GeneratorExit at the suspended `yield`, so a `finally:` block, an
`except` clause or a `with` block's `__exit__` around that `yield` runs as somebody
else. Domain code therefore may not suspend (`yield`, `yield from`, `await`) inside a
`try` that has a `finally` clause or an `except` clause catching anything but named
`Exception` subclasses, nor inside a `with` block. Cleanup goes after the loop that
drives the generator, in the code that owns it.

`cleanup_violations(func)` lists (node, message) pairs for one function; the AST pass
reports them with the rule "generator".
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator

_SUSPEND = (ast.Yield, ast.YieldFrom, ast.Await)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _walk_scope(nodes: list[ast.stmt] | list[ast.AST]) -> Iterator[ast.AST]:
    """Every node under `nodes`, not descending into nested functions or classes."""
    todo = list(nodes)
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))


def _suspends(nodes: list[ast.stmt]) -> bool:
    return any(isinstance(n, _SUSPEND) for n in _walk_scope(nodes))


def _plain_exception(expr: ast.expr | None, rebound: set[str]) -> bool:
    """`except ValueError` / `except (KeyError, OSError)`: builtin Exception subclasses,
    by a name the module does not rebind."""
    if expr is None:
        return False
    items = expr.elts if isinstance(expr, ast.Tuple) else [expr]
    for item in items:
        if not isinstance(item, ast.Name) or item.id in rebound:
            return False
        value = getattr(builtins, item.id, None)
        if not (isinstance(value, type) and issubclass(value, Exception)):
            return False
    return True


def cleanup_violations(
    func: ast.FunctionDef | ast.AsyncFunctionDef, rebound: set[str]
) -> list[tuple[ast.AST, str]]:
    found: list[tuple[ast.AST, str]] = []
    for node in _walk_scope(list(func.body)):
        if isinstance(node, (ast.Try, ast.TryStar)):
            guarded = list(node.body)
            if node.finalbody and _suspends(guarded + list(node.orelse)):
                found.append((node, "a `finally:` around a `yield`/`await`"))
            elif any(not _plain_exception(h.type, rebound) for h in node.handlers) and \
                    _suspends(guarded):
                found.append((node, "an `except` clause (other than named Exception "
                                    "subclasses) around a `yield`/`await`"))
        elif isinstance(node, (ast.With, ast.AsyncWith)) and _suspends(list(node.body)):
            found.append((node, "a `with` block around a `yield`/`await`"))
    return found
