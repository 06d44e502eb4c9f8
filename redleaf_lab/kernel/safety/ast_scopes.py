"""Syntax-tree helpers of the AST pass: scopes, attribute chains, positions.

`_scope_bindings` approximates Python's scoping well enough to tell a name the
domain bound itself (a parameter called `open`) from a builtin;
`_attribute_chain` splits `a.b.c` into its root and attribute names; and
`_position` gives the source position used to order violations.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _arg_names(args: ast.arguments) -> Iterator[str]:
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
        yield arg.arg
    if args.vararg is not None:
        yield args.vararg.arg
    if args.kwarg is not None:
        yield args.kwarg.arg


def _scope_bindings(scope: ast.AST) -> tuple[set[str], set[str]]:
    """(names bound directly in `scope`, names it declares global).

    An approximation of Python's scoping, used only to tell a rebound `open` or
    `input` (a parameter, a local) from the builtin; the run-time builtins are
    the real enforcement, so erring on the lenient side is harmless.
    """
    bound: set[str] = set()
    declared_global: set[str] = set()
    todo: list[ast.AST]
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        bound.update(_arg_names(scope.args))
        todo = list(scope.body)
    elif isinstance(scope, ast.Lambda):
        bound.update(_arg_names(scope.args))
        todo = [scope.body]
    elif isinstance(scope, _COMPREHENSIONS):
        todo = list(ast.iter_child_nodes(scope))
    elif isinstance(scope, ast.ClassDef):
        todo = list(scope.body)
    else:
        todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.Import):
            bound.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            bound.update(a.asname or a.name for a in node.names if a.name != "*")
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            bound.update(node.names)
        todo.extend(ast.iter_child_nodes(node))
    return bound - declared_global, declared_global


def _attribute_chain(node: ast.expr) -> tuple[ast.expr, list[str]]:
    """`a.b.c` -> (Name a, ["b", "c"])."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    attrs.reverse()
    return node, attrs


def _position(node: ast.AST) -> tuple[int, int]:
    """Source position used to order violations; for `x.attr`, the position of `attr`."""
    if isinstance(node, ast.Attribute) and node.end_lineno is not None:
        return node.end_lineno, max((node.end_col_offset or 0) - len(node.attr), 0)
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
