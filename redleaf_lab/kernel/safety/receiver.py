"""Private attributes belong to the receiver of a method: the static rule and its guard.

A domain may write `self._x` (and `cls._x`, `super()._x`) in the methods of its own
classes, and nowhere else. Spelling alone cannot decide that: `self = ctx`, a method
called as `Cls.method(ctx)` or `map(Cls.method, [ctx])` all put a trusted object in a
variable called `self`. So the rule has two halves:

* Static (`method_receiver`, used by the AST pass): `x._name` is allowed only when `x`
  is the first parameter, named `self` or `cls`, of a `def` written directly in a
  class body, and that name is bound nowhere else in the method (no assignment, walrus,
  loop or `with` target, nested parameter, `nonlocal`...). `super()._name` is allowed
  only directly inside such a method.
* Run time (`insert_guards`, applied by the loader after the check passes): every method
  that uses the privilege starts with a guard that checks its receiver is an instance
  (for `cls`: is a class) that the domain itself created, by exact type. A trusted
  object passed in as `self` is refused with a `SafetyError` before any line of the
  method runs. The classes a domain created are recorded by its `__build_class__`
  (safety.classes), so a subclass of a trusted class can never be one of them.

The guard costs one `type()` call and one set lookup per call of a method that uses
private attributes; methods that do not use them pay nothing.

`insert_guards` also rewrites every `.format` / `.format_map` attribute load into a
call of `__rl_fmt__`, which hands out a `str.format` that refuses attribute and index
fields naming private or dunder attributes (safety.builtins_safe).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .policy import _is_dunder

RECEIVER_NAMES = frozenset({"self", "cls"})
FORMAT_ATTRS = frozenset({"format", "format_map"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)

# Names the loader binds in every domain module (safety.classes.module_globals); the
# AST pass refuses dunder names in domain source, so domain code can never name them.
OWN_SET = "__rl_own__"
REAL_TYPE = "__rl_type__"
STRANGER = "__rl_stranger__"
CLASS_OK = "__rl_class_ok__"
SAFE_FORMAT = "__rl_fmt__"
STORE_ATTR = "__rl_setattr__"
AUG_ATTR = "__rl_augattr__"
DEL_ATTR = "__rl_delattr__"
AUG_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "iadd", ast.Sub: "isub", ast.Mult: "imul", ast.MatMult: "imatmul",
    ast.Div: "itruediv", ast.FloorDiv: "ifloordiv", ast.Mod: "imod", ast.Pow: "ipow",
    ast.LShift: "ilshift", ast.RShift: "irshift", ast.BitOr: "ior", ast.BitXor: "ixor",
    ast.BitAnd: "iand",
}


def _binds(sub: ast.AST, name: str) -> bool:
    """Does the node `sub` bind `name` (parameters included)?"""
    if isinstance(sub, ast.Name):
        return sub.id == name and not isinstance(sub.ctx, ast.Load)
    if isinstance(sub, ast.arg):
        return sub.arg == name
    if isinstance(sub, (ast.Global, ast.Nonlocal)):
        return name in sub.names
    if isinstance(sub, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name.split(".")[0]) == name for a in sub.names)
    if isinstance(sub, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return sub.name == name
    if isinstance(sub, ast.MatchMapping):
        return sub.rest == name
    if isinstance(sub, (*_FUNCTIONS, ast.ClassDef)):
        return sub.name == name
    return False


def _bindings_of(name: str, node: ast.AST) -> Iterator[ast.AST]:
    """Every place in `node`'s subtree that binds `name` (parameters included)."""
    return (sub for sub in ast.walk(node) if _binds(sub, name))


