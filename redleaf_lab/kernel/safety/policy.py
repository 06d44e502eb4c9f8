"""What domain code may use: the allow-lists, refuse-lists and import predicate.

This module owns the policy constants of the safe-subset check (the modules a
domain may import, the builtins, attribute names and exception names it may
not use) and `is_allowed_import`. The AST pass, the run-time builtins and the
messages all read these constants through this module at call time, so
rebinding one here (or on the `safety` package, which forwards to this module)
changes every check at once.
"""

from __future__ import annotations

# --------------------------------------------------------------------------
# Allow-lists and refuse-lists
# --------------------------------------------------------------------------

ALLOWED_STDLIB: frozenset[str] = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "base64",
        "binascii",
        "bisect",
        "cmath",
        "collections",
        "collections.abc",
        "contextlib",
        "copy",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "errno",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "ipaddress",
        "itertools",
        "json",
        "math",
        "numbers",
        "random",
        "re",
        "secrets",
        "statistics",
        "string",
        "struct",
        "textwrap",
        "time",
        "typing",
        "zlib",
    }
)
"""Standard-library modules a domain may import (exact names, no implicit submodules).

Deliberately absent: operator (attrgetter bypasses the attribute checks), types,
uuid (shells out on some platforms), zoneinfo (reads files), queue and threading
(blocking waits and threads come only from the kernel), and everything that
reaches the host or the interpreter (os, sys, gc, inspect, importlib, ctypes, io,
pickle, socket, subprocess, weakref, ...)."""

NUMPY_REFUSED_SUBMODULES: frozenset[str] = frozenset(
    {
        "numpy.core",
        "numpy.ctypeslib",
        "numpy.distutils",
        "numpy.f2py",
        "numpy.lib.format",
        "numpy.lib.npyio",
        "numpy.lib.stride_tricks",
        "numpy.testing",
    }
)
"""numpy submodules (and everything below them) a domain may not import.
Private submodules (`numpy._core`, ...) are refused as well."""

ALLOWED_PROJECT_MODULES: frozenset[str] = frozenset({
    "redleaf_lab.api", "redleaf_lab.interfaces",
    # the hash tables' Python styles: plain code, sealed classes, no module state; not
    # redleaf_lab.hashtable.ctable, which holds the cffi lib (ARCHITECTURE.md, "Hash tables")
    "redleaf_lab.hashtable.common", "redleaf_lab.hashtable.idiomatic",
    "redleaf_lab.hashtable.cstyle", "redleaf_lab.hashtable.vectorised"})
"""Project modules a domain may import from (only with `from X import Y`)."""

ALLOWED_PROJECT_PACKAGES: frozenset[str] = frozenset({"redleaf_lab.interfaces"})
"""Project packages whose submodules a domain may import from, too."""

STAR_IMPORT_PROJECT_MODULES: frozenset[str] = frozenset({"redleaf_lab.api"})
"""Project modules that allow `from X import *`."""

REFUSED_BUILTINS: frozenset[str] = frozenset(
    {
        "__import__",
        "breakpoint",
        "compile",
        "eval",
        "exec",
        "exit",
        "globals",
        "help",
        "input",
        "locals",
        "open",
        "quit",
        "vars",
    }
)

ALLOWED_DUNDER_ATTRS: frozenset[str] = frozenset(
    {
        "__contains__",
        "__doc__",
        "__enter__",
        "__eq__",
        "__exit__",
        "__ge__",
        "__getitem__",
        "__gt__",
        "__hash__",
        "__init__",
        "__init_subclass__",
        "__iter__",
        "__le__",
        "__len__",
        "__lt__",
        "__name__",
        "__next__",
        "__post_init__",
        "__qualname__",
        "__repr__",
        "__setitem__",
        "__str__",
    }
)

_HIERARCHY = "walks the class hierarchy to every class loaded in the process"
_NAMESPACE = "exposes another module's namespace (the kernel's, or another domain's)"
_IMPORTING = "is import machinery; use an import statement"
REFUSED_DUNDER_ATTRS: dict[str, str] = {
    "__class__": "leads to object.__subclasses__(); use isinstance(x, T) or type(x)",
    "__subclasses__": _HIERARCHY,
    "__mro__": _HIERARCHY,
    "__bases__": _HIERARCHY,
    "__base__": _HIERARCHY,
    "__globals__": _NAMESPACE,
    "__builtins__": _NAMESPACE,
    "__dict__": "exposes an object's or module's namespace as a dict; "
    "use the attributes directly (or dataclasses.asdict)",
    "__code__": "exposes code objects; call the function instead",
    "__closure__": "exposes a function's captured variables",
    "__func__": "unwraps bound methods; call the method instead",
    "__self__": "reaches the object behind a bound method or builtin (e.g. a module)",
    "__getattribute__": "bypasses the attribute checks; use plain attribute access",
    "__reduce__": "is pickling machinery and returns internal constructors",
    "__reduce_ex__": "is pickling machinery and returns internal constructors",
    "__loader__": _IMPORTING,
    "__spec__": _IMPORTING,
    "__import__": _IMPORTING,
    "__traceback__": "tracebacks hold frames with the kernel's variables; "
    "raise or log the exception itself (repr(e))",
}
"""Dunder attributes refused with a specific explanation (all other dunders not
in ALLOWED_DUNDER_ATTRS are refused with a generic one)."""

