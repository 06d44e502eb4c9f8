"""Lab 0's graded exercises: the tour's two controls of the live system, written by the
student and run by the checker against a freshly booted lab session (its own kernel, the
real driver domains behind their shadows, the device models and their traffic threads).

Interface:
* `check_panic_times(panic_times, hidden=False)`: `panic_times(lab, driver, times)` must
  panic `driver` `times` times, one after the other (each panic armed only once the
  previous one crashed the driver and its shadow restarted it), and return the number of
  restarts it saw. Checked: exactly `times` more crashes and restarts, the driver running
  when the function returns, the traffic's acknowledged writes all on the media, no
  leaked heap object. Hidden: the NVMe driver, 5 times.
* `check_revive(revive, hidden=False)`: `revive(kernel, name)` brings a domain that is
  not behind a shadow back: a crashed (or stopped) one is restarted, and the proxy of the
  running incarnation is returned. Checked: kvstore panicked asynchronously comes back and
  answers. Hidden: a running kvstore is left alone (its keys stay), a stopped one restarts.
Ownership: each check boots and closes its own LabSession (checks: the leak check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RpcError
from ..heap import Block, RRef
from ..live.session import LabSession
from .checks import ExerciseFailed, panic_text


def _session(workloads: tuple[str, ...], domains: tuple[str, ...] = ()) -> LabSession:
    return LabSession.boot(heap_mb=16, domains=domains, workloads=workloads,
                           switch_interval=None)


def _close(lab: LabSession, ok: bool) -> None:
    leaked = lab.close()
    if ok and leaked["objects"]:
        raise ExerciseFailed(f"{leaked['objects']} heap objects leaked")


def check_panic_times(panic_times: Callable[..., Any], hidden: bool = False) -> None:
    """Grade the student's `panic_times`; raises ExerciseFailed."""
    runs = [("membdev", 3)] + ([("nvme", 5)] if hidden else [])
    lab = _session(tuple(driver for driver, _ in runs))
    ok = False
    try:
        kernel = lab.kernel
        for workload in lab.workloads.values():
            workload.start()
        for driver, times in runs:
            crashes, restarts = kernel.crashes(driver), kernel.restarts(driver)
            call = f"panic_times(lab, {driver!r}, {times})"
            try:
                got = panic_times(lab, driver, times)
            except Exception as err:
                raise ExerciseFailed(f"{call} raised {panic_text(err)}") from None
            crashed = kernel.crashes(driver) - crashes
            restarted = kernel.restarts(driver) - restarts
            state = kernel.domain(driver).state
            if crashed != times:
                raise ExerciseFailed(
                    f"{call} crashed {driver} {crashed} times, not {times}: arm one panic "
                    "(lab.panic(driver, 'once')), wait until kernel.crashes(driver) grew and "
                    "the shadow restarted it, then arm the next (a panic armed while another "
                    "is still pending replaces it)")
            if state != "running" or restarted != times:
                raise ExerciseFailed(f"{call} returned while {driver} was {state} after "
                                     f"{restarted} of {times} restarts: wait for the shadow's "
                                     "restart (kernel.restarts) before you return")
            if got != restarted:
                raise ExerciseFailed(f"{call} returned {got!r}; the shadow restarted {driver} "
                                     f"{restarted} times meanwhile")
        lab.stop_traffic()
        for name, found in lab.check().items():
            if found.get("lost_writes"):
                raise ExerciseFailed(f"{name}: {found['lost_writes']} acknowledged writes are "
                                     "not on the media after the panics")
        ok = True
    finally:
        _close(lab, ok)


def _store(kv: Any, keys: list[int]) -> None:
    for key in keys:
        block = RRef.new(Block, key)
        kv.put(key, block)


def _revived(kernel: Any, revive: Callable[..., Any], name: str, why: str) -> Any:
    try:
        proxy = revive(kernel, name)
    except Exception as err:
        raise ExerciseFailed(f"revive(kernel, {name!r}) ({why}) raised {panic_text(err)}") \
            from None
    state = kernel.domain(name).state
    if state != "running":
        raise ExerciseFailed(f"after revive(kernel, {name!r}) ({why}) {name} is {state}: "
                             "restart it with kernel.restart(name)")
    if proxy is not kernel.proxy(name):
        raise ExerciseFailed(f"revive(kernel, {name!r}) ({why}) returned {proxy!r}, not the "
                             "running incarnation's proxy (kernel.proxy(name))")
    try:
        return proxy.keys()
    except RpcError as err:
        raise ExerciseFailed(f"the proxy revive returned ({why}) does not answer: "
                             f"{panic_text(err)}") from None


def check_revive(revive: Callable[..., Any], hidden: bool = False) -> None:
    """Grade the student's `revive`; raises ExerciseFailed."""
    lab = _session((), ("checksum", "kvstore"))
    ok = False
    try:
        kernel = lab.kernel
        _store(kernel.proxy("kvstore"), [1, 2, 3])
        lab.panic("kvstore", "async")
        if kernel.domain("kvstore").state != "crashed":
            raise AssertionError("internal: kvstore did not crash")  # pragma: no cover
        keys = _revived(kernel, revive, "kvstore", "kvstore crashed")
        if keys != ():
            raise ExerciseFailed(f"the revived kvstore holds keys {keys}: a restart starts "
                                 "from a fresh incarnation (kvstore has no shadow)")
        if hidden:
            _store(kernel.proxy("kvstore"), [7, 8])
            restarts = kernel.restarts("kvstore")
            keys = _revived(kernel, revive, "kvstore", "kvstore running")
            if kernel.restarts("kvstore") != restarts or sorted(keys) != [7, 8]:
                raise ExerciseFailed("revive restarted a running kvstore: its keys [7, 8] are "
                                     f"now {list(keys)}; leave a running domain alone")
            kernel.stop("kvstore")
            _revived(kernel, revive, "kvstore", "kvstore stopped")
        ok = True
    finally:
        _close(lab, ok)
