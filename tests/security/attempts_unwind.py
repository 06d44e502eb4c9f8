"""Class 7: swallowing the unwind. The test crashes the attacker while its thread is
inside `attack` (kernel.panic from the root side); whatever the attack does after the
crash (delete the kvstore's key 0, keep calling echo) is damage."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Load, Runtime, Unwound
from tests.security.snippets import SWALLOW, src

WAIT = """
def wait_for_crash(h):
    h.ctx.log("inside")
    while True:
        h.ctx.sleep(0.001)
"""

ATTEMPTS = [
    Attempt("unwind_exit_returns_true", src(SWALLOW, WAIT, """
        def attack(h):
            with Swallow():
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_exit_returns_truthy_int", src(WAIT, """
        class Keep:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return 7


        def attack(h):
            with Keep():
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_suppress_alias_from_mro", src(WAIT, """
        import contextlib


        def attack(h):
            everything = Exception.mro()[1]
            with contextlib.suppress(everything):
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "unwind", Runtime(SafetyError, "contextlib.suppress", rule="except")),
    Attempt("unwind_except_alias_from_mro", src(WAIT, """
        def attack(h):
            everything = [c for c in ValueError.mro() if c.__name__ == "BaseException"][0]
            try:
                wait_for_crash(h)
            except everything:
                pass
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_except_star_alias", src(WAIT, """
        def attack(h):
            everything = Exception.mro()[1]
            try:
                wait_for_crash(h)
            except* everything:
                pass
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_finally_calls_out", src(WAIT, """
        def attack(h):
            try:
                wait_for_crash(h)
            finally:
                h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_contextmanager_generator_swallows", src(WAIT, """
        import contextlib


        @contextlib.contextmanager
        def guard():
            everything = Exception.mro()[1]
            try:
                yield
            except everything:
                pass


        def attack(h):
            with guard():
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "load", Load("generator")),
    Attempt("unwind_exitstack_push_swallows", src(WAIT, """
        import contextlib


        def attack(h):
            with contextlib.ExitStack() as stack:
                stack.push(lambda *exc: True)
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_loop_keeps_calling_after_crash", src(SWALLOW, """
        def attack(h):
            h.ctx.log("inside")
            for _ in range(300):
                with Swallow():
                    h.echo.ping(1)
                    h.ctx.sleep(0.002)
            h.victim.delete(0)
            return 1
        """), "unwind", Unwound()),
    Attempt("unwind_spawned_thread_swallows_and_calls", src(SWALLOW, """
        def spin(h):
            for _ in range(300):
                with Swallow():
                    h.ctx.sleep(0.002)
            h.victim.delete(0)


        def attack(h):
            h.ctx.spawn(spin, h)
            h.ctx.log("inside")
            while True:
                h.ctx.sleep(0.001)
        """), "unwind", Unwound()),
    Attempt("unwind_exit_via_setattr_on_class", src(WAIT, """
        class Keep:
            def __enter__(self):
                return self


        def attack(h):
            setattr(Keep, "__exit__", lambda self, *exc: True)
            with Keep():
                wait_for_crash(h)
            h.victim.delete(0)
            return 1
        """), "unwind", Runtime(SafetyError, "'__exit__'", rule="attribute")),
    Attempt("unwind_except_baseexception_static", src(WAIT, """
        def attack(h):
            try:
                wait_for_crash(h)
            except BaseException:
                pass
            h.victim.delete(0)
            return 1
        """), "unwind", Load("except")),
]
