"""Harness of the red-team suite: attempts as data, one domain folder each, integrity checks.

An `Attempt` is the source of one domain module (`attempt.py`), where its attack runs
("load": at import or in `init`; "call": in `attack(h)`, called through the attacker's
proxy; "unwind": in `attack(h)`, and the test crashes the attacker while its thread is
inside) and what must happen (`Load`, `Runtime` or `Unwound`). `Lab` materialises the
attempt as a domain folder, loads it next to the victims (kvstore + checksum, a shadow
of echo, a MemStore device), runs it, and afterwards checks that nothing was damaged.

Unless the source defines `init` itself, the harness appends (after the source, so its
line numbers stay put) `AttackDomain`, whose `attack()` calls the source's `attack(h)`
with `h` = the domain object (`h.ctx`, `h.victim`, `h.echo`, `h.store`, `h.kept` =
[the block moved in with `take`, the Borrow kept by `lend`]); `lend` also calls the
source's `on_lend(h, borrow)` if it defines one (attacks on a live borrow). The text
`@WATCH@` in a source is replaced by the watched directory, which is also the working directory.
"""

from __future__ import annotations

import builtins
import copy
import copyreg
import decimal
import gc
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redleaf_lab import errors
from redleaf_lab.devices import MemStore
from redleaf_lab.errors import DomainLoadError, RpcError, SafetyError
from redleaf_lab.heap import Block, RRef
from redleaf_lab.idl.shadow import make_shadow
from redleaf_lab.kernel.safety import policy
from tests.security import interfaces  # noqa: F401  (the manifest names it; import it early)

WATCH = "@WATCH@"
VICTIMS = ("checksum", "kvstore", "echo")
SECRET = 0x5A

MANIFEST = """\
name = "attacker"
entry = "attempt.py"
provides = "tests.security.interfaces:Attack"

[needs]
victim = "redleaf_lab.interfaces.kv:KV"
echo = "redleaf_lab.interfaces.bench:Echo"
store = "object"
"""

FOOTER = '''


class AttackDomain:
    """Appended by tests/security/harness.py: the Attack interface around attack(h)."""

    def __init__(self, ctx, victim, echo, store):
        self.ctx = ctx
        self.victim = victim
        self.echo = echo
        self.store = store
        self.kept = []

    def take(self, data):
        self.kept.append(data)
        return 1

    def lend(self, data):
        self.kept.append(data)
        return on_lend(self, data)

    def attack(self):
        return attack(self)
'''

DEFAULT_ON_LEND = '''

def on_lend(h, data):
    return 1
'''

DEFAULT_INIT = '''

def init(ctx, victim, echo, store):
    return AttackDomain(ctx, victim, echo, store)
'''


# -- what an attempt expects ------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """`kernel.load` refuses the file with a SafetyError naming attempt.py, a line and `rule`."""

    rule: str


@dataclass(frozen=True)
class Runtime:
    """The attack raises `error` (message containing `message`, if given) at run time.

    At load it arrives as the SafetyError itself or as the cause of DomainLoadError; in a
    call as the `original` of the RpcError that the attacker's panic becomes."""

    error: type[BaseException]
    message: str | None = None
    rule: str | None = None  # for a SafetyError: its rule


@dataclass(frozen=True)
class Contained:
    """The attack may run to its end (its defence is containment, not a refusal: a
    finalizer that never runs in another domain, per-domain state), but the integrity
    check must find nothing damaged."""


@dataclass(frozen=True)
class Unwound:
    """where="unwind": the test crashes the attacker while it is inside `attack`; the
    unwinding must reach the caller (RpcError "crashed") and nothing may run after it."""


Expect = Load | Runtime | Contained | Unwound


@dataclass(frozen=True)
class Attempt:
    name: str
    source: str
    where: str  # "load" | "call" | "unwind"
    expect: Expect

    def __post_init__(self) -> None:
        assert self.where in ("load", "call", "unwind"), self.name
        assert isinstance(self.expect, Unwound) <= (self.where == "unwind"), self.name


