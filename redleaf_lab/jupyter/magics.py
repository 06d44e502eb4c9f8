"""The `%redleaf` line magic: the lab's kernel operations from a notebook cell.

    %redleaf boot [--heap-mb N] [--bare]    # (re)boot: checksum, kvstore, membdev behind a shadow
    %redleaf ps                             # the domain table
    %redleaf heap                           # heap registry by domain and by type
    %redleaf panic DOMAIN [once|every|random|async] [--period T] [--p P]
    %redleaf restart DOMAIN | stop DOMAIN
    %redleaf bench calls|recovery [--seconds S]
    %redleaf dashboard [--no-traffic] [--no-rv6]  # widgets + live bokeh dashboard
    %redleaf net [DOMAIN]                   # a netstack's census and counters (every drop reason)

Each subcommand prints a readable table and returns an object (`rows = %redleaf ps`):
a `Rows` (a list) or a `Record` (a dict) carrying the printed `text`. So the table
is not shown twice, a result is not displayed again in the cell that printed it;
displayed in a later cell it shows its table.

Threads: the magic runs on the kernel's main thread; nothing here blocks
except `bench` (which is meant to).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from ..live.sampler import heap_summary
from ..live.session import PANIC_MODES, LabSession


class _Shown:
    """Displays its text, except in the cell that already printed it."""

    text = ""
    _count: int | None = None

    def _mark(self, text: str) -> None:
        self.text = text
        self._count = _execution_count()
        print(text)

    def _ipython_display_(self) -> None:
        if self._count is not None and self._count == _execution_count():
            return
        print(self.text)


class Rows(_Shown, list[Any]):
    """A list of rows (e.g. `DomainRow`s) plus the table that was printed."""


class Record(_Shown, dict[str, Any]):
    """A dict result plus the text that was printed."""


def _execution_count() -> int | None:
    from IPython import get_ipython

    shell = get_ipython()
    return None if shell is None else int(shell.execution_count)


def format_ps(rows: list[Any]) -> str:
    head = (f"{'domain':<12}{'id':>4}  {'state':<10}{'inc':>4}{'calls':>10}{'crashes':>9}"
            f"{'restarts':>9}{'objects':>9}{'KiB':>9}  interface")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<12}{r.id:>4}  {r.state:<10}{r.incarnation:>4}{r.calls:>10}"
                     f"{r.crashes:>9}{r.restarts:>9}{r.heap_objects:>9}"
                     f"{r.heap_bytes / 1024:>9.0f}  {r.interface}")
    return "\n".join(lines)


def format_heap(summary: Any) -> str:
    lines = [f"heap: {summary.live_objects} live objects ({summary.nested} inside containers), "
             f"{summary.live_bytes / 1024:.0f} KiB; by owner (with their containers' contents):",
             f"{'owner':<14}{'objects':>9}{'KiB':>10}"]
    for owner, (objects, nbytes) in summary.per_domain.items():
        lines.append(f"{owner:<14}{objects:>9}{nbytes / 1024:>10.1f}")
    lines += ["", f"{'type':<14}{'objects':>9}{'KiB':>10}"]
    for name, objects, nbytes in summary.top_types:
        lines.append(f"{name:<14}{objects:>9}{nbytes / 1024:>10.1f}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # no SystemExit inside a notebook
        raise ValueError(f"%redleaf: {message}\n{self.format_usage()}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%redleaf", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    boot = sub.add_parser("boot", add_help=False)
    boot.add_argument("--heap-mb", type=int, default=256)
    boot.add_argument("--bare", action="store_true", help="no domains, no workloads")
    sub.add_parser("ps", add_help=False)
    sub.add_parser("heap", add_help=False)
    panic = sub.add_parser("panic", add_help=False)
    panic.add_argument("domain")
    panic.add_argument("mode", nargs="?", default="once", choices=PANIC_MODES)
    panic.add_argument("--period", type=float, default=1.0)
    panic.add_argument("--p", type=float, default=0.01)
    for name in ("restart", "stop"):
        sub.add_parser(name, add_help=False).add_argument("domain")
    bench = sub.add_parser("bench", add_help=False)
    bench.add_argument("name", choices=["calls", "recovery"])
    bench.add_argument("--seconds", type=float, default=1.0)
    bench.add_argument("--iterations", type=int, default=50_000)
    sub.add_parser("net", add_help=False).add_argument("domain", nargs="?", default="netstack")
    dash = sub.add_parser("dashboard", add_help=False)
    dash.add_argument("--no-traffic", action="store_true")
    dash.add_argument("--no-rv6", action="store_true")
    return parser


@magics_class
class RedLeafMagics(Magics):
    """`%redleaf ...`; the session lives in `redleaf_lab.jupyter.state`."""

    @line_magic
    def redleaf(self, line: str) -> Any:
        from . import state

        args = build_parser().parse_args(shlex.split(line))
        handler = getattr(self, "_do_" + args.command)
        return handler(state, args)

    @line_magic
    def rv6(self, line: str) -> None:
        """`%rv6 ls | wc`: run a command line in Rv6 (booted on this kernel at first use;
        its block driver is `rv6disk`, beside the session's `membdev`)."""
        from ..rv6img.lab import run
        from . import state

        print(run(state.session().kernel, line), end="")

    def _do_boot(self, state: Any, args: argparse.Namespace) -> Any:
        session = state.reboot(self.shell, heap_mb=args.heap_mb, bare=args.bare)
        rows = Rows(session.kernel.ps())
        rows._mark(f"booted {session.kernel!r}; `kernel` and `lab` are in the namespace\n"
                   + format_ps(rows))
        return rows

    def _do_ps(self, state: Any, args: argparse.Namespace) -> Any:
        rows = Rows(state.session().kernel.ps())
        rows._mark(format_ps(rows))
        return rows

    def _do_heap(self, state: Any, args: argparse.Namespace) -> Any:
        summary = heap_summary(state.session().kernel)
        record = Record(per_domain=summary.per_domain, top_types=summary.top_types,
                        live_objects=summary.live_objects, live_bytes=summary.live_bytes)
        record._mark(format_heap(summary))
        return record

    def _do_panic(self, state: Any, args: argparse.Namespace) -> Any:
        session: LabSession = state.session()
        session.kernel.domain(args.domain)  # KeyError for an unknown name
        what = session.panic(args.domain, args.mode, period=args.period, p=args.p)
        record = Record(domain=args.domain, mode=args.mode, armed=what)
        record._mark(f"panic {args.domain} ({args.mode}): {what}")
        return record

    def _do_restart(self, state: Any, args: argparse.Namespace) -> Any:
        kernel = state.session().kernel
        kernel.restart(args.domain)
        d = kernel.domain(args.domain)
        record = Record(domain=d.name, id=d.id, incarnation=d.incarnation, state=d.state)
        record._mark(f"restarted {d.name}: incarnation {d.incarnation}, id {d.id}, {d.state}")
        return record

    def _do_stop(self, state: Any, args: argparse.Namespace) -> Any:
        session: LabSession = state.session()
        session.stop(args.domain)
        d = session.kernel.domain(args.domain)
        record = Record(domain=d.name, id=d.id, state=d.state)
        record._mark(f"stopped {d.name} (id {d.id}): {d.state}")
        return record

    def _do_bench(self, state: Any, args: argparse.Namespace) -> Any:
        if args.name == "calls":
            from ..bench import calls

            result = calls.measure(iterations=args.iterations, slow_iterations=500, runs=3)
            text = calls.format_table(result)
        else:
            from ..bench import recovery

            result = recovery.measure(seconds=args.seconds)
            text = recovery.format_table(result)
        record = Record(result)
        record._mark(text)
        return record

    def _do_net(self, state: Any, args: argparse.Namespace) -> Any:
        from ..widgets.netlog import net_report

        stack = state.session().kernel.proxy(args.domain)  # KeyError: not loaded
        record = Record(census=dict(stack.census()), counters=dict(stack.counters()))
        record._mark(net_report(stack))
        return record

    def _do_dashboard(self, state: Any, args: argparse.Namespace) -> Any:
        return state.dashboard(traffic=not args.no_traffic, rv6=not args.no_rv6)
