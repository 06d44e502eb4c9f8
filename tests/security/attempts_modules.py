"""Class 3: module aliases and parameters reach a module's own imports."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Load, Runtime
from tests.security.snippets import src

NO_ATTR = Runtime(AttributeError)

ATTEMPTS = [
    Attempt("mod_alias_contextlib_os_mkdir", src("""
        import contextlib


        def attack(h):
            m = contextlib
            m.os.mkdir("@WATCH@/contextlib_os")
            return 1
        """), "call", Runtime(SafetyError, "contextlib.os refused", rule="module")),
    Attempt("mod_helper_returns_dataclasses_sys", src("""
        import dataclasses


        def reach(module):
            return module.sys


        def attack(h):
            reach(dataclasses).setrecursionlimit(77)
            return 1
        """), "call", Runtime(SafetyError, "dataclasses.sys refused", rule="module")),
    Attempt("mod_alias_dataclasses_builtins_open", src("""
        import dataclasses


        def attack(h):
            d = dataclasses
            d.builtins.open("@WATCH@/dataclasses_open", "w").close()
            return 1
        """), "call", Runtime(SafetyError, "dataclasses.builtins refused", rule="module")),
    Attempt("mod_alias_enum_builtins_eval", src("""
        import enum


        def attack(h):
            e = enum
            return e.bltns.eval("len(__import__('os').listdir('.')) + 1")
        """), "call", Runtime(SafetyError, "enum.bltns refused", rule="module")),
    Attempt("mod_alias_typing_operator_attrgetter", src("""
        import typing


        def attack(h):
            t = typing
            grab = t.operator.attrgetter("_domain.kernel")
            grab(h.ctx).panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "typing.operator refused", rule="module")),
    Attempt("mod_alias_fractions_operator_at_load", src("""
        import fractions

        f = fractions
        GRAB = f.operator.attrgetter("_domain")


        def init(ctx, victim, echo, store):
            GRAB(ctx).kernel.panic("checksum")
            return AttackDomain(ctx, victim, echo, store)
        """), "load", Runtime(SafetyError, "fractions.operator refused", rule="module")),
    Attempt("mod_alias_statistics_sys_stdout", src("""
        import statistics


        def attack(h):
            s = statistics
            s.sys.stdout = None
            return 1
        """), "call", Runtime(SafetyError, "statistics.sys refused", rule="module")),
    Attempt("mod_alias_datetime_sys_modules", src("""
        import datetime


        def attack(h):
            d = datetime
            d.sys.modules["redleaf_lab.kernel.safety.policy"] = d
            return 1
        """), "call", Runtime(SafetyError, "datetime.sys refused", rule="module")),
    Attempt("mod_in_a_list_reaches_os", src("""
        import contextlib


        def attack(h):
            found = [contextlib]
            found[0].os.mkdir("@WATCH@/list_os")
            return 1
        """), "call", Runtime(SafetyError, "contextlib.os refused", rule="module")),
    Attempt("mod_class_attribute_reaches_os", src("""
        import contextlib


        class Holder:
            lib = contextlib


        def attack(h):
            Holder.lib.os.mkdir("@WATCH@/class_attr_os")
            return 1
        """), "call", Runtime(SafetyError, "contextlib.os refused", rule="module")),
    Attempt("mod_default_argument_reaches_sys", src("""
        import typing


        def attack(h, t=typing):
            t.sys.path.append("@WATCH@")
            return 1
        """), "call", Runtime(SafetyError, "typing.sys refused", rule="module")),
    Attempt("mod_alias_re_copyreg", src("""
        import re


        def attack(h):
            r = re
            r.copyreg.pickle(complex, lambda c: (complex, (0.0, 0.0)))
            return 1
        """), "call", Runtime(SafetyError, "re.copyreg refused", rule="module")),
    Attempt("mod_alias_collections_abc_submodule_sys", src("""
        import collections.abc


        def attack(h):
            c = collections
            c._sys.stderr = None
            return 1
        """), "call", Load("private")),
    Attempt("mod_alias_json_decoder_submodule", src("""
        import json


        def attack(h):
            j = json
            return len(j.decoder.scanstring('"leak"', 1)[0])
        """), "call", Runtime(SafetyError, "json.decoder refused", rule="module")),
    Attempt("mod_direct_json_decoder_attribute", src("""
        import json

        json.decoder.scanstring('"x"', 1)
        """), "load", Load("module")),
    Attempt("mod_alias_numpy_memmap_writes_host_file", src("""
        import numpy as np


        def attack(h):
            y = np
            mapped = y.memmap("@WATCH@/memmap.bin", dtype="u1", mode="w+", shape=(8,))
            mapped[:] = 1
            mapped.flush()
            return 1
        """), "call", Runtime(SafetyError, "numpy.memmap refused", rule="module")),
    Attempt("mod_alias_numpy_save", src("""
        import numpy as np


        def attack(h):
            y = np
            y.save("@WATCH@/saved.npy", y.arange(3))
            return 1
        """), "call", Runtime(SafetyError, "numpy.save refused", rule="module")),
    Attempt("mod_alias_numpy_savetxt", src("""
        import numpy as np


        def attack(h):
            y = np
            y.savetxt("@WATCH@/saved.txt", y.arange(3))
            return 1
        """), "call", Runtime(SafetyError, "numpy.savetxt refused", rule="module")),
    Attempt("mod_alias_numpy_fromfile_reads_host", src("""
        import numpy as np


        def attack(h):
            y = np
            return int(y.fromfile("/etc/hostname", dtype="u1").size) + 1
        """), "call", Runtime(SafetyError, "numpy.fromfile refused", rule="module")),
    Attempt("mod_alias_numpy_lib_format_open_memmap", src("""
        import numpy as np


        def attack(h):
            y = np
            y.lib.format.open_memmap("@WATCH@/open.npy", mode="w+", dtype="u1", shape=(2,))
            return 1
        """), "call", Runtime(SafetyError, "numpy.lib refused", rule="module")),
    Attempt("mod_numpy_passed_as_parameter_load", src("""
        import numpy as np


        def read(lib, path):
            return lib.load(path, allow_pickle=True)


        def attack(h):
            np.save("@WATCH@/x.npy", np.arange(2))
            return int(read(np, "@WATCH@/x.npy").sum()) + 1
        """), "call", Load("numpy")),
    Attempt("mod_numpy_lib_npyio_datasource", src("""
        import numpy as np


        def attack(h):
            y = np
            source = y.lib.npyio.DataSource("@WATCH@")
            return int(source.exists("/etc/hostname")) + 1
        """), "call", Runtime(SafetyError, "numpy.lib refused", rule="module")),
    Attempt("mod_numpy_getattr_computed_memmap", src("""
        import numpy as np


        def attack(h):
            getattr(np, "mem" + "map")("@WATCH@/m.bin", dtype="u1", mode="w+", shape=(2,))
            return 1
        """), "call", Runtime(SafetyError, "memmap")),
    Attempt("mod_numpy_ctypeslib_via_alias", src("""
        import numpy as np

        y = np
        LIB = y.ctypeslib
        """), "load", Load("numpy")),
    Attempt("mod_numpy_testing_via_alias", src("""
        import numpy as np


        def attack(h):
            y = np
            with y.testing.tempdir(dir="@WATCH@") as where:
                return len(where)
        """), "call", Runtime(SafetyError, "numpy.testing refused", rule="module")),
]