@dataclass
class Outcome:
    stage: str  # "load" or "call": where it ended
    error: BaseException | None = None
    value: Any = None


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = getattr(exc, "original", None) or exc.__cause__ or exc.__context__
    return out


def judge(attempt: Attempt, outcome: Outcome) -> list[str]:
    """What is wrong with `outcome` for `attempt` (empty: refused as expected)."""
    expect, err = attempt.expect, outcome.error
    if isinstance(expect, Contained):
        return []
    if err is None:
        return [f"got through: {outcome.stage} returned {outcome.value!r}"]
    if isinstance(expect, Load):
        if outcome.stage != "load" or not isinstance(err, SafetyError):
            return [f"expected a load-time [{expect.rule}] refusal, got at {outcome.stage}: "
                    f"{type(err).__name__}: {err}"]
        bad = []
        if not err.filename.endswith("attempt.py") or err.line <= 0:
            bad.append(f"refusal does not name attempt.py and a line: {err}")
        if err.rule != expect.rule:
            bad.append(f"rule {err.rule!r} instead of {expect.rule!r}: {err}")
        return bad
    if isinstance(expect, Unwound):
        if isinstance(err, RpcError) and err.domain == "attacker" and "crashed" in err.reason:
            return []
        return [f"expected the unwinding as RpcError(attacker crashed), got "
                f"{type(err).__name__}: {err}"]
    if outcome.stage == "load":
        found = [e for e in _chain(err) if not isinstance(e, DomainLoadError)]
    else:
        if not (isinstance(err, RpcError) and err.domain == "attacker"):
            return [f"the call failed outside the attacker: {type(err).__name__}: {err}"]
        found = []
        for inner in _chain(err)[1:]:
            found.append(inner)
            if isinstance(inner, RpcError):  # another domain's failure: not the attack's
                break
    for inner in found:
        if isinstance(inner, expect.error):
            if expect.rule is not None and getattr(inner, "rule", None) != expect.rule:
                return [f"rule {getattr(inner, 'rule', None)!r} instead of {expect.rule!r}: "
                        f"{inner}"]
            if expect.message is None or expect.message in str(inner):
                return []
            return [f"{type(inner).__name__} without {expect.message!r}: {inner}"]
    shown = found[0] if found else err
    return [f"expected {expect.error.__name__}, got {type(shown).__name__}: {shown}"]


# -- process-wide state that no domain may change -----------------------------------------
def _decimal_state(ctx: decimal.Context) -> tuple[Any, ...]:
    return (ctx.prec, ctx.rounding, ctx.Emin, ctx.Emax, ctx.capitals, ctx.clamp,
            tuple(sorted((k.__name__, v) for k, v in ctx.traps.items())))


def _trusted_classes() -> list[type]:
    """Classes domains are handed (or can name): their namespaces are shared by all."""
    from redleaf_lab import api
    from redleaf_lab.heap.rref import HeapObject, ViewExporter
    from redleaf_lab.idl.proxy import ProxyBase
    from redleaf_lab.idl.shadow import ShadowBase
    from redleaf_lab.kernel.domain import Domain, DomainContext

    exported = [v for v in vars(api).values() if isinstance(v, type)]
    return [*exported, HeapObject, ViewExporter, ProxyBase, ShadowBase, Domain,
            DomainContext, MemStore, Exception, BaseException, object, int]


def _layouts() -> dict[str, tuple[Any, ...]]:
    from redleaf_lab.heap.layout import Layout

    return {layout.name: (layout, layout.dtype, layout.size, layout.type_id)
            for layout in Layout.all()}


def _policy_tables() -> dict[str, Any]:
    return {name: value for name, value in vars(policy).items()
            if isinstance(value, (frozenset, dict))}