FRAME_ATTRS: frozenset[str] = frozenset(
    {
        "ag_code",
        "ag_frame",
        "co_code",
        "co_consts",
        "cr_code",
        "cr_frame",
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "f_trace",
        "func_globals",
        "gi_code",
        "gi_frame",
        "tb_frame",
        "tb_next",
    }
)

NUMPY_ANY_ATTRS: frozenset[str] = frozenset(
    {
        "as_strided",
        "ctypes",
        "ctypeslib",
        "f2py",
        "frombuffer",
        "setflags",
        "stride_tricks",
        "tofile",
    }
)
"""Attribute names refused on any object (they are numpy's raw-memory or file corners)."""

NUMPY_MODULE_ATTRS: frozenset[str] = frozenset(
    {
        "DataSource",
        "core",
        "distutils",
        "dump",
        "fromfile",
        "fromregex",
        "genfromtxt",
        "lib",
        "load",
        "loadtxt",
        "memmap",
        "save",
        "savetxt",
        "savez",
        "savez_compressed",
        "testing",
    }
)
"""Attribute names refused on names bound by numpy imports (`np.load`, `np.lib`, ...);
on other objects (`obj.load()`) they are ordinary names."""

REFUSED_EXCEPT_NAMES: frozenset[str] = frozenset(
    {"BaseException", "DomainUnwind", "GeneratorExit", "KeyboardInterrupt", "SystemExit"}
)

# Dunder names that may be bound outside class bodies, and read as bare names.
_MODULE_DUNDER_BINDINGS = frozenset({"__all__", "__author__", "__doc__", "__version__"})
_NAME_LOAD_OK = _MODULE_DUNDER_BINDINGS | {"__debug__", "__file__", "__name__"}
# Dunder names that may not be bound anywhere, not even in a class body.
_FORBIDDEN_BINDINGS = frozenset(
    {
        "__build_class__",
        "__builtins__",
        "__cached__",
        "__class__",
        "__dict__",
        "__file__",
        "__import__",
        "__loader__",
        "__package__",
        "__path__",
        "__spec__",
    }
)
_ARRAY_CONSTRUCTORS = frozenset({"ndarray", "recarray"})
_ARRAY_BUFFER_KEYWORDS = frozenset({"buf", "buffer", "offset", "strides"})
_ATTR_BUILTINS = frozenset({"delattr", "getattr", "hasattr", "setattr"})

# --------------------------------------------------------------------------
# Import predicate
# --------------------------------------------------------------------------


def _is_project_module(module: str) -> bool:
    return module == "redleaf_lab" or module.startswith("redleaf_lab.")


def _is_numpy_module(module: str) -> bool:
    return module == "numpy" or module.startswith("numpy.")


def _numpy_submodule_refused(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in NUMPY_REFUSED_SUBMODULES)


def is_allowed_import(module: str) -> bool:
    """True if a domain may import `module` (a dotted absolute module name).

    Allowed: the exact names in ALLOWED_STDLIB; numpy and its public submodules
    except NUMPY_REFUSED_SUBMODULES; ALLOWED_PROJECT_MODULES and the public
    submodules of ALLOWED_PROJECT_PACKAGES. (Project modules additionally need
    the `from X import Y` form; that is checked by the AST pass and the importer.)
    """
    if module in ALLOWED_STDLIB:
        return True
    parts = module.split(".")
    if any(not part or part.startswith("_") for part in parts):
        return False
    if parts[0] == "numpy":
        return not _numpy_submodule_refused(module)
    if module in ALLOWED_PROJECT_MODULES:
        return True
    return any(module.startswith(pkg + ".") for pkg in ALLOWED_PROJECT_PACKAGES)


# --------------------------------------------------------------------------
# Attribute-name predicate of the AST pass
# --------------------------------------------------------------------------


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
