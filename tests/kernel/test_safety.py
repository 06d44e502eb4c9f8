"""The safe-subset check (kernel.safety): AST rules and their run-time twins."""

from __future__ import annotations

import textwrap
import types
from typing import Any

import pytest

from redleaf_lab.errors import SafetyError
from redleaf_lab.kernel.safety import (
    ALLOWED_STDLIB,
    check_source,
    find_violations,
    is_allowed_import,
    make_importer,
    safe_builtins,
)


def refused(source: str) -> SafetyError:
    """The first violation of `source` (dedented), which must exist."""
    with pytest.raises(SafetyError) as info:
        check_source(textwrap.dedent(source), "dom.py")
    return info.value


def run(source: str, builtins: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute `source` the way the kernel runs a domain module."""
    namespace: dict[str, Any] = {
        "__builtins__": builtins if builtins is not None else safe_builtins(make_importer()),
        "__name__": "dom",
    }
    exec(compile(textwrap.dedent(source), "dom.py", "exec", dont_inherit=True), namespace)
    return namespace


# -- escapes refused by the AST pass ------------------------------------------

ESCAPES = [
    ("().__class__.__bases__[0].__subclasses__()", "dunder", 1),
    ("def f():\n    pass\n\nf.__globals__", "dunder", 4),
    ("import gc; gc.get_objects()", "import", 1),
    ("import ctypes", "import", 1),
    ("from ctypes import *", "import", 1),
    ("import sys; sys.modules", "import", 1),
    ("try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame", "dunder", 4),
    ("open('/etc/passwd')", "builtin", 1),
    ("import importlib", "import", 1),
    ("import os; os.system('x')", "import", 1),
    ("__import__('os')", "builtin", 1),
    ("eval('1')", "builtin", 1),
    ("exec('x')", "builtin", 1),
    ("compile('1', 'f', 'eval')", "builtin", 1),
    ("x = 1\ngetattr(x, '__class__')", "attribute", 2),
    ("import random\nrandom._os", "private", 2),
    ("from random import _os", "private", 1),
    ("import numpy as np\nnp.ctypeslib", "numpy", 2),
    ("arr = None\narr.ctypes.data", "numpy", 2),
    ("import numpy as np\nnp.lib.stride_tricks.as_strided", "numpy", 2),
    ("import numpy as np\nnp.frombuffer(b'1234')", "numpy", 2),
    ("import numpy as np\nnp.ndarray((4,), buffer=b'1234')", "numpy", 2),
    ("import numpy as np\nnp.ndarray((4,), np.uint8, b'1234')", "numpy", 2),
    ("from numpy import ndarray\nndarray((4,), buffer=b)", "numpy", 2),
    ("import numpy as np\nnp.load('f')", "numpy", 2),
    ("import numpy\nnumpy.save('f', a)", "numpy", 2),
    ("import numpy as np\nnp.ma.load('f')", "numpy", 2),
    ("from numpy import frombuffer", "numpy", 1),
    ("from numpy import ctypeslib", "import", 1),
    ("import numpy.ctypeslib", "import", 1),
    ("from numpy.lib.stride_tricks import as_strided", "import", 1),
    ("from numpy import *", "import", 1),
    ("a = None\na.flags.writeable = True", "numpy", 2),
    ("a = None\na.setflags(write=True)", "numpy", 2),
    ("try:\n    pass\nexcept:\n    pass", "except", 3),
    ("try:\n    pass\nexcept BaseException:\n    pass", "except", 3),
    ("try:\n    pass\nexcept (ValueError, BaseException):\n    pass", "except", 3),
    ("try:\n    pass\nexcept KeyboardInterrupt:\n    pass", "except", 3),
    ("try:\n    pass\nexcept DomainUnwind:\n    pass", "except", 3),
    ("import contextlib\nwith contextlib.suppress(BaseException):\n    pass", "except", 2),
    ("import redleaf_lab.interfaces.bdev", "import", 1),
    ("import redleaf_lab.api as api", "import", 1),
    ("from redleaf_lab import kernel", "import", 1),
    ("from redleaf_lab.interfaces.bdev import *", "import", 1),
    ("import operator", "import", 1),
    ("import threading", "import", 1),
    ("import types", "import", 1),
    ("globals()", "builtin", 1),
    ("vars()", "builtin", 1),
    ("breakpoint()", "builtin", 1),
    ("f = eval", "builtin", 1),
    ("__builtins__", "dunder", 1),
    ("__builtins__ = {}", "global", 1),
    ("import random as __builtins__", "global", 1),
    ("def f():\n    global __builtins__\n    __builtins__ = {}", "global", 3),
    ("def f(g):\n    yield g.gi_frame.f_back", "frame", 2),
    ("import dataclasses\ndataclasses.sys.modules", "module", 2),
    ("from dataclasses import sys", "import", 1),
    ("import math\nmath.pi = 3", "module", 2),
    ("match x:\n    case object(__class__=c):\n        pass", "dunder", 2),
    ("x = 1\nx._secret", "private", 2),
    ("self = 1\nself.attr.__dict__", "dunder", 2),
]


@pytest.mark.parametrize(("source", "rule", "line"), ESCAPES)
def test_escape_refused(source: str, rule: str, line: int) -> None:
    error = refused(source)
    assert (error.rule, error.line) == (rule, line), str(error)
    assert error.filename == "dom.py"
    assert str(error).startswith(f"dom.py:{line}: [{rule}] ")


def test_messages_say_what_to_do() -> None:
    assert "Exception" in refused("try:\n    pass\nexcept:\n    pass").message
    assert "Device capability" in refused("import numpy as np\nnp.frombuffer(b)").message
    assert (
        "from redleaf_lab.interfaces.bdev import"
        in refused("import redleaf_lab.interfaces.bdev").message
    )
    assert "'os'" in refused("import os").message
    assert "self" in refused("import random\nrandom._os").message


def test_traceback_chain_refused_at_dunder_and_frame() -> None:
    source = "try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals\n"
    assert [(v.line, v.rule) for v in find_violations(source, "dom.py")] == [
        (4, "dunder"),
        (4, "frame"),
        (4, "frame"),
    ]
    assert refused("def f(tb):\n    return tb.tb_frame\n").rule == "frame"


def test_subclasses_chain_reports_every_dunder_in_order() -> None:
    violations = find_violations("().__class__.__bases__[0].__subclasses__()", "dom.py")
    assert [v.rule for v in violations] == ["dunder"] * 3
    assert "__class__" in violations[0].message
    assert "__subclasses__" in violations[2].message


def test_multiple_violations_in_line_order() -> None:
    source = textwrap.dedent(
        """\
        import math
        import os

        def f(x):
            return eval(x)

        class A:
            def g(self, other):
                return other._hidden

        try:
            pass
        except:
            pass
        """
    )
    violations = find_violations(source, "dom.py")
    assert [(v.line, v.rule) for v in violations] == [
        (2, "import"),
        (5, "builtin"),
        (9, "private"),
        (13, "except"),
    ]
    with pytest.raises(SafetyError) as info:
        check_source(source, "dom.py")
    assert (info.value.line, info.value.rule) == (2, "import")


def test_line_numbers_point_at_the_attribute() -> None:
    source = "x = (\n    obj\n    .ctypes\n)\n"
    assert refused(source).line == 3


def test_syntax_error() -> None:
    error = refused("x = 1\ndef f(:\n    pass\n")
    assert (error.rule, error.line, error.filename) == ("syntax", 2, "dom.py")
    assert [v.rule for v in find_violations("def f(:\n", "d.py")] == ["syntax"]


# -- accepted code -----------------------------------------------------------

REALISTIC_DOMAIN = '''\
"""A block cache domain."""

from __future__ import annotations

import math
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from redleaf_lab.api import RRef
from redleaf_lab.interfaces.bdev import BDev

from . import helper

__all__ = ["init"]


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    history: deque = field(default_factory=deque)

    def __post_init__(self):
        self._ratio = 0.0


class Cache:
    def __init__(self, bdev, capacity=64):
        super().__init__()
        self._bdev = bdev
        self._lru = OrderedDict()
        self._stats = Stats()
        self._capacity = capacity

    @classmethod
    def build(cls, bdev):
        cls._instances = getattr(cls, "instances", 0) + 1
        return cls(bdev)

    def read(self, block):
        if block in self._lru:
            self._stats.hits += 1
            self._lru.move_to_end(block)
            return self._lru[block]
        data = np.zeros(512, dtype=np.uint8)
        checksum = np.uint64(data.sum())
        header = struct.pack("<QQ", block, int(checksum))
        self._lru[block] = (header, data)
        if len(self._lru) > self._capacity:
            self._lru.popitem(last=False)
        return self._lru[block]

    def load(self):
        return self._bdev.load()

    def ratio(self):
        total = self._stats.hits + self._stats.misses
        return math.fsum([self._stats.hits]) / total if total else math.nan


def init(ctx, bdev):
    cache = Cache.build(bdev)
    cache.load()
    name = type(cache).__name__
    try:
        cache.read(0)
    except Exception as exc:
        print(name, repr(exc))
    memoryview(b"abc")
    dir(cache)
    return cache


async def poll(queue):
    return await queue.get()


def parse(input, open=None):
    return input, open
'''


def test_realistic_domain_accepted() -> None:
    assert find_violations(REALISTIC_DOMAIN, "cache.py") == []
    check_source(REALISTIC_DOMAIN, "cache.py")


@pytest.mark.parametrize(
    "source",
    [
        "from . import helper",
        "from .helper import crc, _internal",
        "from redleaf_lab.api import *",
        "class A:\n    __slots__ = ('x',)\n    def __repr__(self):\n        return 'A'",
        "class A:\n    def f(self):\n        return self._x, super()._y",
        "class A:\n    @classmethod\n    def f(cls):\n        return cls._x",
        "class Obj:\n    def load(self):\n        pass\nObj().load()",
        "try:\n    pass\nexcept Exception:\n    pass",
        "try:\n    pass\nexcept (ValueError, KeyError) as e:\n    print(e.args)",
        "x = None\ngetattr(x, name)",
        "x = None\ngetattr(x, 'value', 0)",
        "import numpy as np\nnp.emath.sqrt(-1)\nnp.linalg.norm(np.ones(3))",
        "import numpy as np\nr = np.random.default_rng(1)\nr.integers(0, 9)",
        "import collections.abc\ncollections.abc.Mapping",
        "import time\ntime.monotonic()",
        "print(__name__, __doc__)",
        "from __future__ import annotations",
        "def f(x):\n    return x.__len__() + len(x)",
    ],
)
def test_accepted(source: str) -> None:
    assert find_violations(source, "dom.py") == []


def test_is_allowed_import() -> None:
    for module in [
        "math",
        "collections.abc",
        "numpy",
        "numpy.linalg",
        "numpy.random",
        "redleaf_lab.api",
        "redleaf_lab.interfaces",
        "redleaf_lab.interfaces.bdev",
        "__future__",
    ]:
        assert is_allowed_import(module), module
    for module in [
        "os",
        "sys",
        "gc",
        "ctypes",
        "operator",
        "types",
        "queue",
        "threading",
        "uuid",
        "numpy.ctypeslib",
        "numpy.lib.stride_tricks",
        "numpy._core",
        "numpy.core.multiarray",
        "numpy.testing",
        "redleaf_lab",
        "redleaf_lab.kernel",
        "redleaf_lab.interfaces._private",
        "json.tool",
    ]:
        assert not is_allowed_import(module), module
    assert isinstance(ALLOWED_STDLIB, frozenset)


def test_custom_allow_predicate() -> None:
    source = "import graphlib"
    assert refused(source).rule == "import"
    assert find_violations(source, "d.py", allowed=lambda m: m == "graphlib") == []


def test_allow_lists_rebound_on_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from redleaf_lab.kernel import safety

    monkeypatch.setattr(safety, "ALLOWED_STDLIB", safety.ALLOWED_STDLIB | {"graphlib"})
    assert safety.policy.ALLOWED_STDLIB is safety.ALLOWED_STDLIB
    assert find_violations("import graphlib", "d.py") == []
    run("import graphlib")  # the run-time importer reads it too
    monkeypatch.setattr(safety.policy, "FRAME_ATTRS", safety.FRAME_ATTRS - {"f_back"})
    assert "f_back" not in safety.FRAME_ATTRS
    assert find_violations("x.f_back", "d.py") == []
    monkeypatch.undo()
    assert refused("import graphlib").rule == "import"
    assert refused("x.f_back").rule == "frame"


# -- run-time pieces -----------------------------------------------------------


def test_runtime_import_refused() -> None:
    with pytest.raises(SafetyError) as info:
        run("import os")
    assert (info.value.rule, info.value.filename, info.value.line) == ("import", "<runtime>", 0)
    with pytest.raises(SafetyError):
        run("import redleaf_lab.interfaces")
    with pytest.raises(SafetyError):
        run("from random import _os")
    with pytest.raises(SafetyError):
        run("from numpy import frombuffer")
    with pytest.raises(SafetyError):
        run("from numpy import ctypeslib")


def test_runtime_allowed_imports_work() -> None:
    namespace = run(
        """
        import math
        from collections import deque
        import numpy as np
        root = math.sqrt(16)
        total = float(np.arange(4).sum())   # numpy imports helpers lazily from C
        import time
        year = time.strptime("2020", "%Y").tm_year   # so does time.strptime
        q = deque([1])
        """
    )
    assert namespace["root"] == 4.0
    assert namespace["total"] == 6.0
    assert namespace["year"] == 2020


def test_runtime_getattr_family() -> None:
    for source in [
        'getattr(1, "__class__")',
        'getattr(1, "_x", None)',
        'hasattr(1, "__class__")',
        'import dataclasses\ngetattr(dataclasses, "sys")',
        'import math\nsetattr(math, "pi", 3)',
        'class A:\n    pass\nsetattr(A(), "_x", 1)',
        'class A:\n    pass\ndelattr(A(), "__doc__")',
    ]:
        with pytest.raises(SafetyError) as info:
            run(source)
        assert info.value.rule == "attribute", source
    namespace = run(
        """
        class A:
            pass
        a = A()
        setattr(a, "x", 5)
        value = getattr(a, "x")
        missing = getattr(a, "y", "default")
        present = hasattr(a, "x")
        delattr(a, "x")
        """
    )
    assert (namespace["value"], namespace["missing"], namespace["present"]) == (5, "default", True)


@pytest.mark.parametrize(
    "name", ["eval", "exec", "compile", "open", "globals", "vars", "breakpoint", "input"]
)
def test_refused_builtins_unreachable(name: str) -> None:
    with pytest.raises(NameError):
        run(f"{name}")


def test_safe_builtins_contents() -> None:
    def importer(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError

    table = safe_builtins(importer)
    assert table["__import__"] is importer
    assert "__build_class__" in table
    assert "memoryview" in table
    assert "dir" in table
    assert "print" in table
    for name in ["eval", "exec", "open", "help", "exit", "quit", "__loader__", "__spec__"]:
        assert name not in table, name
    assert table["getattr"] is not getattr


def test_class_definitions_work() -> None:
    namespace = run(
        """
        from dataclasses import dataclass

        @dataclass
        class Point:
            x: int = 0
            y: int = 0

        class Base:
            def __init__(self):
                self._hidden = 1

        class Child(Base):
            def __init__(self):
                super().__init__()
                self.seen = self._hidden

        p = Point(1, 2)
        c = Child()
        """
    )
    assert namespace["p"].x == 1
    assert namespace["c"].seen == 1
    assert type(namespace["c"]).__module__ == "dom"


def test_relative_import_uses_local_modules() -> None:
    helper = types.ModuleType("helper")
    helper.crc = lambda data: 42  # type: ignore[attr-defined]
    asked: list[str] = []

    def local_modules(name: str) -> Any:
        asked.append(name)
        return {"helper": helper}.get(name)

    builtins = safe_builtins(make_importer(local_modules=local_modules))
    namespace = run("from . import helper\nfrom .helper import crc\nr = crc(b'')", builtins)
    assert namespace["helper"] is helper
    assert namespace["r"] == 42
    assert "helper" in asked
    with pytest.raises(ImportError):
        run("from .missing import x", builtins)


def test_relative_import_prefers_package_object() -> None:
    package = types.SimpleNamespace(helper="the helper")
    builtins = safe_builtins(
        make_importer(local_modules=lambda name: package if not name else None)
    )
    assert run("from . import helper", builtins)["helper"] == "the helper"


def test_relative_import_refused_without_local_modules() -> None:
    with pytest.raises(SafetyError) as info:
        run("from . import helper")
    assert info.value.rule == "import"


def test_importer_allowed_predicate() -> None:
    builtins = safe_builtins(make_importer(allowed=lambda m: m in {"math", "graphlib"}))
    assert "graphlib" in run("import graphlib", builtins)
    with pytest.raises(SafetyError):
        run("import json", builtins)


def test_super_init_subclass_is_ordinary_code():
    """Issue 12.9: `super().__init_subclass__(**kw)` in a class hook is allowed."""
    source = (
        "class Base:\n"
        "    def __init_subclass__(cls, **kw):\n"
        "        super().__init_subclass__(**kw)\n"
        "        cls.registered = True\n"
    )
    assert find_violations(source, "base.py") == []