@dataclass
class Snapshot:
    cwd: str
    streams: tuple[Any, ...]
    hooks: tuple[Any, ...]
    policy: dict[str, Any]
    policy_copies: dict[str, Any]
    modules: dict[str, Any]
    builtins: dict[str, Any]
    dispatch: dict[Any, Any]
    deepcopy: dict[Any, Any]
    random_state: Any
    decimal_state: tuple[Any, ...]
    decimal_default: tuple[Any, ...]
    numpy_err: dict[str, str]
    numpy_print: dict[str, Any]
    environ: dict[str, str]
    sys_path: list[str]
    recursion: int
    classes: dict[type, dict[str, Any]]
    layouts: dict[str, tuple[Any, ...]]

    @classmethod
    def take(cls) -> Snapshot:
        tables = _policy_tables()
        return cls(
            cwd=os.getcwd(),
            streams=(sys.stdout, sys.stderr, sys.stdin),
            hooks=(sys.excepthook, sys.unraisablehook, threading.excepthook,
                   sys.displayhook, sys.breakpointhook),
            policy=tables,
            policy_copies={k: copy.copy(v) for k, v in tables.items()},
            modules={n: m for n, m in sys.modules.items() if n.split(".")[0] == "redleaf_lab"},
            builtins=dict(vars(builtins)),
            dispatch=dict(copyreg.dispatch_table),
            deepcopy=dict(copy._deepcopy_dispatch),  # type: ignore[attr-defined]
            random_state=random.getstate(),
            decimal_state=_decimal_state(decimal.getcontext()),
            decimal_default=_decimal_state(decimal.DefaultContext),
            numpy_err=np.geterr(),
            numpy_print=np.get_printoptions(),
            environ=dict(os.environ),
            sys_path=list(sys.path),
            recursion=sys.getrecursionlimit(),
            classes={c: dict(vars(c)) for c in _trusted_classes()},
            layouts=_layouts(),
        )

    def compare_and_restore(self) -> list[str]:
        """What changed since `take` (and put it back, so one success does not cascade)."""
        bad: list[str] = []
        if os.getcwd() != self.cwd:
            bad.append(f"cwd changed to {os.getcwd()}")
            os.chdir(self.cwd)
        if (sys.stdout, sys.stderr, sys.stdin) != self.streams:
            bad.append("sys.stdout/stderr/stdin replaced")
            sys.stdout, sys.stderr, sys.stdin = self.streams
        hooks = (sys.excepthook, sys.unraisablehook, threading.excepthook,
                 sys.displayhook, sys.breakpointhook)
        if hooks != self.hooks:
            bad.append("an interpreter hook was replaced")
            (sys.excepthook, sys.unraisablehook, threading.excepthook,
             sys.displayhook, sys.breakpointhook) = self.hooks
        for name in _policy_tables():
            if name not in self.policy:
                bad.append(f"policy.{name} added")
                delattr(policy, name)
        for name, value in self.policy.items():
            now = getattr(policy, name, None)
            if now is not value or now != self.policy_copies[name]:
                bad.append(f"policy.{name} changed")
                if isinstance(value, dict):
                    value.clear()
                    value.update(self.policy_copies[name])
                setattr(policy, name, value)
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] != "redleaf_lab":
                continue
            known = self.modules.get(name)
            if known is not None and known is not module:
                bad.append(f"sys.modules[{name!r}] replaced")
                sys.modules[name] = known
            elif known is None and not str(getattr(module, "__file__", "")).startswith(
                    str(Path(errors.__file__).parent)):
                bad.append(f"sys.modules[{name!r}] planted")
                del sys.modules[name]
        for name in set(self.modules) - set(sys.modules):
            bad.append(f"sys.modules[{name!r}] removed")
            sys.modules[name] = self.modules[name]
        now_builtins = vars(builtins)
        if now_builtins.keys() != self.builtins.keys() or any(
                now_builtins[k] is not v for k, v in self.builtins.items()):
            bad.append("the builtins module changed")
            now_builtins.clear()
            now_builtins.update(self.builtins)
        for table, saved, label in ((copyreg.dispatch_table, self.dispatch, "copy.dispatch_table"),
                                    (copy._deepcopy_dispatch, self.deepcopy,  # type: ignore[attr-defined]
                                     "copy._deepcopy_dispatch")):
            if table.keys() != saved.keys() or any(table[k] is not v for k, v in saved.items()):
                bad.append(f"{label} changed")
                table.clear()
                table.update(saved)
        if random.getstate() != self.random_state:
            bad.append("the shared `random` generator was reseeded or advanced")
            random.setstate(self.random_state)
        if _decimal_state(decimal.getcontext()) != self.decimal_state:
            bad.append("the caller's decimal context changed")
            decimal.setcontext(decimal.Context())
        if _decimal_state(decimal.DefaultContext) != self.decimal_default:
            bad.append("decimal.DefaultContext changed")
        if np.geterr() != self.numpy_err:
            bad.append(f"numpy error state changed: {np.geterr()}")
            np.seterr(**self.numpy_err)
        if np.get_printoptions() != self.numpy_print:
            bad.append("numpy print options changed")
            np.set_printoptions(**{k: v for k, v in self.numpy_print.items()
                                   if k != "override_repr"})
        if dict(os.environ) != self.environ:
            bad.append("os.environ changed")
            os.environ.clear()
            os.environ.update(self.environ)
        if sys.path != self.sys_path:
            bad.append("sys.path changed")
            sys.path[:] = self.sys_path
        if sys.getrecursionlimit() != self.recursion:
            bad.append("the recursion limit changed")
            sys.setrecursionlimit(self.recursion)
        for cls, saved in self.classes.items():
            now = {k: v for k, v in vars(cls).items() if k != "__slotnames__"}
            saved = {k: v for k, v in saved.items() if k != "__slotnames__"}  # copy's cache
            if now.keys() != saved.keys() or any(now[k] is not v for k, v in saved.items()):
                bad.append(f"class {cls.__qualname__} changed")
                if cls not in (object, int, Exception, BaseException):
                    for k in set(now) - set(saved):
                        delattr(cls, k)
                    for k, v in saved.items():
                        if now.get(k) is not v:
                            setattr(cls, k, v)
        for name, saved in self.layouts.items():
            layout = saved[0]
            if (layout, layout.dtype, layout.size, layout.type_id) != saved:
                bad.append(f"layout {name} changed")
                layout.dtype, layout.size, layout.type_id = saved[1:]
        return bad


