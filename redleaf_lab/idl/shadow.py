"""Shadows: transparent restart-and-retry in front of a domain (RedLeaf's shadow domains).

`make_shadow(kernel, name, policy)` returns an object with the same interface
as the named domain. It is a `ProxyBase`, so it can be handed to other domains
as a capability. Every method is generated from the interface's `MethodSpec`s
and does, on the fast path, only `try: return proxy.method(args)`. When the
call raises `RpcError` (the domain panicked, or was already dead), the shadow:

1. restarts the domain by name (`kernel.restart`: a fresh incarnation from the
   cached image, init with the same capabilities), unless another caller has
   already done so, or the domain was *stopped* (then the call fails);
2. rebuilds the arguments the crash took (see "Recovery rules");
3. retries, in a loop bounded by the `ShadowPolicy`: at most `max_restarts`
   restarts per `window_s` seconds, at most `max_attempts` restarts for one
   call, an exponential backoff before the second and later restarts of one
   call. When a limit is hit the caller gets `RpcError` ("gave up"); what was
   rescued for the call is freed, after the crash's handling has finished (its
   reclaim hook may still be handing the requests back), so a give-up never
   leaves requests that no handle reaches.

Recovery rules. What the crash took is decided per method, by a
`MethodRecovery`: `keep(args)` runs before every call and may copy what a
retry needs; `rebuild(args, kept)` runs after a restart and returns the
arguments for the retry. An argument that is still owned by the caller (the
call failed before it moved) is always reused. Otherwise the generic rules
derived from the MethodSpec are: scalars, tuples of scalars, capabilities and
borrowed RRefs are retried as they are (the lender never gave them away); a
moved `RRef[L]` is copied before the call and re-created from the copy; a moved
`RRefDeque[L, N]` is copied before the call (taken out as one handle-free batch,
one bulk gather of its elements, put back) and re-created after (new deque, new
RRefs, same contents, same order); any other moved value cannot be rebuilt, so
the call fails with RpcError after the restart. The rules live in
idl/recovery.py; `register_recovery` replaces the rule of one method. `BDev`
registers its own: `read` gets a fresh zeroed buffer (no copy), and
`submit_and_poll` *rescues* its in-flight requests instead of copying them: the
shadow records where they sit, the kernel runs the shadow's reclaim hook after
the dead driver's devices are quiesced and before its heap is reclaimed, and the
registry hands the requests back (`shadow-rescue` event), so a retried batch
carries the same requests, loses no acknowledged write and returns no stale data.

Retrying assumes the method is idempotent against the domain's surviving state
(true for block I/O on a store that outlives the driver).

Statistics (`shadow.shadow_stats`): restarts, retries, recoveries, give-ups and
the recovery time of every recovered call (crash timestamp -> the retry's
return). Events on the kernel bus: `shadow-restart`, `shadow-recovered`
(with `recovery_ns`), `shadow-gave-up` (with `reason`), `shadow-rescue` (with
`requests`).

Threads: any number of threads may call a shadow. Restarts are serialized by
one lock per shadow; a thread that finds the domain already restarted by
another just retries on the new incarnation. The shadow does not serialize
calls: whether the domain serves concurrent calls is its interface's contract
(see the interface's docstring; BDev: any number of callers).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DomainLoadError, RpcError
from .interface import Interface
from .proxy import ProxyBase
from .recovery import (
    ArgRule,
    AsIs,
    CopiedDeque,
    CopiedRRef,
    DequeCopy,
    FreshRRef,
    InFlight,
    Lost,
    MethodRecovery,
    NotRecoverable,
    Rescue,
    copy_deque,
    generic_rule,
    recovery_for,
    register_recovery,
    rescue_in_flight,
    still_owned,
)

__all__ = [
    "ArgRule", "AsIs", "CopiedDeque", "CopiedRRef", "DequeCopy", "FreshRRef", "Lost",
    "MethodRecovery", "NotRecoverable", "Rescue", "ShadowBase", "ShadowPolicy", "ShadowStats",
    "copy_deque", "generic_rule", "make_shadow", "recovery_for", "register_recovery",
    "shadow_class", "still_owned",
]

RUNNING, CRASHED, STOPPED, LOADING = "running", "crashed", "stopped", "loading"
SETTLE_TIMEOUT_S = 10.0  # a give-up waits at most this for the crash handling to finish


# -- policy and statistics ---------------------------------------------------------------
@dataclass(frozen=True)
class ShadowPolicy:
    """When to restart and when to give up.

    max_restarts per window_s: a rate limit over all callers of the shadow.
    max_attempts: restarts spent on one call before it fails.
    backoff: the first restart of a call is immediate; the k-th (k >= 2) waits
    min(backoff_max_s, backoff_s * backoff_factor ** (k - 2)).
    """

    max_restarts: int = 20
    window_s: float = 1.0
    max_attempts: int = 5
    backoff_s: float = 0.001
    backoff_factor: float = 2.0
    backoff_max_s: float = 0.1

    def __post_init__(self) -> None:
        if self.max_restarts < 1 or self.max_attempts < 1:
            raise ValueError("max_restarts and max_attempts must be at least 1")
        if self.window_s <= 0 or self.backoff_s < 0 or self.backoff_factor < 1:
            raise ValueError("window_s > 0, backoff_s >= 0 and backoff_factor >= 1 are required")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before the `attempt`-th restart of one call (1-based)."""
        if attempt <= 1 or self.backoff_s == 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_s * self.backoff_factor ** (attempt - 2))


