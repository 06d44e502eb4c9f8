"""Class 8: process-wide state and host files through allowed libraries."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Contained, Load, Runtime
from tests.security.snippets import src

REFUSED = Runtime(SafetyError)

ATTEMPTS = [
    Attempt("proc_statistics_random_seeds_the_global_generator", src("""
        import statistics


        def attack(h):
            statistics.random.seed(0)
            return 1
        """), "call", Runtime(SafetyError, "reached as another module's attribute",
                              rule="module")),
    Attempt("proc_contextlib_chdir_left_entered", src("""
        import contextlib


        def attack(h):
            contextlib.chdir("/").__enter__()
            return 1
        """), "call", Runtime(SafetyError, "chdir")),
    Attempt("proc_redirect_stdout_left_entered", src("""
        import contextlib


        def attack(h):
            contextlib.redirect_stdout(None).__enter__()
            return 1
        """), "call", Runtime(SafetyError, "redirect_stdout")),
    Attempt("proc_redirect_stderr_at_load", src("""
        import contextlib

        contextlib.redirect_stderr(None).__enter__()
        """), "load", Runtime(SafetyError, "redirect_stderr")),
    Attempt("proc_ndarray_dump_writes_host_file", src("""
        import numpy as np


        def attack(h):
            np.arange(3).dump("@WATCH@/dumped.pkl")
            return 1
        """), "call", Runtime(SafetyError, "open refused", rule="host")),
    Attempt("proc_ndarray_tofile_static", src("""
        import numpy as np


        def attack(h):
            np.arange(3).tofile("@WATCH@/tofile.bin")
            return 1
        """), "call", Load("numpy")),
    Attempt("proc_mrecords_openfile_reads_host", src("""
        import numpy.ma.mrecords as mrecords


        def attack(h):
            return len(mrecords.openfile("/etc/hostname").read()) + 1
        """), "call", Runtime(SafetyError, "open refused", rule="host")),
    Attempt("proc_formatter_get_field_real_import", src("""
        import string


        def attack(h):
            field = "0.__self__.__import__"
            real_import = string.Formatter().get_field(field, (print,), {})[0]
            real_import("os").mkdir("@WATCH@/formatter_import")
            return 1
        """), "call", Runtime(SafetyError, "string.Formatter", rule="module")),
    Attempt("proc_formatter_subclass_get_field", src("""
        import string


        class Mine(string.Formatter):
            pass


        def attack(h):
            got = Mine().get_field("0._domain", (h.ctx,), {})[0]
            got.kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "string.Formatter", rule="module")),
    Attempt("proc_update_wrapper_imports_kernel_globals", src("""
        import functools


        def attack(h):
            def carrier():
                pass

            functools.update_wrapper(carrier, h.ctx.sleep, assigned=(), updated=("__globals__",))
            thread_state().stack[-1].kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "update_wrapper", rule="attribute")),
    Attempt("proc_update_wrapper_assigned_private", src("""
        import functools


        class Box:
            pass


        def attack(h):
            box = Box()
            functools.update_wrapper(box, h.ctx, assigned=("_domain",), updated=())
            box.__wrapped__ = None
            return 1
        """), "call", Load("dunder")),
    Attempt("proc_format_leaks_victim_checksum", src("""
        def attack(h):
            return int("{0.domain.impl._sums[0]}".format(h.victim))
        """), "call", Runtime(SafetyError, "_sums", rule="format")),
    Attempt("proc_format_map_reaches_globals", src("""
        def attack(h):
            text = "{c.sleep.__globals__[thread_state]}".format_map({"c": h.ctx})
            return len(text)
        """), "call", Runtime(SafetyError, "__globals__", rule="format")),
    Attempt("proc_str_format_unbound", src("""
        def attack(h):
            return len(str.format("{0.__class__.__mro__}", h.ctx))
        """), "call", Runtime(SafetyError, "__class__", rule="format")),
    Attempt("proc_format_dunder_class_of_proxy", src("""
        def attack(h):
            return len("{0.__class__.__init__.__globals__}".format(h.victim))
        """), "call", Runtime(SafetyError, "__class__", rule="format")),
    Attempt("proc_fstring_reaches_private", src("""
        def attack(h):
            return len(f"{h.ctx._domain.kernel!r}")
        """), "call", Load("private")),
    Attempt("proc_random_seed_shared_generator", src("""
        import random


        def attack(h):
            random.seed(1234)
            return 1
        """), "call", Contained()),
    Attempt("proc_random_advances_shared_generator", src("""
        import random


        def attack(h):
            return random.randrange(1, 10)
        """), "call", Contained()),
    Attempt("proc_decimal_context_of_caller_thread", src("""
        import decimal


        def attack(h):
            decimal.getcontext().prec = 3
            return 1
        """), "call", Runtime(SafetyError, "decimal.getcontext", rule="module")),
    Attempt("proc_decimal_default_context", src("""
        import decimal


        def attack(h):
            decimal.DefaultContext.prec = 5
            return 1
        """), "call", Runtime(SafetyError, "decimal.DefaultContext", rule="module")),
    Attempt("proc_decimal_setcontext", src("""
        import decimal


        def attack(h):
            decimal.setcontext(decimal.Context(prec=2))
            return 1
        """), "call", Runtime(SafetyError, "decimal.setcontext", rule="module")),
    Attempt("proc_numpy_seterr_in_caller_thread", src("""
        import numpy as np


        def attack(h):
            np.seterr(all="raise")
            return 1
        """), "call", Contained()),
    Attempt("proc_numpy_printoptions", src("""
        import numpy as np


        def attack(h):
            np.set_printoptions(precision=1, threshold=3)
            return 1
        """), "call", Contained()),
    Attempt("proc_numpy_memmap_static", src("""
        import numpy as np

        np.memmap("@WATCH@/static.bin", dtype="u1", mode="w+", shape=(2,))
        """), "load", Load("numpy")),
    Attempt("proc_numpy_save_static_from_import", src("""
        from numpy import save
        """), "load", Load("numpy")),
    Attempt("proc_open_builtin_static", src("""
        def attack(h):
            open("@WATCH@/opened", "w").close()
            return 1
        """), "call", Load("builtin")),
]
