"""The `redleaf-lab` command line.

    redleaf-lab demo [--seconds S] [--period P] [--out DIR] [--json]
    redleaf-lab bench calls [--json] [--runs N] [--iterations N]
    redleaf-lab bench recovery [--seconds S] [--batch N] [--json]
    redleaf-lab bench nvme [--seconds S] [--threaded] [--device sim|vfio:BDF] [--json]
    redleaf-lab bench net [--seconds S] [--threaded] [--json]
    redleaf-lab domains            # list the domains the loader can find
    redleaf-lab proxy INTERFACE    # print the generated proxy of an interface
    redleaf-lab lab [DIR] [--port P]   # JupyterLab on labs/ with the "RedLeaf Lab" kernel
    redleaf-lab vfio bind|unbind|status|list [BDF] [--force]   # vfio-pci binding (vfio/cli.py)

Exit status: 0 on success; 1 when the demo saw wrong data, a lost write or a heap leak.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    progress = None if args.json else demo.print_progress
    result = demo.run(seconds=args.seconds, period=args.period, progress=progress,
                      out=args.out or None)
    if progress is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(demo.format_summary(result))
    healthy = (result["wrong"] == 0 and result["leaked_objects"] == 0
               and result["lost_writes"] == 0
               and all(d["wrong_reads"] == 0 and d["errors"] == 0  # no failed I/O
                       for d in result["drivers"].values()))
    return 0 if healthy else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.name == "calls":
        from .bench import calls

        rows = calls.measure(iterations=args.iterations, runs=args.runs)
        print(json.dumps(rows, indent=2) if args.json else calls.format_table(rows))
        return 0
    if args.name == "recovery":
        from .bench import recovery

        result = recovery.measure(seconds=args.seconds or 5.0, batch=args.batch)
        print(json.dumps(result, indent=2) if args.json else recovery.format_table(result))
        return 0
    if args.name == "nvme":
        from .bench import nvme

        nvme_rows = nvme.measure(seconds=args.seconds or 0.5, threaded=args.threaded,
                                 device=args.device)
        print(json.dumps(nvme_rows, indent=2) if args.json else nvme.format_table(nvme_rows))
        return 0
    if args.name == "net":
        from .bench import net

        net_rows = net.measure(seconds=args.seconds or 0.3, threaded=args.threaded)
        print(json.dumps(net_rows, indent=2) if args.json else net.format_table(net_rows))
        return 0
    raise ValueError(f"unknown benchmark {args.name!r}")


def _cmd_domains(args: argparse.Namespace) -> int:
    from .kernel import loader

    for name, path in sorted(loader.find_domains().items()):
        image = loader.load_image(path)
        print(f"{name:<12} provides {image.provides.__name__:<10} {image.description}")
    return 0


def _cmd_proxy(args: argparse.Namespace) -> int:
    from .idl import proxy_source

    module_name, _, attr = args.interface.rpartition(".")
    if ":" in args.interface:
        module_name, _, attr = args.interface.partition(":")
    if not module_name:
        module_name = "redleaf_lab.interfaces." + attr.lower()
    iface = getattr(importlib.import_module(module_name), attr)
    print(proxy_source(iface))
    return 0


def _labs_dir() -> str:
    """labs/ of a source checkout (the current folder first), else the current folder."""
    from pathlib import Path

    for candidate in (Path.cwd() / "labs", Path(__file__).resolve().parents[1] / "labs"):
        if candidate.is_dir():
            return str(candidate)
    return str(Path.cwd())


def _cmd_lab(args: argparse.Namespace) -> int:
    import subprocess

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from .jupyter import kernelspec

    try:
        KernelSpecManager().get_kernel_spec(kernelspec.KERNEL_NAME)
    except NoSuchKernel:
        kernelspec.install(prefix=sys.prefix)
    folder = args.dir or _labs_dir()
    print(f"JupyterLab on {folder} with the {kernelspec.DISPLAY_NAME!r} kernel: open the URL "
          f"printed below (http://localhost:{args.port}/lab?token=...), start with "
          "00-tour.ipynb; Ctrl-C stops it.", flush=True)
    command = [sys.executable, "-m", "jupyter", "lab", folder, "--port", str(args.port)]
    try:
        return subprocess.call(command + list(args.jupyter_args))
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redleaf-lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the crash/recovery demo (headless)")
    demo.add_argument("--seconds", type=float, default=5.0)
    demo.add_argument("--period", type=float, default=1.0, help="seconds between panics")
    demo.add_argument("--out", default="build/demo",
                      help="folder for the offline HTML dashboard (and PNG); '' for none")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks")
    benches = bench.add_subparsers(dest="name", required=True, metavar="NAME")
    calls = benches.add_parser("calls", help="cross-domain call cost (RedLeaf's Table 1)")
    calls.add_argument("--json", action="store_true")
    calls.add_argument("--runs", type=int, default=7, help="timed loops per row")
    calls.add_argument("--iterations", type=int, default=200_000, help="loop length")
    recovery = benches.add_parser("recovery", help="block I/O while the driver panics every second")
    recovery.add_argument("--json", action="store_true")
    recovery.add_argument("--seconds", type=float, default=None,
                          help="seconds of each condition (default 5)")
    recovery.add_argument("--batch", type=int, default=32, help="requests per batch")
    nvme = benches.add_parser("nvme", help="NVMe driver IOPS and MB/s against a C host loop")
    nvme.add_argument("--json", action="store_true")
    nvme.add_argument("--seconds", type=float, default=None, help="per row (default 0.5)")
    nvme.add_argument("--threaded", action="store_true",
                      help="run the device model in its own thread (default inline)")
    nvme.add_argument("--device", default="sim",
                      help="'sim' (the embedded model, default) or 'vfio:BDF' (a real "
                           "controller bound to vfio-pci; no C baseline rows)")
    net = benches.add_parser("net", help="ixgbe forwarding Mpps against a C l2fwd-like loop")
    net.add_argument("--json", action="store_true")
    net.add_argument("--seconds", type=float, default=None, help="per row (default 0.3)")
    net.add_argument("--threaded", action="store_true",
                     help="run the device model in its own thread (default inline)")
    for name in ("calls", "recovery", "nvme", "net"):
        benches.choices[name].set_defaults(func=_cmd_bench)
    bench.set_defaults(func=_cmd_bench)

    domains = sub.add_parser("domains", help="list loadable domains")
    domains.set_defaults(func=_cmd_domains)

    proxy = sub.add_parser("proxy", help="print the generated proxy of an interface")
    proxy.add_argument("interface", help="e.g. KV or redleaf_lab.interfaces.kv:KV")
    proxy.set_defaults(func=_cmd_proxy)

    lab = sub.add_parser("lab", help="JupyterLab on labs/ with the RedLeaf Lab kernel")
    lab.add_argument("dir", nargs="?", default="", help="folder to open (default: labs/)")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                     help="further options for `jupyter lab`")
    lab.set_defaults(func=_cmd_lab)

    from .vfio.cli import add_parser as add_vfio_parser

    add_vfio_parser(sub)
    _add_plugin_commands(sub, benches)
    return parser


def _add_plugin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                         benches: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that live in their own module: see redleaf_lab/commands/__init__.py."""
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
        if hasattr(module, "add_bench_parser"):
            module.add_bench_parser(benches)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .vfio.errors import VfioError

    try:
        code: int = args.func(args)
    except (ValueError, VfioError) as exc:  # a bad option or device: say so, no traceback
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