@dataclass
class ShadowStats:
    restarts: int = 0
    retries: int = 0
    recoveries: int = 0
    gave_up: int = 0
    recovery_ns: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))

    def recovery_ms(self, percentile: float) -> float:
        """A percentile (0..100) of the recovery times in ms; nan if none yet."""
        if not self.recovery_ns:
            return float("nan")
        return float(np.percentile(np.fromiter(self.recovery_ns, dtype=np.int64), percentile)
                     ) / 1e6


# -- the shadow ----------------------------------------------------------------------------
class _GiveUp(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ShadowBase(ProxyBase):
    """State and recovery loop of a shadow; generated subclasses add the methods."""

    __slots__ = ("__weakref__", "_in_flight", "_kernel", "_lock", "_name", "_policy", "_proxy",
                 "_restart_times", "shadow_stats")

    def __init__(self, kernel: Any, name: str, policy: ShadowPolicy) -> None:
        self._kernel = kernel
        self._name = name
        self._policy = policy
        self._proxy: Any = kernel.domain(name).proxy
        self._lock = threading.RLock()
        self._restart_times: deque[float] = deque()
        self.shadow_stats = ShadowStats()
        # thread ident -> the requests of its latest call of a Rescue method; an entry of
        # a finished call is harmless: its requests are back with the caller, so a
        # rescue skips them (the registry says who holds what)
        self._in_flight: dict[int, InFlight] = {}
        if any(r.rescues for r in type(self)._recoveries.values()):
            hook = weakref.WeakMethod(self._rescue)
            kernel.add_reclaim_hook(name, lambda dead: (h := hook()) is not None and h(dead))

    _recoveries: dict[str, MethodRecovery] = {}

    def _rescue(self, dead: Any) -> int:
        """The kernel's reclaim hook: before `dead` is reclaimed, take back the requests
        of the calls it interrupted."""
        rescued = rescue_in_flight(dead.heap, dead.id, list(self._in_flight.values()))
        alive = {t.ident for t in threading.enumerate()}
        # list(): one C call, so a thread that adds its first record meanwhile (a new
        # caller) cannot change the dict under this loop
        for ident in [i for i in list(self._in_flight) if i not in alive]:  # ended threads
            self._in_flight.pop(ident, None)
        if rescued:
            self._kernel.events.emit("shadow-rescue", self._name, requests=rescued)
        return rescued

    def _current(self) -> Any:
        """The current incarnation of the shadowed domain (kernel-side only: a domain
        holding the shadow never reaches the kernel's Domain objects)."""
        return self._kernel.domain(self._name)

    @property
    def shadow_name(self) -> str:
        return self._name

    @property
    def shadow_policy(self) -> ShadowPolicy:
        return self._policy

    def __repr__(self) -> str:
        d = self._current()
        return f"<shadow {self.interface.__name__} -> {d.name}#{d.id} ({d.state})>"

    # -- recovery --------------------------------------------------------------------
    def _recover(self, proxy: Any, recovery: MethodRecovery, args: tuple[Any, ...], kept: Any,
                 error: RpcError) -> Any:
        """Restart, rebuild, retry until a call succeeds or the policy gives up."""
        failed = proxy._domain
        crash = failed.crash
        crashed_ns = crash.ts_ns if crash is not None else time.monotonic_ns()
        attempt = 0
        while True:
            attempt += 1
            try:
                self._ensure_running(failed, attempt)
                args = recovery.rebuild(args, kept)
            except _GiveUp as give_up:
                raise self._give_up(recovery, kept, failed, give_up.reason, error) from None
            except NotRecoverable as exc:
                raise self._give_up(recovery, kept, failed, f"crashed and {recovery.name} "
                                    f"cannot be retried: {exc}", error) from None
            except Exception as exc:  # a failing restart or rule: the caller gets RpcError,
                # and what was rescued for the call is freed, not left to nobody
                raise self._give_up(recovery, kept, failed, f"crashed and the recovery failed: "
                                    f"{type(exc).__name__}: {exc}", error) from exc
            proxy = self._proxy
            self.shadow_stats.retries += 1
            try:
                result = getattr(proxy, recovery.name)(*args)
            except RpcError as again:
                error, failed = again, proxy._domain
                continue  # (the next retry runs outside this handler: no exception chaining)
            elapsed = time.monotonic_ns() - crashed_ns
            stats = self.shadow_stats
            stats.recoveries += 1
            stats.recovery_ns.append(elapsed)
            self._kernel.events.emit("shadow-recovered", self._name, method=recovery.name,
                                     recovery_ns=elapsed, attempts=attempt)
            return result

    def _give_up(self, recovery: MethodRecovery, kept: Any, failed: Any, reason: str,
                 error: RpcError) -> RpcError:
        """The call fails for good. The give-up is decided (counted, `shadow-gave-up`)
        first; then the crash handling of `failed` is waited for, so its reclaim hook has
        handed this call's requests back (they are the caller's, and no handle holds
        them); then they are freed. Without the wait, a give-up that overtakes the crash
        handling frees nothing and the rescue that follows leaves the requests to nobody."""
        exc = self._gave_up(reason, error)
        if recovery.abandon is not None and kept is not None:
            if failed.state not in (RUNNING, LOADING):  # crashed or stopped: it settles
                failed.settled.wait(timeout=SETTLE_TIMEOUT_S)
            recovery.abandon(self._kernel.heap, kept)
        return exc

    def _ensure_running(self, failed: Any, attempt: int) -> None:
        """Make the current incarnation a running one other than `failed`, or give up."""
        kernel, name, policy = self._kernel, self._name, self._policy
        with self._lock:
            while True:
                current = kernel.domain(name)
                if current is not failed and current.state == RUNNING:
                    self._proxy = current.proxy  # restarted by another caller
                    return
                if current.state == STOPPED:
                    raise _GiveUp("was stopped; a shadow does not restart a stopped domain")
                if attempt > policy.max_attempts:
                    raise _GiveUp(f"crashed again after {policy.max_attempts} restart(s) for "
                                  "one call; the shadow gave up (ShadowPolicy.max_attempts)")
                now = time.monotonic()
                times = self._restart_times
                while times and now - times[0] > policy.window_s:
                    times.popleft()
                if len(times) >= policy.max_restarts:
                    raise _GiveUp(f"crashed; the shadow gave up: restart limit of "
                                  f"{policy.max_restarts} per {policy.window_s:g} s reached "
                                  "(ShadowPolicy.max_restarts)")
                if current.state != CRASHED:  # loading/restarting elsewhere: let it finish
                    time.sleep(0.0005)
                    continue
                delay = policy.backoff(attempt)
                if delay:
                    time.sleep(delay)
                times.append(time.monotonic())
                self.shadow_stats.restarts += 1
                kernel.events.emit("shadow-restart", name, attempt=attempt, backoff_s=delay,
                                   incarnation=current.incarnation + 1)
                try:
                    self._proxy = kernel.restart(name)
                    return
                except DomainLoadError as exc:  # init failed: counts as a failed attempt
                    kernel.events.emit("shadow-restart-failed", name, error=str(exc))
                    failed = kernel.domain(name)
                    attempt += 1

    def _gave_up(self, reason: str, error: RpcError) -> RpcError:
        self.shadow_stats.gave_up += 1
        self._kernel.events.emit("shadow-gave-up", self._name, reason=reason)
        return RpcError(self._name, reason, error)


_METHOD_TEMPLATE = """\
    def {name}(self{params}):
        {keep}shadow__proxy = self._proxy
        try:
            return shadow__proxy.{name}({args})
        except _RpcError as shadow__caught:
            shadow__error = shadow__caught
        # outside the handler, so a crash during the retry does not chain to this one
        return self._recover(shadow__proxy, _R_{name}, {packed}, {kept}, shadow__error)
"""


def _shadow_source(iface: type[Interface], recoveries: dict[str, MethodRecovery]) -> str:
    parts = [f"class {iface.__name__}Shadow(_ShadowBase):\n    __slots__ = ()\n"
             "    interface = _iface\n    _recoveries = _all_recoveries\n"]
    for m in iface.__methods__.values():
        args = [p.name for p in m.params]
        packed = "(" + "".join(a + ", " for a in args) + ")"
        recovery = recoveries[m.name]
        keep = f"shadow__kept = _K_{m.name}({packed})\n        " if recovery.keep else ""
        if recovery.rescues:  # the kernel's reclaim hook finds the requests here
            keep += "self._in_flight[_get_ident()] = shadow__kept\n        "
        parts.append(_METHOD_TEMPLATE.format(
            name=m.name, params="".join(", " + a for a in args), args=", ".join(args),
            packed=packed, keep=keep, kept="shadow__kept" if recovery.keep else "None"))
    return "\n".join(parts)


def shadow_class(iface: type[Interface]) -> type[ShadowBase]:
    """Generate the shadow class of `iface` with the recovery rules registered now."""
    recoveries = {name: recovery_for(iface, m) for name, m in iface.__methods__.items()}
    clash = sorted(set(iface.__methods__) & {"shadow_name", "shadow_policy",
                                              "shadow_stats"})
    if clash:
        raise ValueError(f"{iface.__name__}: method name(s) {clash} clash with the shadow's own")
    namespace: dict[str, Any] = {"_ShadowBase": ShadowBase, "_iface": iface,
                                 "_RpcError": RpcError, "_all_recoveries": recoveries,
                                 "_get_ident": threading.get_ident}
    for name, recovery in recoveries.items():
        namespace[f"_R_{name}"] = recovery
        namespace[f"_K_{name}"] = recovery.keep
    source = _shadow_source(iface, recoveries)
    exec(compile(source, f"<shadow {iface.__name__}>", "exec"), namespace)
    cls: type[ShadowBase] = namespace[f"{iface.__name__}Shadow"]
    return cls


def make_shadow(kernel: Any, name: str, policy: ShadowPolicy | None = None) -> Any:
    """A shadow of the loaded domain `name`: same interface, restart-and-retry on panics."""
    iface = kernel.interface_of(name)
    return shadow_class(iface)(kernel, name, policy or ShadowPolicy())


# -- BDev ---------------------------------------------------------------------------------
def _register_bdev() -> None:
    from ..interfaces.bdev import BDev

    register_recovery(BDev, MethodRecovery.from_rules("read", (AsIs(), FreshRRef())))
    # requests in both deques are rescued from the crashed driver, not copied per call
    register_recovery(BDev, Rescue("submit_and_poll", 0, 1).recovery())


_register_bdev()
