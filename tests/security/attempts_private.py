"""Class 2: the private-attribute rule keys on spelling (`self`, `cls`, `super()`)."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Load, Runtime
from tests.security.snippets import src

NO_ATTR = Runtime(AttributeError)

# Every attack below reaches the kernel through the context's private `_domain` (and
# panics the kvstore), or the raw heap through an RRef's `_heap` (and frees or steals
# the kvstore's value), with a name the static rule trusts.
STEAL = """
def steal(heap, me):
    for entry in heap.entries():
        if entry.owner not in (0, 1, me) and entry.size == 4096:
            heap.move(entry.id, entry.owner, me)
    return 1
"""

ATTEMPTS = [
    Attempt("priv_self_rebound_to_ctx", src("""
        def attack(h):
            self = h.ctx
            self._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_cls_rebound_to_rref_steals", src(STEAL, """
        def attack(h):
            cls = h.kept[0]
            return steal(cls._heap, h.ctx.id)
        """), "call", Load("private")),
    Attempt("priv_super_two_args_reaches_rref_heap", src(STEAL, """
        from redleaf_lab.api import RRef


        def attack(h):
            return steal(super(RRef, h.kept[0])._heap, h.ctx.id)
        """), "call", Load("private")),
    Attempt("priv_method_called_with_foreign_self", src("""
        class Peek:
            def domain(self):
                return self._domain


        def attack(h):
            Peek.domain(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "called with a DomainContext as its receiver", rule="private")),
    Attempt("priv_nested_function_param_named_self", src("""
        def attack(h):
            def grab(self):
                return self._domain

            grab(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_lambda_param_named_self", src("""
        grab = lambda self: self._domain


        def attack(h):
            grab(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_default_argument_self", src("""
        def attack(h):
            def grab(self=h.ctx):
                return self._domain

            grab().kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_walrus_rebinds_self", src("""
        def attack(h):
            if (self := h.ctx) is not None:
                self._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_positional_only_self", src("""
        def grab(self, /):
            return self._domain


        def attack(h):
            grab(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_keyword_only_self", src("""
        def grab(*, self):
            return self._domain


        def attack(h):
            grab(self=h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_staticmethod_with_self_param", src("""
        class Tool:
            @staticmethod
            def grab(self):
                return self._domain


        def attack(h):
            Tool.grab(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "called with a DomainContext as its receiver", rule="private")),
    Attempt("priv_decorator_swaps_self", src("""
        import functools


        def with_ctx(ctx):
            def wrap(method):
                return functools.partial(method, ctx)
            return wrap


        def attack(h):
            class Tool:
                @with_ctx(h.ctx)
                def grab(self):
                    return self._domain

            Tool.grab().kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "called with a DomainContext as its receiver", rule="private")),
    Attempt("priv_plain_function_param_named_cls", src("""
        def grab(cls):
            return cls._domain


        def attack(h):
            grab(h.ctx).kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_for_loop_target_self", src("""
        def attack(h):
            for self in (h.ctx,):
                self._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_with_as_self", src("""
        import contextlib


        def attack(h):
            with contextlib.nullcontext(h.ctx) as self:
                self._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_match_capture_self", src("""
        def attack(h):
            match h.ctx:
                case self:
                    self._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
    Attempt("priv_comprehension_variable_self", src("""
        def attack(h):
            [self._domain.kernel.panic("kvstore") for self in [h.ctx]]
            return 1
        """), "call", Load("private")),
    Attempt("priv_self_rebound_in_init_at_load", src("""
        def init(ctx, victim, echo, store):
            self = ctx
            self._domain.kernel.panic("kvstore")
            return AttackDomain(ctx, victim, echo, store)
        """), "load", Load("private")),
    Attempt("priv_self_rebound_to_borrow_target", src(STEAL, """
        def attack(h):
            self = h.kept[1]
            return steal(self._target._heap, h.ctx.id)
        """), "call", Load("private")),
    Attempt("priv_subclass_method_self_is_foreign_rref", src("""
        from redleaf_lab.api import RRef


        class Mine(RRef):
            def heap(self):
                return self._heap


        def attack(h):
            heap = Mine.heap(h.kept[1])
            for entry in heap.entries():
                if entry.owner not in (0, 1, h.ctx.id):
                    heap.free(entry.id)
            return 1
        """), "call", Runtime(SafetyError, "trusted class", rule="class")),
    Attempt("priv_getattr_computed_private_name", src("""
        def attack(h):
            getattr(h.ctx, "_" + "domain").kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "'_domain'")),
    Attempt("priv_plain_name_private_attribute", src("""
        def attack(h):
            ctx = h.ctx
            ctx._domain.kernel.panic("kvstore")
            return 1
        """), "call", Load("private")),
]
