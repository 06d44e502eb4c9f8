"""One parser at a time: every `ast.parse` and AST `compile` of the kernel goes through here.

CPython 3.11 keeps the depth counter of its AST conversions (C tree to Python objects
in `ast.parse`, and back in `compile(tree)`) in state shared by every thread, and a
conversion that allocates can run the garbage collector, whose finalizers let another
thread run. Two threads converting at once then corrupt each other's count, and one
of them fails with `SystemError: AST constructor recursion depth mismatch` (CPython
gh-106905); a conversion that fails leaves the counter off for every later parse in
the process. The kernel converts from many threads (domains loaded or restarted from
traffic threads, Rv6 programs spawned by other programs), so it serializes them here.
The lock is held for the conversion only; nothing inside it waits for another thread.
"""

from __future__ import annotations

import ast
import threading
import types

_AST_LOCK = threading.Lock()


def parse(source: str, filename: str) -> ast.Module:
    """`ast.parse(source, filename)`, one thread at a time (SyntaxError, ValueError as usual)."""
    with _AST_LOCK:
        return ast.parse(source, filename=filename)


def compile_tree(tree: ast.Module, filename: str) -> types.CodeType:
    """`compile(tree, filename, "exec", dont_inherit=True)`, one thread at a time."""
    with _AST_LOCK:
        return compile(tree, filename, "exec", dont_inherit=True)
