"""The explanations attached to refusals of the safe-subset check.

Every refusal names the rule and says what to do instead; this module holds
the hint tables and the functions that build those messages, shared by the
AST pass (`ast_check`) and the run-time builtins and importer (`runtime`).
"""

from __future__ import annotations

from . import policy
from .policy import _is_numpy_module, _is_project_module

_DEVICE_MEMORY = (
    "drivers reach device memory only through the Device capability, "
    "and RRefs give numpy views of shared-heap objects"
)
_NO_FILES = "domains have no file system; data arrives through RRefs and capabilities"
_FLAGS_MESSAGE = (
    "changing array flags refused: read-only views come from immutable borrows; "
    "use arr.copy() for a writable array"
)

_BUILTIN_HINTS: dict[str, str] = {
    "eval": "domains run only code that passed the safety check; write the code directly",
    "exec": "domains run only code that passed the safety check; write the code directly",
    "compile": "domains run only code that passed the safety check; write the code directly",
    "open": _NO_FILES,
    "__import__": "use an import statement",
    "globals": "it exposes the module namespace as a dict; refer to names directly",
    "locals": "it exposes the namespace as a dict; refer to names directly",
    "vars": "it exposes a namespace as a dict; use attributes directly (or dataclasses.asdict)",
    "breakpoint": "domains are not interactive; use print() or raise an exception",
    "input": "domains are not interactive; data arrives through RRefs and capabilities",
    "help": "domains are not interactive",
    "exit": "return from the function or raise an exception; the kernel decides when a "
    "domain stops",
    "quit": "return from the function or raise an exception; the kernel decides when a "
    "domain stops",
}

_IMPORT_HINTS: dict[str, str] = {
    "ctypes": "raw memory access; " + _DEVICE_MEMORY,
    "cffi": "raw memory access; " + _DEVICE_MEMORY,
    "mmap": "raw memory access; " + _DEVICE_MEMORY,
    "sys": "interpreter internals (sys.modules reaches every module of the kernel)",
    "gc": "gc.get_objects() reaches every object of every domain",
    "inspect": "interpreter internals (frames, globals of other modules)",
    "importlib": "import machinery; use an import statement of an allowed module",
    "builtins": "the unrestricted builtins",
    "types": "constructors of code objects, functions and modules",
    "weakref": "reaches objects the domain does not own",
    "operator": "operator.attrgetter bypasses the attribute checks; use a lambda",
    "pickle": "loading a pickle runs arbitrary code; use struct or json",
    "marshal": "loads code objects; use struct or json",
    "threading": "threads come only from the kernel",
    "_thread": "threads come only from the kernel",
    "multiprocessing": "processes and threads come only from the kernel",
    "queue": "blocking waits; domains use the kernel's bounded waits",
    "uuid": "it may shell out on some platforms",
    "zoneinfo": "it reads the file system",
    "os": "the host system; the kernel passes capabilities to init() instead",
    "subprocess": "the host system; the kernel passes capabilities to init() instead",
    "socket": "the host network; use the network interfaces the kernel provides",
    "io": _NO_FILES,
    "pathlib": _NO_FILES,
    "shutil": _NO_FILES,
    "signal": "signals belong to the kernel",
}


def _import_message(module: str) -> str:
    top = module.split(".")[0]
    if _is_numpy_module(module):
        return (
            f"import of {module!r} refused: this part of numpy reaches raw memory, files or "
            f"numpy internals; {_DEVICE_MEMORY}"
        )
    if _is_project_module(module):
        return (
            f"import of {module!r} refused: the rest of redleaf_lab is the trusted kernel; "
            "domains use `from redleaf_lab.api import ...` and "
            "`from redleaf_lab.interfaces... import ...`"
        )
    hint = _IMPORT_HINTS.get(module) or _IMPORT_HINTS.get(top)
    why = f" ({hint})" if hint else ""
    return (
        f"import of {module!r} refused{why}: domains may import only the allowed standard-"
        "library modules (math, struct, collections, dataclasses, ...), numpy and the domain "
        "API (redleaf_lab.api, redleaf_lab.interfaces); everything else reaches the domain "
        "through the capabilities the kernel passes to init()"
    )


def _plain_project_import_message(module: str) -> str:
    return (
        f"`import {module}` refused: it binds the name `redleaf_lab`, exposing the whole "
        f"trusted package; write `from {module} import ...` "
        "(e.g. `from redleaf_lab.api import RRef`)"
    )


def _module_message(attr: str, module: str) -> str:
    return (
        f"`.{attr}` is the module {module!r}, which domains may not use (modules re-export "
        "what they import); import what you need directly, if it is allowed"
    )


def _dunder_message(attr: str) -> str:
    why = policy.REFUSED_DUNDER_ATTRS.get(attr)
    if why is not None:
        return f"attribute `{attr}` refused: it {why}"
    return (
        f"attribute `{attr}` refused: domains may use only these dunder attributes: "
        f"{', '.join(sorted(policy.ALLOWED_DUNDER_ATTRS))}; call the matching builtin instead "
        "(len(x), iter(x), repr(x), ...)"
    )


def _private_message(attr: str, why: str = "") -> str:
    detail = f" (here {why})" if why else ""
    return (
        f"attribute `.{attr}` refused: private attributes may be used only on `self`/`cls`, "
        f"the receiver of a method of your own class, or on `super()` in such a method{detail}; "
        "other objects' private names (e.g. random._os, a capability's internals) are escape "
        "hatches. Use the object's public API"
    )


def _frame_message(attr: str) -> str:
    return (
        f"attribute `.{attr}` refused: frames, code objects and tracebacks expose the "
        "variables of the kernel and of other domains; report problems by raising exceptions"
    )


def _numpy_message(what: str) -> str:
    if what in {
        "load",
        "save",
        "savez",
        "savez_compressed",
        "loadtxt",
        "savetxt",
        "genfromtxt",
        "fromregex",
        "fromfile",
        "tofile",
        "DataSource",
        "dump",
        "memmap",
    }:
        extra = _NO_FILES
    elif what == "lib":
        extra = "np.lib holds stride_tricks.as_strided; use the functions numpy exports itself"
    elif what == "setflags":
        extra = "read-only views come from immutable borrows; use arr.copy() for a writable array"
    else:
        extra = _DEVICE_MEMORY
    return f"numpy `{what}` refused: {extra}"
