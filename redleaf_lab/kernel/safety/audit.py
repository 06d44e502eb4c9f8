"""The host backstop: a CPython audit hook that refuses host operations inside a domain.

The AST pass, the façades and the checked builtins decide what domain code can name.
Libraries that a domain may call still do things for it in C or in their own Python
code: `ndarray.dump` opens a file, `contextlib.chdir` changes the process's working
directory, a pickle loader would import any class. CPython raises an audit event
(PEP 578) for each such operation, whoever asks; this hook refuses the ones in
`REFUSED_EVENTS` (and writes, or reads of anything but module files, for `open`)
while the calling thread's current domain is not the root context. The kernel, the
notebook and tests (root) are never affected.

`object.__setattr__`/`__delattr__` fire when an attribute of a class or function is
set: inside a domain, a trusted class (RedLeaf Lab's own) may never be changed
(`RRef.array = evil` would change it for every domain), and other classes only in
the housekeeping names that imports and the standard library's class factories set.
A function's `__code__` may never be replaced.

Installed once per process by `boot()` (`install()`); audit hooks cannot be removed.
The hook reads one thread-local per audited event; events are rare on hot paths.
"""

from __future__ import annotations

import sys
from typing import Any

from redleaf_lab.errors import SafetyError

from ..context import ROOT, local_holder

REFUSED_EVENTS: frozenset[str] = frozenset(
    {
        "builtins.input", "code.__new__", "ctypes.addressof", "ctypes.call_function",
        "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.create_string_buffer",
        "ctypes.create_unicode_buffer", "ctypes.dlopen", "ctypes.dlsym", "ctypes.string_at",
        "ctypes.wstring_at", "function.__new__", "gc.get_objects", "gc.get_referents",
        "gc.get_referrers", "marshal.dumps", "marshal.load", "mmap.__new__", "os.add_dll_directory",
        "os.chdir", "os.chflags", "os.chmod", "os.chown", "os.exec", "os.fork", "os.forkpty",
        "os.kill", "os.killpg", "os.link", "os.mkdir", "os.posix_spawn", "os.putenv",
        "os.remove", "os.removexattr", "os.rename", "os.rmdir", "os.setxattr", "os.spawn",
        "os.startfile", "os.symlink", "os.system", "os.truncate", "os.unsetenv", "os.utime",
        "pickle.find_class", "shutil.chown", "shutil.copyfile", "shutil.copymode",
        "shutil.copystat", "shutil.copytree", "shutil.make_archive", "shutil.move",
        "shutil.rmtree", "shutil.unpack_archive", "subprocess.Popen", "sys._current_exceptions",
        "sys._current_frames", "sys.addaudithook", "sys.setprofile",
        "sys.settrace", "sys.unraisablehook", "tempfile.mkdtemp", "tempfile.mkstemp",
        "urllib.Request", "webbrowser.open", "cpython.run_command", "cpython.run_file",
        "cpython.run_module", "cpython.run_startup", "cpython.run_stdin",
    }
)
REFUSED_PREFIXES: tuple[str, ...] = ("socket.", "ctypes.", "sqlite3.", "ftplib.", "smtplib.",
                                     "http.", "imaplib.", "nntplib.", "poplib.", "telnetlib.")
_MODULE_FILES = (".py", ".pyc", ".so", ".pyd", ".pth")
_HOUSEKEEPING = frozenset({"__module__", "__qualname__", "__name__", "__doc__", "__defaults__",
                           "__kwdefaults__", "__annotations__", "__wrapped__", "__signature__",
                           "__text_signature__", "__type_params__"})
_WRITE_MODES = frozenset("wax+")
_local = local_holder()


def _class_module(obj: Any) -> str:
    module = type.__dict__["__module__"].__get__(obj) if isinstance(obj, type) else getattr(
        obj, "__module__", "")
    return module if isinstance(module, str) else ""


def _why(event: str, args: tuple[Any, ...]) -> str | None:
    """Why this event is refused inside a domain, or None."""
    if event == "open":
        path, mode = args[0], args[1] if len(args) > 1 else "r"
        if isinstance(mode, str) and _WRITE_MODES & set(mode):
            return f"opening {path!r} for writing reaches the host's files"
        if not (isinstance(path, str) and path.endswith(_MODULE_FILES)):
            return f"opening {path!r} reaches the host's files"
        return None
    if event in ("object.__setattr__", "object.__delattr__"):
        target, name = args[0], args[1]
        module = _class_module(target)
        if module.startswith("redleaf_lab"):
            return f"changing {name!r} of the trusted {target!r} changes it for every domain"
        if name == "__code__":
            return "replacing a function's code object"
        if module.startswith("redleaf_domain.") or name in _HOUSEKEEPING:
            return None
        return f"changing {name!r} of {target!r} changes a class shared by every domain"
    if event in REFUSED_EVENTS or event.startswith(REFUSED_PREFIXES):
        return "reaches the host or the interpreter's internals"
    return None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in _IGNORED:
        return
    try:
        current = _local.stack[-1]
    except (AttributeError, IndexError):  # interpreter shutdown, or a thread being torn down
        return
    if current is ROOT:
        return
    why = _why(event, args)
    if why is not None:
        raise SafetyError("<runtime>", 0, "host",
                          f"{event} refused inside domain {current.name!r}: {why}")


_IGNORED = frozenset({"import", "exec", "compile", "marshal.loads", "os.listdir",
                      "os.scandir", "object.__getattr__", "sys._getframemodulename",
                      "time.sleep"})
_installed = False


def install() -> None:
    """Install the hook once per process (idempotent)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
