"""The compiled call gate (issue 14): opaque, equivalent to the generated Python proxy.

* Opacity: a gate exposes no attributes of its own, cannot be constructed, subclassed,
  copied or pickled; nothing reachable from it leads to the callee.
* Equivalence: one battery of calls (good calls, bad arguments, moves, borrows, use
  after move, a nested chain A -> B -> C with C panicking, asynchronous panics landing
  on two threads inside the callee) gives the same results, errors and registry state on
  the gate and on the Python proxies.
* Selection: `boot(proxies=...)`, and the Python proxies (with one warning) where the
  extension is not built.
"""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

import redleaf_lab
from redleaf_lab import Block, RRef
from redleaf_lab.idl import gates
from redleaf_lab.kernel.context import all_thread_states

pytestmark = pytest.mark.skipif(not gates.available(), reason="the call gate is not built")


@pytest.fixture
def gate_kernel() -> Any:
    k = redleaf_lab.boot(heap_bytes=64 << 20, max_objects=1 << 16, proxies="gate")
    yield k
    if not k._closed:
        k.shutdown()


def test_a_gate_exposes_nothing_and_cannot_be_made_or_extended(gate_kernel, domains):
    spin = gate_kernel.load(domains / "spinner")
    gate = type(spin).__dict__["ping"]
    gate_type = type(gate)
    assert gate_type.__name__ == "gate" and repr(gate) == "<gate Spin.ping>"
    assert set(dir(gate)) <= set(dir(object())) | {"__get__", "__call__"}  # slots only
    assert not hasattr(gate, "__dict__") and not hasattr(gate, "__self__")
    with pytest.raises(TypeError):
        gate_type()
    with pytest.raises(TypeError):
        type("Sub", (gate_type,), {})
    with pytest.raises((TypeError, AttributeError)):
        gate.callee = 1
    with pytest.raises(TypeError):
        copy.copy(gate)
    with pytest.raises(TypeError):
        pickle.dumps(gate)
    bound = spin.ping
    assert bound.__func__ is gate and bound.__self__ is spin  # a method of the capability
    assert spin.ping(4) == 4 and gate(spin, 5) == 5


def test_a_released_incarnation_drops_its_implementation(kernel, domains):
    spin = kernel.load(domains / "spinner")
    assert spin.ping(1) == 1
    impl = weakref.ref(kernel.domain("spinner").impl)
    kernel.panic("spinner")
    gc.collect()
    assert impl() is None


def test_python_proxies_on_request_and_without_the_extension(monkeypatch, domains):
    k = redleaf_lab.boot(heap_bytes=16 << 20, proxies="python")
    try:
        spin = k.load(domains / "spinner")
        assert type(type(spin).__dict__["ping"]).__name__ == "function"
    finally:
        k.shutdown()
    monkeypatch.setattr(gates, "_gate", None)
    monkeypatch.setattr(gates, "_warned", False)
    with pytest.warns(RuntimeWarning, match="not built"):
        assert gates.choose("gate") == "python"
    assert gates.choose(None) == "python"  # said once
    with pytest.raises(ValueError):
        gates.choose("fast")


def _outcome(fn: Any) -> tuple[str, str]:
    try:
        return ("ok", repr(fn()))
    except BaseException as exc:
        return (type(exc).__name__, str(exc))


def _inside(domain: Any, count: int) -> None:
    """Wait until `count` threads have the domain on top of their stacks (no deadline:
    the test's own timeout bounds it)."""
    while sum(1 for ts in all_thread_states() if ts.stack[-1] is domain) < count:
        threading.Event().wait(0.001)