# -- the lab: victims, the attacker's folder, the checks -----------------------------------
@dataclass
class Lab:
    kernel: Any
    root: Path
    watch: Path = field(init=False)
    kv: Any = field(init=False)
    echo: Any = field(init=False)
    store: MemStore = field(init=False)
    lent: RRef = field(init=False)
    ids: dict[str, int] = field(init=False)
    baseline: dict[int, tuple[int, int]] = field(init=False)
    snapshot: Snapshot = field(init=False)
    specs: dict[str, tuple[Any, ...]] = field(init=False)

    def __post_init__(self) -> None:
        k = self.kernel
        self.watch = self.root / "watched"
        self.watch.mkdir()
        checksum = k.load("checksum")
        self.kv = k.load("kvstore", checksum=checksum)
        k.load("echo")
        self.echo = make_shadow(k, "echo")
        self.store = MemStore(4)
        self.kv.put(0, RRef.new(Block, SECRET))
        self.lent = RRef.new(Block, 3)
        self.ids = {name: k.domain(name).id for name in VICTIMS}
        self.specs = {name: self._spec(name) for name in VICTIMS}
        gc.collect()
        self.baseline = {i: k.heap.domain_stats(i) for i in (1, *self.ids.values())}

    def _spec(self, name: str) -> tuple[Any, ...]:
        spec = self.kernel.domain(name).spec
        return (spec, spec.image, dict(spec.caps), dict(spec.image.modules))

    def materialise(self, attempt: Attempt) -> Path:
        folder = self.root / attempt.name
        folder.mkdir()
        source = attempt.source.replace(WATCH, str(self.watch))
        source += FOOTER
        if "def on_lend(" not in attempt.source:
            source += DEFAULT_ON_LEND
        if "def init(" not in attempt.source:
            source += DEFAULT_INIT
        (folder / "domain.toml").write_text(MANIFEST)
        (folder / "attempt.py").write_text(source)
        return folder

    def run(self, attempt: Attempt) -> Outcome:
        folder = self.materialise(attempt)
        self.snapshot = Snapshot.take()
        try:
            proxy = self.kernel.load(folder, victim=self.kv, echo=self.echo, store=self.store)
        except Exception as exc:
            return Outcome("load", exc)
        if attempt.where == "load":
            return Outcome("load", None, proxy)
        if attempt.where == "call":
            try:  # a refusal inside on_lend (an attack on the live borrow) counts too
                proxy.take(RRef.new(Block, 7))
                proxy.lend(self.lent)
                return Outcome("call", None, proxy.attack())
            except Exception as exc:
                return Outcome("call", exc)
        proxy.take(RRef.new(Block, 7))
        proxy.lend(self.lent)
        return self._run_unwind(proxy)

    def _run_unwind(self, proxy: Any) -> Outcome:
        result: list[Any] = []

        def body() -> None:
            try:
                result.append(Outcome("call", None, proxy.attack()))
            except BaseException as exc:
                result.append(Outcome("call", exc))

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while (self.kernel.events.count("log", "attacker") == 0 and thread.is_alive()
               and time.monotonic() < deadline):
            time.sleep(0.001)
        time.sleep(0.02)
        self.kernel.panic("attacker", "red team")
        thread.join(10)
        if thread.is_alive():
            return Outcome("call", None, "the attack thread is still running 10 s after the crash")
        return result[0] if result else Outcome("call", None, "no outcome")

    # -- integrity ---------------------------------------------------------------------
    def integrity(self) -> list[str]:
        """Everything the attempt may have damaged (empty: intact). Restores what it can."""
        k = self.kernel
        bad: list[str] = []
        attacker = k.domains.get("attacker")
        if attacker is not None:
            if attacker.state == "running":
                k.stop("attacker")
            if not attacker.settled.wait(5):
                bad.append("the attacker's crash or stop did not finish")
            if not k.wait_unwound(attacker, timeout=5):
                bad.append("a thread is still executing inside the dead attacker")
        bad += self._victims_alive()
        if not bad:
            bad += self._victims_answer()
            bad += self._victims_alive()
        gc.collect()
        for owner, stats in self.baseline.items():
            now = k.heap.domain_stats(owner)
            if now != stats:
                bad.append(f"heap owner {owner}: {now} live (objects, bytes), baseline {stats}")
        if attacker is not None and k.heap.domain_stats(attacker.id) != (0, 0):
            bad.append(f"the dead attacker still owns {k.heap.domain_stats(attacker.id)}")
        bad += self.snapshot.compare_and_restore()
        planted = sorted(p.name for p in self.watch.iterdir())
        if planted:
            bad.append(f"files written in the watched directory: {planted}")
        return bad

    def _victims_alive(self) -> list[str]:
        bad = []
        for name in VICTIMS:
            d = self.kernel.domain(name)
            if d.state != "running" or d.incarnation != 1 or self.kernel.crashes(name):
                bad.append(f"victim {name} damaged: {d.state}, incarnation {d.incarnation}, "
                           f"{self.kernel.crashes(name)} crash(es)")
            if self._spec(name) != self.specs[name]:
                bad.append(f"victim {name}'s spec (code image or capabilities) changed")
                spec, image, caps, modules = self.specs[name]  # the image cache is shared
                for live, saved in ((spec.caps, caps), (image.modules, modules)):
                    live.clear()
                    live.update(saved)
        return bad

    def _victims_answer(self) -> list[str]:
        bad = []
        try:
            if self.echo.ping(41) != 41:
                bad.append("echo answers wrongly")
            if self.kv.keys() != (0,):
                bad.append(f"kvstore keys changed: {self.kv.keys()}")
            found, block = self.kv.get(0, RRef.new(Block))
            ok = found and bool((block.readonly() == SECRET).all())
            del block
            if not ok:
                bad.append("kvstore's value of key 0 changed")
            if self.lent.readonly()[0] != 3 or self.lent.owner() != 1:
                bad.append("the block lent to the attacker changed")
        except Exception as exc:  # the victims must answer
            bad.append(f"a victim does not answer: {type(exc).__name__}: {exc}")
        return bad