def first_parameter(func: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.arg | None:
    params = [*func.args.posonlyargs, *func.args.args]
    return params[0] if params else None


def method_receiver(
    func: ast.FunctionDef | ast.AsyncFunctionDef,
) -> tuple[str | None, str]:
    """(receiver name, '') for a method written directly in a class body whose first
    parameter is `self`/`cls` and bound nowhere else; (None, why not) otherwise.
    The caller knows whether `func` sits directly in a class body."""
    first = first_parameter(func)
    if first is None or first.arg not in RECEIVER_NAMES:
        return None, "the method has no `self` or `cls` parameter first"
    name = first.arg
    for binding in _bindings_of(name, func):
        if binding is first:
            continue
        line = getattr(binding, "lineno", func.lineno)
        return None, f"`{name}` is bound again on line {line}, so it may not be the receiver"
    return name, ""


def _is_zero_arg_super(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and not node.args
        and not node.keywords
    )


def _private(attr: str) -> bool:
    """The AST pass's notion of a private name (policy._is_dunder decides dunders)."""
    return attr.startswith("_") and not _is_dunder(attr)


def _uses_privilege(func: ast.FunctionDef | ast.AsyncFunctionDef, receiver: str) -> bool:
    """Does the method read a private attribute of its receiver (or of `super()`), or
    store into any attribute of its receiver?"""
    for sub in ast.walk(func):
        if not isinstance(sub, ast.Attribute):
            continue
        value = sub.value
        on_receiver = isinstance(value, ast.Name) and value.id == receiver
        if _private(sub.attr) and (on_receiver or _is_zero_arg_super(value)):
            return True
        if on_receiver and not isinstance(sub.ctx, ast.Load):
            return True
    return False


def _guard(func: ast.FunctionDef | ast.AsyncFunctionDef, receiver: str, where: str) -> ast.stmt:
    """`if type(self) is not __class__ and type(self) not in own: stranger(self, where)`
    (for `cls`: `class_ok(cls)`). `__class__` is the class the method is written in (its
    zero-argument-super cell), so the common case costs one identity test; instances of
    subclasses take the set look-up."""
    name = ast.Name(receiver, ast.Load())
    if receiver == "cls":
        test: ast.expr = ast.UnaryOp(
            ast.Not(), ast.Call(ast.Name(CLASS_OK, ast.Load()), [name], [])
        )
    else:
        exact = ast.Compare(
            ast.Call(ast.Name(REAL_TYPE, ast.Load()), [name], []),
            [ast.IsNot()],
            [ast.Name("__class__", ast.Load())],
        )
        member = ast.Compare(
            ast.Call(ast.Name(REAL_TYPE, ast.Load()), [ast.Name(receiver, ast.Load())], []),
            [ast.NotIn()],
            [ast.Name(OWN_SET, ast.Load())],
        )
        test = ast.BoolOp(ast.And(), [exact, member])
    refuse = ast.Expr(
        ast.Call(
            ast.Name(STRANGER, ast.Load()),
            [ast.Name(receiver, ast.Load()), ast.Constant(where)],
            [],
        )
    )
    guard = ast.If(test, [refuse], [])
    return ast.copy_location(guard, func.body[0])


class _GuardInserter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.classes: list[str] = []
        # enclosing scopes, innermost last: ("class", None) or ("def", effective receiver)
        self.scopes: list[tuple[str, str | None]] = []

    # -- which name is a verified receiver here --------------------------------
    def _receiver(self) -> str | None:
        for kind, receiver in reversed(self.scopes):
            if kind == "def":
                return receiver
        return None

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        in_class = bool(self.scopes) and self.scopes[-1][0] == "class"
        receiver = method_receiver(node)[0] if in_class else self._receiver()
        self.scopes.append(("def", receiver))
        try:
            self.generic_visit(node)
        finally:
            self.scopes.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._visit_function(node)

    def _foreign_target(self, target: ast.expr) -> bool:
        """An attribute store that is not on the verified receiver."""
        if not isinstance(target, ast.Attribute):
            return False
        value = target.value
        return not (isinstance(value, ast.Name) and value.id == self._receiver())

    @staticmethod
    def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.stmt:
        call = ast.Expr(ast.Call(ast.Name(name, ast.Load()), args, []))
        return ast.copy_location(call, like)

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        if len(node.targets) == 1 and self._foreign_target(node.targets[0]):
            target = node.targets[0]
            assert isinstance(target, ast.Attribute)
            return self._call(STORE_ATTR, [target.value, ast.Constant(target.attr), node.value],
                              node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and self._foreign_target(node.target):
            target = node.target
            assert isinstance(target, ast.Attribute)
            return self._call(STORE_ATTR, [target.value, ast.Constant(target.attr), node.value],
                              node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if self._foreign_target(node.target):
            target = node.target
            assert isinstance(target, ast.Attribute)
            op = ast.Constant(AUG_OPERATORS[type(node.op)])
            return self._call(AUG_ATTR, [target.value, ast.Constant(target.attr), op, node.value],
                              node)
        return node

    def visit_Delete(self, node: ast.Delete) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        if not any(self._foreign_target(t) for t in node.targets):
            return node
        out: list[ast.stmt] = []
        for target in node.targets:
            if self._foreign_target(target):
                assert isinstance(target, ast.Attribute)
                out.append(self._call(DEL_ATTR, [target.value, ast.Constant(target.attr)], node))
            else:
                out.append(ast.copy_location(ast.Delete([target]), node))
        return out

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.classes.append(node.name)
        self.scopes.append(("class", None))
        try:
            for item in node.body:
                if isinstance(item, _FUNCTIONS):
                    receiver, _ = method_receiver(item)
                    if receiver is not None and _uses_privilege(item, receiver):
                        where = ".".join([*self.classes, item.name])
                        body = item.body
                        docstring = (
                            body
                            and isinstance(body[0], ast.Expr)
                            and isinstance(body[0].value, ast.Constant)
                            and isinstance(body[0].value.value, str)
                        )
                        at = 1 if docstring and len(body) > 1 else 0
                        body.insert(at, _guard(item, receiver, where))
            self.generic_visit(node)
        finally:
            self.classes.pop()
            self.scopes.pop()
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr in FORMAT_ATTRS and isinstance(node.ctx, ast.Load):
            call = ast.Call(
                ast.Name(SAFE_FORMAT, ast.Load()), [node.value, ast.Constant(node.attr)], []
            )
            return ast.copy_location(call, node)
        return node


def insert_guards(tree: ast.Module) -> ast.Module:
    """Add the receiver guards and the safe `.format` to a checked domain module."""
    tree = _GuardInserter().visit(tree)
    return ast.fix_missing_locations(tree)
