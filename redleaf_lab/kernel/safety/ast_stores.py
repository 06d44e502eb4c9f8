"""The AST pass's rule for attribute stores in compound targets (a mixin of `_Checker`).

Attribute stores into objects other than the method's own receiver become checked calls
(safety.receiver: `obj.x = v`, `obj.x += v`, `del obj.x`). That rewrite has no form for
an attribute inside a tuple, loop, `with` or comprehension target or a chained
assignment, so those are refused here, with the rule "attribute".
"""

from __future__ import annotations

import ast


class StoreTargets(ast.NodeVisitor):
    functions: list[tuple[bool, str | None, str]]

    def report(self, node: ast.AST, rule: str, message: str) -> None:
        raise NotImplementedError

    def generic_visit(self, node: ast.AST) -> None:
        super().generic_visit(node)

    def _is_receiver(self, expr: ast.expr) -> bool:
        if not isinstance(expr, ast.Name):
            return False
        for is_method, receiver, _why in reversed(self.functions):
            if is_method:
                return receiver == expr.id
        return False

    def _check_compound_target(self, target: ast.expr, what: str) -> None:
        """Attribute stores outside the receiver become checked calls (safety.receiver);
        that works for `obj.x = v`, `obj.x += v` and `del obj.x`, not inside tuple, loop,
        `with` or comprehension targets or chained assignments."""
        for sub in ast.walk(target):
            if isinstance(sub, ast.Attribute) and not isinstance(sub.ctx, ast.Load) and \
                    not self._is_receiver(sub.value):
                self.report(sub, "attribute", f"storing into `{ast.unparse(sub)}` as part of "
                            f"{what} refused: assign attributes of objects other than `self` "
                            "one at a time (`obj.x = value`)")

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) > 1 or not isinstance(node.targets[0], (ast.Attribute, ast.Name,
                                                                     ast.Subscript)):
            for target in node.targets:
                self._check_compound_target(target, "a multiple or unpacking assignment")
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._check_compound_target(node.target, "a loop target")
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._check_compound_target(node.target, "a loop target")
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._check_compound_target(node.optional_vars, "a `with` target")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._check_compound_target(node.target, "a comprehension target")
        self.generic_visit(node)

