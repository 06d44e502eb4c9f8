"""Class 5: callee code running as the caller (results, exceptions, finalizers, forgeries).

Each attack's hook checks whether it runs as another domain (a probe block it allocates
is not its own) and only then deletes the kvstore's key 0: damage that proves the code
ran with the caller's identity."""

from __future__ import annotations

from redleaf_lab.errors import ExchangeError, SafetyError
from tests.security.harness import Attempt, Load, Runtime
from tests.security.snippets import WHO, src

REFUSED = Runtime(SafetyError)
HOOK = WHO + """

HOLD = []


def strike():
    if HOLD and running_as_someone_else(HOLD[0]):
        HOLD[0].victim.delete(0)
"""

ATTEMPTS = [
    Attempt("callee_numpy_int_subclass_int_runs_as_caller", src(HOOK, """
        import numpy as np


        class Evil(np.int64):
            def __int__(self):
                strike()
                return 1


        def attack(h):
            HOLD.append(h)
            return Evil(1)
        """), "call", Runtime(ExchangeError)),
    Attempt("callee_numpy_int_subclass_index_runs_as_caller", src(HOOK, """
        import numpy as np


        class Evil(np.int32):
            def __index__(self):
                strike()
                return 1

            def __int__(self):
                strike()
                return 1


        def attack(h):
            HOLD.append(h)
            return Evil(1)
        """), "call", Runtime(ExchangeError)),
    Attempt("callee_result_repr_runs_in_error_message", src(HOOK, """
        class Odd:
            def __repr__(self):
                strike()
                return "odd"


        def attack(h):
            HOLD.append(h)
            return Odd()
        """), "call", Runtime(ExchangeError, "expected int")),
    Attempt("callee_result_str_and_index", src(HOOK, """
        class Odd:
            def __index__(self):
                strike()
                return 1

            def __repr__(self):
                strike()
                return "odd"


        def attack(h):
            HOLD.append(h)
            return Odd()
        """), "call", Runtime(ExchangeError, "expected int")),
    Attempt("callee_exception_str_runs_in_rpc_error", src(HOOK, """
        class Boom(Exception):
            def __str__(self):
                strike()
                return "boom"


        def attack(h):
            HOLD.append(h)
            raise Boom()
        """), "call", Runtime(Exception)),
    Attempt("callee_exception_cause_str_in_traceback", src(HOOK, """
        class Cause(Exception):
            def __str__(self):
                strike()
                return "cause"


        def attack(h):
            HOLD.append(h)
            try:
                raise Cause()
            except Cause as exc:
                raise ValueError("outer") from exc
        """), "call", Runtime(ValueError, "outer")),
    Attempt("callee_init_failure_str_at_load", src(HOOK, """
        class Boom(Exception):
            def __str__(self):
                strike()
                return "boom"


        def init(ctx, victim, echo, store):
            HOLD.append(AttackDomain(ctx, victim, echo, store))
            raise Boom()
        """), "load", Runtime(Exception)),
    Attempt("callee_del_finalizer_runs_in_collector", src(HOOK, """
        class Bomb:
            def __init__(self):
                self.me = self

            def __del__(self):
                strike()


        def attack(h):
            HOLD.append(h)
            Bomb()
            return 1
        """), "call", Runtime(SafetyError, "__del__", rule="class")),
    Attempt("callee_generator_finally_runs_in_collector", src(HOOK, """
        def ticking():
            try:
                yield 1
                yield 2
            finally:
                strike()


        def attack(h):
            HOLD.append(h)
            gen = ticking()
            next(gen)
            cycle = [gen]
            cycle.append(cycle)
            return 1
        """), "call", Load("generator")),
    Attempt("callee_forged_capability_subclass_of_proxy", src("""
        from redleaf_lab.interfaces.checksum import Checksum


        def attack(h):
            class Fake(type(h.victim)):
                interface = Checksum

                def crc32(self, data):
                    h.victim.delete(0)
                    return 0

            h.victim.use_checksum(Fake())
            return 1
        """), "call", Runtime(SafetyError, "trusted class", rule="class")),
    Attempt("callee_forged_capability_three_arg_type", src("""
        from redleaf_lab.interfaces.checksum import Checksum


        def attack(h):
            Fake = type("Fake", (type(h.victim),), {"interface": Checksum,
                                                   "crc32": lambda self, d: 0})
            h.victim.use_checksum(Fake())
            return 1
        """), "call", Runtime(SafetyError, "trusted class", rule="class")),
    Attempt("callee_forged_shadow_subclass", src("""
        def attack(h):
            class Fake(type(h.echo)):
                def ping(self, x):
                    return x

            return Fake.ping(h.echo, 1)
        """), "call", Runtime(SafetyError, "trusted class", rule="class")),
    Attempt("callee_forged_capability_interface_swapped", src("""
        from redleaf_lab.api import Block, RRef
        from redleaf_lab.interfaces.checksum import Checksum


        def attack(h):
            type(h.echo).interface = Checksum
            h.victim.use_checksum(h.echo)
            h.victim.put(5, RRef.new(Block))
            return 1
        """), "call", Runtime(SafetyError, "only classes the domain made itself may be changed", rule="attribute")),
]
