"""Class 6: copies of views, borrows, exporters and RRefs escape the borrow rules."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Runtime
from tests.security.snippets import src

REFUSED = Runtime(SafetyError, "copy")

ATTEMPTS = [
    Attempt("copy_exporter_outlives_borrow", src("""
        import copy

        import numpy as np

        STASH = []


        def on_lend(h, data):
            view = data.array()
            STASH.append(np.asarray(copy.copy(view.base.base)))
            return 1


        def attack(h):
            return int(STASH[0][0]) + 1
        """), "call", REFUSED),
    Attempt("copy_exporter_write_after_move", src("""
        import copy

        import numpy as np


        def attack(h):
            block = h.kept[0]
            view = block.array()
            ghost = np.asarray(copy.copy(view.base.base))
            del view
            h.victim.put(5, block)
            ghost[:] = 0x66
            return 1
        """), "call", REFUSED),
    Attempt("copy_shallow_borrow_stays_live", src("""
        import copy

        STASH = []


        def on_lend(h, data):
            STASH.append(copy.copy(data))
            return 1


        def attack(h):
            return STASH[0].tobytes()[0] + 1
        """), "call", REFUSED),
    Attempt("copy_deep_borrow_stays_live", src("""
        import copy

        STASH = []


        def on_lend(h, data):
            STASH.append(copy.deepcopy(data))
            return 1


        def attack(h):
            return STASH[0].tobytes()[0] + 1
        """), "call", REFUSED),
    Attempt("copy_rref_views_escape_the_move", src("""
        import copy


        def attack(h):
            block = h.kept[0]
            twin = copy.copy(block)
            view = twin.array()
            h.victim.put(5, block)
            view[:] = 0x66
            return 1
        """), "call", REFUSED),
    Attempt("copy_dispatch_table_poisoned", src("""
        import copy


        def attack(h):
            copy.dispatch_table[complex] = lambda c: (complex, (1.0, 2.0))
            return 1
        """), "call", Runtime(SafetyError, "copy.dispatch_table", rule="module")),
    Attempt("copy_reduce_returns_real_getattr_call", src("""
        import copy


        class Key:
            def __init__(self, ctx):
                self.ctx = ctx

            def __reduce__(self):
                return (getattr, (self.ctx, "_domain"))


        def attack(h):
            copy.copy(Key(h.ctx)).kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "_domain")),
    Attempt("copy_reduce_reaches_builtins_module", src("""
        import copy


        class Key:
            def __reduce__(self):
                return (getattr, (print, "__self__"))


        def attack(h):
            copy.copy(Key()).open("@WATCH@/reduce_open", "w").close()
            return 1
        """), "call", Runtime(SafetyError)),
    Attempt("copy_context_keeps_the_domain", src("""
        import copy


        def attack(h):
            twin = copy.copy(h.ctx)
            return len(twin.name) + twin.id
        """), "call", REFUSED),
    Attempt("copy_proxy_duplicates_capability", src("""
        import copy


        def attack(h):
            twin = copy.copy(h.victim)
            return len(twin.keys()) + 1
        """), "call", REFUSED),
    Attempt("copy_deepcopy_memo_seeded_exporter", src("""
        import copy

        import numpy as np


        def attack(h):
            block = h.kept[0]
            view = block.array()
            exporter = view.base.base
            memo = {id(exporter.token): exporter.token, id(exporter.pin): exporter.pin}
            ghost = np.asarray(copy.deepcopy(exporter, memo))
            del view, exporter, memo
            h.victim.put(5, block)
            ghost[:] = 0x66
            return 1
        """), "call", Runtime(AttributeError, "token")),
]
