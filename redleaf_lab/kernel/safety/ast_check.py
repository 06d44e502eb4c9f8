"""The AST pass of the safe-subset check: `check_source` and `find_violations`.

Before the kernel loads a domain it parses every file and walks the tree with
`_Checker`, which reports each use of something outside the safe subset (see
the rules in the package docstring) as a `SafetyError` naming the file, the
line, the rule and what to do instead. The policy constants are read from
`policy` at call time.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

from redleaf_lab.errors import SafetyError

from . import policy
from .ast_scopes import _attribute_chain, _position, _scope_bindings
from .ast_stores import StoreTargets
from .generators import cleanup_violations
from .messages import (
    _BUILTIN_HINTS,
    _DEVICE_MEMORY,
    _FLAGS_MESSAGE,
    _dunder_message,
    _frame_message,
    _import_message,
    _module_message,
    _numpy_message,
    _plain_project_import_message,
    _private_message,
)
from .parsing import parse
from .policy import (
    _ARRAY_BUFFER_KEYWORDS,
    _ARRAY_CONSTRUCTORS,
    _ATTR_BUILTINS,
    _FORBIDDEN_BINDINGS,
    _MODULE_DUNDER_BINDINGS,
    _NAME_LOAD_OK,
    _is_dunder,
    _is_numpy_module,
    _is_project_module,
    _numpy_submodule_refused,
    is_allowed_import,
)
from .receiver import RECEIVER_NAMES, method_receiver
from .runtime import _public_names


def _load_module(name: str) -> Any:
    """The module `name`, imported if needed; None if that fails (the checker stays lenient)."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    try:
        return importlib.import_module(name)
    except Exception:
        return None


