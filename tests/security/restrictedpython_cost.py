"""RestrictedPython's guards against this project's, on one driver-style method (a script).

Not a test: RestrictedPython is not a dependency. Run it to repeat the measurement that
ARCHITECTURE.md quotes:

    pip install --target /tmp/rp restrictedpython
    .venv/bin/python tests/security/restrictedpython_cost.py     # RP_PATH=/tmp/rp

It times one method (a ring step: six attribute reads, two stores, one numpy attribute)
compiled three ways, best of five runs of 200,000 calls each: plain CPython; this
project's loader (receiver guard, façade, checked stores); RestrictedPython 9.0
(`compile_restricted`, `safer_getattr` on every attribute read, `full_write_guard`).
RestrictedPython must use `self.x` where the others use `self._x`: it refuses every
name that starts with an underscore.
"""
# ruff: noqa
import ast
import os
import sys
import time
sys.path.insert(0, os.environ.get("RP_PATH", "/tmp/rp"))
from RestrictedPython import compile_restricted, safe_globals
from RestrictedPython.Guards import safer_getattr, full_write_guard, guarded_setattr
import numpy as np

SRC = '''
class Ring:
    def __init__(self, n):
        self.{p}head = 0
        self.{p}tail = 0
        self.{p}size = n
        self.{p}slots = np.zeros(n, dtype=np.uint64)
    def step(self, k):
        head = self.{p}head
        free = self.{p}size - (self.{p}tail - head)
        take = min(k, free)
        self.{p}tail = self.{p}tail + take
        self.{p}head = head + take // 2
        return take + self.{p}slots.shape[0] + (np.uint64 is not None)
'''
def run(ns, label):
    r = ns["Ring"](256)
    step = r.step
    for _ in range(2000): step(32)
    n = 200_000
    best = 1e9
    for _ in range(5):
        t = time.perf_counter_ns()
        for _ in range(n): step(32)
        best = min(best, (time.perf_counter_ns() - t) / n)
    print(f"{label:45s} {best:7.1f} ns per method call")
    return best

# (a) plain
ns = {"np": np, "__name__": "plain"}
exec(compile(SRC.format(p="_"), "plain", "exec"), ns)
plain = run(ns, "plain CPython (no guards)")

# (b) RedLeaf Lab's checker: receiver guard + store/format rewrite + np facade

from redleaf_lab.kernel.safety.receiver import insert_guards
from redleaf_lab.kernel.safety.classes import ClassPolicy
from redleaf_lab.kernel.safety.facades import FacadeMaker
from redleaf_lab.kernel.safety import runtime
from redleaf_lab.kernel.loader import _DomainNamespace
import redleaf_lab.kernel.safety.receiver as rc
from redleaf_lab.kernel.safety.formatting import safe_format_attr
pol = ClassPolicy("redleaf_domain.bench.d1")
fac = FacadeMaker(pol)
b = runtime.safe_builtins(runtime.make_importer(facade=fac), pol)
ns = {"np": fac(np), "__name__": "redleaf_domain.bench.d1.m", "__builtins__": b,
      rc.OWN_SET: pol.own, rc.REAL_TYPE: type, rc.STRANGER: ClassPolicy.stranger,
      rc.CLASS_OK: pol.class_ok, rc.SAFE_FORMAT: safe_format_attr,
      rc.STORE_ATTR: pol.store_attr, rc.AUG_ATTR: pol.aug_attr, rc.DEL_ATTR: pol.del_attr}
tree = insert_guards(ast.parse(SRC.format(p="_")))
exec(compile(tree, "lab", "exec"), ns)
lab = run(ns, "RedLeaf Lab (receiver guard, façade, checks)")

# (c) RestrictedPython: every attribute read through safer_getattr, writes via guard
code = compile_restricted(SRC.format(p=""), "<rp>", "exec")
g = dict(safe_globals)
g.update({"np": np, "__name__": "rp", "_getattr_": safer_getattr, "_write_": full_write_guard,
          "__metaclass__": type, "_getiter_": iter, "_getitem_": lambda o, k: o[k]})
g["__builtins__"] = dict(g["__builtins__"]); g["__builtins__"]["min"] = min
exec(code, g)
g['Ring']._guarded_writes = 1
rp = run(g, "RestrictedPython 9.0 (safer_getattr, write guard)")
try:
    compile_restricted(SRC.format(p="_"), "<rp>", "exec")
    print("RestrictedPython accepts self._x")
except SyntaxError as e:
    print("RestrictedPython refuses self._x:", str(e).splitlines()[0][:120])
print(f"overhead vs plain: lab {lab/plain:.2f}x, RestrictedPython {rp/plain:.2f}x")
