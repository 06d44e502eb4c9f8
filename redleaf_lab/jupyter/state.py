"""The notebook's one lab session, shared by the magics and `redleaf_lab.jupyter`.

`reboot(shell)` closes the previous session (its dashboards' sampler threads,
traffic, domains) and boots a new `LabSession`, publishing `lab` and `kernel`
in the user namespace. `session()` returns the current one (booting it on
first use); `dashboard()` builds a `LabView` on it (with this machine's `bench calls`
rows, measured once per process). `close()` tears it all down.

Threads: called from the kernel's main thread only.
"""

from __future__ import annotations

from typing import Any

from ..live.session import LabSession

_session: LabSession | None = None
_views: list[Any] = []
_calls: dict[str, Any] | None = None  # the `bench calls` rows the dashboards show


def reboot(shell: Any = None, heap_mb: int = 256, bare: bool = False) -> LabSession:
    global _session
    close()
    if bare:
        _session = LabSession.boot(heap_mb=heap_mb, domains=(), workloads=())
    else:
        _session = LabSession.boot(heap_mb=heap_mb)
    if shell is not None:
        shell.push({"lab": _session, "kernel": _session.kernel})
    return _session


def session() -> LabSession:
    if _session is None or _session.kernel._closed:
        return reboot(_shell())
    return _session


def dashboard(traffic: bool = True, calls: bool = True, rv6: bool = True) -> Any:
    """A `LabView` on the session. With `calls`, `bench calls` is measured first (about
    0.5 s, before the traffic starts, so it is not measured under load) for the
    dashboard's call-cost chart, unless an earlier dashboard already measured it. With
    `rv6`, Rv6's shell panel sits under the driver panels (Rv6 boots on first use)."""
    from ..widgets.lab import LabView

    global _calls
    if calls and _calls is None:
        from ..bench import calls as bench_calls

        _calls = bench_calls.measure(iterations=20_000, slow_iterations=300, runs=3)
    view = LabView(session(), calls=_calls if calls else None, rv6=rv6)
    _views.append(view)
    if traffic:
        view.start_traffic()
    return view


def close() -> dict[str, int] | None:
    global _session
    while _views:
        _views.pop().close()
    if _session is None:
        return None
    leaked = _session.close()
    _session = None
    return leaked


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()