def _battery(mode: str, domains: Path) -> list[Any]:
    k = redleaf_lab.boot(heap_bytes=32 << 20, max_objects=1 << 14, proxies=mode)
    out: list[Any] = []
    try:
        spin = k.load(domains / "spinner")
        out.append(_outcome(lambda: spin.ping(5)))
        out.append(_outcome(lambda: spin.ping(True)))
        for bad in ([1], {"a": 1}, bytearray(b"x"), object(), 1.5, "7", None):
            out.append(_outcome(lambda bad=bad: spin.ping(bad)))
        out.append(_outcome(lambda: spin.ping()))
        out.append(_outcome(lambda: spin.ping(1, 2)))
        out.append(_outcome(lambda: spin.ping(x=3)))
        out.append(_outcome(lambda: spin.refuse("no")))
        out.append(_outcome(lambda: spin.refuse(3)))
        ref = RRef.new(Block, 3)
        out.append(_outcome(lambda: spin.hold(ref)))
        out.append(_outcome(lambda: ref.readonly()))  # use after move
        out.append(_outcome(lambda: spin.hold(ref)))
        lent = RRef.new(Block, 4)
        out.append(_outcome(lambda: spin.write_borrowed(lent)))  # a panic
        k.restart("spinner")
        spin = k.proxy("spinner")
        out.append(_outcome(lambda: spin.peek_and_keep_view(lent)))
        k.restart("spinner")
        spin = k.proxy("spinner")
        got = spin.give()
        out.append((got.owner(), int(got.readonly()[0])))
        out.append(_outcome(lambda: spin.give_foreign()))
        k.restart("spinner")
        spin = k.proxy("spinner")
        leaf = k.load(domains / "leaf")
        link = k.load(domains / "link", next=leaf)
        out.append(_outcome(lambda: link.call(False, True)))
        out.append(_outcome(lambda: link.call(True, True)))
        out.append(_outcome(lambda: link.call(True, True)))
        k.restart("leaf")
        out.append(_outcome(lambda: link.call(True, False)))
        results: list[tuple[str, str]] = []

        def busy() -> None:
            results.append(_outcome(lambda: spin.spin(30.0)))

        threads = [threading.Thread(target=busy) for _ in range(2)]
        for t in threads:
            t.start()
        _inside(k.domain("spinner"), 2)
        assert k.faults.now("spinner")
        for t in threads:
            t.join()
        out.append(sorted(results))
        out.append(k.wait_unwound(k.domain("spinner"), timeout=30))
        out.append(_outcome(lambda: spin.ping(1)))
        out.append(sorted((d.name, d.state, d.calls) for d in k._history))
        out.append([ts.stack[1:] for ts in all_thread_states()])
        ref = lent = got = None  # the caller drops its handles
        gc.collect()
        stats = k.heap.stats()
        out.append((stats.live_objects, k.crashes("spinner"), k.crashes("leaf")))
    finally:
        out.append(k.shutdown()["objects"])
    return out


def test_the_gate_and_the_python_proxy_agree(domains):
    python = _battery("python", domains)
    gate = _battery("gate", domains)
    assert len(gate) == len(python)
    for i, (g, p) in enumerate(zip(gate, python, strict=True)):
        assert g == p, f"step {i}: gate {g!r} != python {p!r}"


def _counts(domain: Any) -> tuple[int, int]:
    """(calls the gates took in C, calls the generated Python proxy made): a gate that
    falls back counts nothing itself, its Python method counts `proxy_calls`."""
    return domain.calls - domain.proxy_calls, domain.proxy_calls


def test_moves_borrows_and_batched_results_take_the_c_path(gate_kernel):
    """The equivalence battery would pass on a gate that always fell back: this one
    fails then. Every common case must stay in C; the unusual ones must fall back."""
    from redleaf_lab.devices.memstore import MemStore
    from redleaf_lab.heap import BlkReq, RRefDeque

    echo = gate_kernel.load("echo")
    d = gate_kernel.domain("echo")
    block = RRef.new(Block, 7)
    block = echo.echo(block)  # its first move drops the exporter RRef.new left: fallback
    base = _counts(d)
    for _ in range(10):
        assert echo.ping(3) == 3
        block = echo.echo(block)  # moved in and back out in C
        assert echo.peek(block) == 0  # lent in C
    assert _counts(d) == (base[0] + 30, base[1])
    assert block.owner() == 1 and int(block.readonly()[0]) == 7
    view = block.array()  # a live view: the move is refused, by the Python path's error
    with pytest.raises(Exception, match="view"):
        echo.echo(block)
    assert _counts(d)[1] == base[1] + 1
    del view

    bdev = gate_kernel.load("membdev", store=MemStore(64))
    m = gate_kernel.domain("membdev")
    submit = RRefDeque.new(BlkReq, 32)
    for i in range(4):
        req = RRef.new(BlkReq)
        req.array()["block"] = i
        assert submit.push_back(req) is None
    taken, submit, collect = bdev.submit_and_poll(submit, RRefDeque.new(BlkReq, 32), True)
    assert taken == 4 and len(collect) == 4 and submit.owner() == 1 == collect.owner()
    assert _counts(m) == (1, 0)  # two deques moved in and back with rl_move_pair, in C


def test_the_c_path_check_catches_a_gate_that_always_falls_back(monkeypatch):
    """The check above, against a deliberately broken gate: one built with no argument
    descriptors falls back on every call, and the counts say so."""
    monkeypatch.setattr(gates, "_arg_descriptors", lambda m: None)
    k = redleaf_lab.boot(heap_bytes=16 << 20, proxies="gate")
    try:
        echo = k.load("echo")
        d = k.domain("echo")
        for _ in range(5):
            assert echo.ping(3) == 3
        assert _counts(d) == (0, 5)  # every call went through the Python method
    finally:
        k.shutdown()