class _Checker(StoreTargets, ast.NodeVisitor):
    def __init__(self, tree: ast.Module, filename: str, allowed: Callable[[str], bool]) -> None:
        self.filename = filename
        self.allowed = allowed
        self.found: list[tuple[int, int, int, SafetyError]] = []
        # name -> (module, attribute or None): what an import statement bound to the name.
        self.import_bindings: dict[str, tuple[str, str | None]] = {}
        self.numpy_names: set[str] = set()
        self._collect_imports(tree)
        module_bound, module_global = _scope_bindings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                module_bound.update(node.names)
        module_bound |= module_global
        self.module_bound = module_bound
        # Stack of (is_class, names bound in that scope), innermost last.
        self.scopes: list[tuple[bool, set[str]]] = []
        # Stack of enclosing functions: (is a method, its receiver or None, why not).
        self.functions: list[tuple[bool, str | None, str]] = []

    # -- bookkeeping --------------------------------------------------------

    def report(self, node: ast.AST, rule: str, message: str) -> None:
        line, col = _position(node)
        error = SafetyError(self.filename, line, rule, message)
        self.found.append((line, col, len(self.found), error))

    def _collect_imports(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.import_bindings[alias.asname] = (alias.name, None)
                        bound = alias.asname
                    else:
                        bound = alias.name.split(".")[0]
                        self.import_bindings[bound] = (bound, None)
                    if _is_numpy_module(alias.name):
                        self.numpy_names.add(bound)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    bound = alias.asname or alias.name
                    self.import_bindings[bound] = (node.module, alias.name)
                    if _is_numpy_module(node.module):
                        self.numpy_names.add(bound)

    def _is_bound(self, name: str) -> bool:
        """Is `name`, read here, a binding of the domain rather than a builtin?"""
        for depth, (is_class, names) in enumerate(reversed(self.scopes)):
            if is_class and depth > 0:
                continue  # class bodies are not visible from nested functions
            if name in names:
                return True
        return name in self.module_bound

    def _in_class_body(self) -> bool:
        return bool(self.scopes) and self.scopes[-1][0]

    def _visit_scope(self, node: ast.AST) -> None:
        self.scopes.append((isinstance(node, ast.ClassDef), _scope_bindings(node)[0]))
        try:
            self.generic_visit(node)
        finally:
            self.scopes.pop()

    # -- resolution of imported names --------------------------------------

    def _resolve_binding(self, name: str) -> Any:
        binding = self.import_bindings.get(name)
        if binding is None:
            return None
        module_name, attr = binding
        if not self.allowed(module_name):
            return None
        module = _load_module(module_name)
        if module is None or attr is None:
            return module
        value = vars(module).get(attr)
        if value is None and self.allowed(f"{module_name}.{attr}"):
            value = sys.modules.get(f"{module_name}.{attr}")
        return value

    def _resolve_chain(self, node: ast.expr) -> Any:
        """The module `node` (a name bound by an import, or an attribute chain) denotes."""
        root, attrs = _attribute_chain(node)
        if not isinstance(root, ast.Name):
            return None
        value = self._resolve_binding(root.id)
        for attr in attrs:
            if not isinstance(value, types.ModuleType):
                return None
            value = vars(value).get(attr)
        return value if isinstance(value, types.ModuleType) else None

    # -- bindings -----------------------------------------------------------

    def _check_binding(self, node: ast.AST, name: str, is_def: bool = False) -> None:
        if not _is_dunder(name):
            return
        if name not in _FORBIDDEN_BINDINGS and (
            is_def or self._in_class_body() or name in _MODULE_DUNDER_BINDINGS
        ):
            return
        self.report(
            node,
            "global",
            f"binding the name `{name}` refused: module dunders such as __builtins__ "
            "control how the domain runs; choose another name",
        )

    # -- imports ------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            module = alias.name
            if not self.allowed(module):
                self.report(alias, "import", _import_message(module))
            elif _is_project_module(module):
                self.report(alias, "import", _plain_project_import_message(module))
            self._check_binding(alias, alias.asname or module.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level > 0:
            for alias in node.names:
                if alias.name == "*" and not node.module:
                    self.report(
                        alias, "import", "`from . import *` refused: import names explicitly"
                    )
                elif alias.name != "*":
                    self._check_binding(alias, alias.asname or alias.name)
            return
        module = node.module or ""
        if not self.allowed(module):
            self.report(node, "import", _import_message(module))
            return
        loaded: Any = None
        for alias in node.names:
            name = alias.name
            if name == "*":
                self._check_star(alias, module)
                continue
            self._check_binding(alias, alias.asname or name)
            if name.startswith("_") and module != "__future__":
                self.report(alias, "private", _private_message(name))
                continue
            if _is_numpy_module(module):
                if _numpy_submodule_refused(f"{module}.{name}"):
                    self.report(alias, "import", _import_message(f"{module}.{name}"))
                    continue
                if name in policy.NUMPY_ANY_ATTRS or name in policy.NUMPY_MODULE_ATTRS:
                    self.report(alias, "numpy", _numpy_message(name))
                    continue
            if loaded is None:
                loaded = _load_module(module)
            value = vars(loaded).get(name) if loaded is not None else None
            if isinstance(value, types.ModuleType) and not self.allowed(value.__name__):
                self.report(alias, "import", _module_message(name, value.__name__))

    def _check_star(self, alias: ast.alias, module: str) -> None:
        if _is_numpy_module(module):
            self.report(
                alias,
                "import",
                f"`from {module} import *` refused: it would bind numpy's unsafe functions "
                "(frombuffer, load, ...) as bare names; use `import numpy as np`",
            )
            return
        if _is_project_module(module) and module not in policy.STAR_IMPORT_PROJECT_MODULES:
            self.report(
                alias,
                "import",
                f"`from {module} import *` refused: star imports from project modules are "
                "allowed only from redleaf_lab.api; import the names explicitly",
            )
            return
        loaded = _load_module(module)
        if loaded is None:
            return
        for public in _public_names(loaded):
            value = vars(loaded).get(public)
            if isinstance(value, types.ModuleType) and not self.allowed(value.__name__):
                self.report(alias, "import", _module_message(public, value.__name__))
                return

    # -- scopes and definitions ---------------------------------------------

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_binding(node, node.name, is_def=True)
        for where, what in cleanup_violations(node, self.module_bound):
            self.report(where, "generator", f"{what} refused: a generator or coroutine that "
                        "is dropped unfinished is closed by the garbage collector in whatever "
                        "domain collects it, and this cleanup code would run there; clean up "
                        "in the code that drives the generator instead")
        if self._in_class_body():
            receiver, why = method_receiver(node)
            self.functions.append((True, receiver, why))
        else:
            self.functions.append((False, None, "it is not a method of a class"))
        try:
            self._visit_scope(node)
        finally:
            self.functions.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def _private_receiver_ok(self, obj: ast.expr | None) -> tuple[bool, str]:
        """May `obj._name` be used here? (yes, '') or (no, why not)."""
        if isinstance(obj, ast.Name) and obj.id in RECEIVER_NAMES:
            for is_method, receiver, why in reversed(self.functions):
                if is_method:
                    if receiver == obj.id:
                        return True, ""
                    return False, why or f"`{obj.id}` is not this method's receiver"
            return False, f"`{obj.id}` here is not the receiver of a method"
        if (
            isinstance(obj, ast.Call)
            and isinstance(obj.func, ast.Name)
            and obj.func.id == "super"
        ):
            if obj.args or obj.keywords:
                return False, "`super(T, obj)` may name any object; use `super()` in a method"
            if self.functions and self.functions[-1][0] and self.functions[-1][1]:
                return True, ""
            return False, "`super()` is not directly inside a method with a receiver"
        return False, ""

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name, is_def=True)
        self._visit_scope(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_scope(node)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._visit_scope(node)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._visit_scope(node)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._visit_scope(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._visit_scope(node)

    # -- names ----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            self._check_binding(node, name)
        elif name in policy.REFUSED_BUILTINS and not self._is_bound(name):
            self.report(
                node, "builtin", f"`{name}` is not available in a domain: {_BUILTIN_HINTS[name]}"
            )
        elif _is_dunder(name) and name not in _NAME_LOAD_OK:
            why = policy.REFUSED_DUNDER_ATTRS.get(name, "is interpreter machinery")
            self.report(node, "dunder", f"name `{name}` refused: it {why}")

    # -- attributes -----------------------------------------------------------

    def _attr_violation(self, obj: ast.expr | None, attr: str) -> tuple[str, str] | None:
        """(rule, message) if `obj.attr` is refused by the name-based rules; obj=None
        means an unknown object (match patterns)."""
        if _is_dunder(attr):
            if attr not in policy.ALLOWED_DUNDER_ATTRS:
                return "dunder", _dunder_message(attr)
            return None
        if attr.startswith("_"):
            own, why = self._private_receiver_ok(obj)
            return None if own else ("private", _private_message(attr, why))
        if attr in policy.FRAME_ATTRS:
            return "frame", _frame_message(attr)
        if attr in policy.NUMPY_ANY_ATTRS:
            return "numpy", _numpy_message(attr)
        if attr in policy.NUMPY_MODULE_ATTRS and obj is not None:
            root, _ = _attribute_chain(obj)
            if isinstance(root, ast.Name) and root.id in self.numpy_names:
                return "numpy", _numpy_message(attr)
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        violation = self._attr_violation(node.value, node.attr)
        if (
            violation is None
            and not isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "flags"
        ):
            violation = ("numpy", _FLAGS_MESSAGE)
        if violation is None:
            owner = self._resolve_chain(node.value)
            if owner is not None and not isinstance(node.ctx, ast.Load):
                violation = (
                    "module",
                    f"changing attribute `{node.attr}` of module {owner.__name__!r} refused: "
                    "modules are shared by every domain and the kernel; keep state in the "
                    "domain's own objects",
                )
            elif owner is not None:
                value = vars(owner).get(node.attr)
                if isinstance(value, types.ModuleType) and not self.allowed(value.__name__):
                    violation = ("module", _module_message(node.attr, value.__name__))
        if violation is not None:
            self.report(node, *violation)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if (
            not isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "flags"
        ):
            self.report(node, "numpy", _FLAGS_MESSAGE)
        self.generic_visit(node)

    # -- calls ----------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        func_name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else None
        )
        if (
            isinstance(func, ast.Name)
            and func.id in _ATTR_BUILTINS
            and not self._is_bound(func.id)
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            attr = node.args[1].value
            violation = self._attr_violation(None, attr)
            if violation is not None:
                self.report(
                    node, "attribute", f"`{func.id}(..., {attr!r})` refused: {violation[1]}"
                )
        if func_name in _ARRAY_CONSTRUCTORS:
            keywords = {k.arg for k in node.keywords if k.arg}
            if keywords & _ARRAY_BUFFER_KEYWORDS or len(node.args) >= 3:
                self.report(
                    node,
                    "numpy",
                    f"`{func_name}(...)` over an existing buffer refused: {_DEVICE_MEMORY}; "
                    "create arrays with np.zeros/np.empty/np.array",
                )
        if func_name == "suppress":
            for arg in node.args:
                if self._catches_refused(arg):
                    self.report(node, "except", self._except_message())
                    break
        self.generic_visit(node)

    # -- exceptions -------------------------------------------------------------

    @staticmethod
    def _catches_refused(expr: ast.expr) -> bool:
        items = expr.elts if isinstance(expr, ast.Tuple) else [expr]
        for item in items:
            name = (
                item.id
                if isinstance(item, ast.Name)
                else item.attr
                if isinstance(item, ast.Attribute)
                else None
            )
            if name in policy.REFUSED_EXCEPT_NAMES:
                return True
        return False

    @staticmethod
    def _except_message(what: str = "catching BaseException") -> str:
        return (
            f"{what} refused: it would also swallow DomainUnwind, the exception the kernel "
            "delivers to unwind a crashed domain (and SystemExit, KeyboardInterrupt, "
            "GeneratorExit); catch Exception instead"
        )

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is None:
            self.report(node, "except", self._except_message("a bare `except:`"))
        elif self._catches_refused(node.type):
            caught = ast.unparse(node.type)
            self.report(node, "except", self._except_message(f"`except {caught}`"))
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    # -- match statements -------------------------------------------------------

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:
            violation = self._attr_violation(None, attr)
            if violation is not None:
                self.report(node, *violation)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._check_binding(node, node.rest)
        self.generic_visit(node)


def find_violations(
    source: str, filename: str, *, allowed: Callable[[str], bool] | None = None
) -> list[SafetyError]:
    """Every violation of the safe subset in `source`, in source order.

    A file that does not parse yields a single SafetyError with rule "syntax".
    `allowed` replaces `is_allowed_import` (e.g. to admit extra modules).
    """
    try:
        tree = parse(source, filename)
    except SyntaxError as exc:
        detail = exc.msg or "invalid syntax"
        return [SafetyError(filename, exc.lineno or 0, "syntax", f"syntax error: {detail}")]
    except ValueError as exc:  # e.g. null bytes in the source
        return [SafetyError(filename, 0, "syntax", f"cannot parse: {exc}")]
    checker = _Checker(tree, filename, allowed if allowed is not None else is_allowed_import)
    checker.visit(tree)
    return [error for _, _, _, error in sorted(checker.found, key=lambda f: f[:3])]


def check_source(
    source: str, filename: str, *, allowed: Callable[[str], bool] | None = None
) -> None:
    """Raise SafetyError for the first violation of the safe subset in `source`."""
    violations = find_violations(source, filename, allowed=allowed)
    if violations:
        raise violations[0]
