"""`redleaf-lab net up` and the network benchmarks `bench http` and `bench udp`.

    redleaf-lab net up [--address A] [--seconds S] [--folder DIR] [--rv6 [--workers N]]
        the netstack and httpd domains on the ixgbe driver (behind its shadow) over the
        82599 model, whose wire is a TAP device in a fresh namespace (peer: A's /24, .1
        or .2), serving DIR's files (read here: domains cannot open files) or the built-in
        site; prints how to reach it, serves until Ctrl-C or S seconds, prints the
        stack's counters, and deletes everything it made. With --rv6 the server is the
        Rv6 httpd program (`httpd -w N /www`, N processes), loaded from Rv6's file
        system, serving the site from /www there, over Rv6's socket system calls.
    redleaf-lab bench http [--seconds S] [--connections N] [--json]
    redleaf-lab bench udp [--seconds S] [--json]

Heavy imports happen inside the command functions (this module is imported by every
`redleaf-lab` invocation).
"""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    net = sub.add_parser("net", help="the network stack on a TAP wire in a namespace")
    verbs = net.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("up", help="bring the stack and httpd up; serve until Ctrl-C")
    up.add_argument("--address", default="10.78.0.2", help="the stack's IPv4 address (a /24)")
    up.add_argument("--seconds", type=float, default=None, help="serve this long, then stop")
    up.add_argument("--folder", default=None,
                    help="serve the files of this folder (default: the built-in site)")
    up.add_argument("--rv6", action="store_true",
                    help="serve with the Rv6 httpd program from Rv6's file system")
    up.add_argument("--workers", type=int, default=2,
                    help="Rv6 httpd processes (each serves up to 13 connections)")
    up.set_defaults(func=_net_up)


def add_bench_parser(bench: argparse._SubParsersAction) -> None:
    http = bench.add_parser("http", help="wrk: this httpd (direct, shadow, panics) vs nginx "
                                         "and python http.server")
    http.add_argument("--seconds", type=float, default=10.0, help="seconds per path")
    http.add_argument("--connections", type=int, default=20)
    http.add_argument("--json", action="store_true")
    http.set_defaults(func=_bench_http)
    udp = bench.add_parser("udp", help="UDP echo through the stack vs Linux's own echo")
    udp.add_argument("--seconds", type=float, default=5.0, help="seconds per path")
    udp.add_argument("--json", action="store_true")
    udp.set_defaults(func=_bench_udp)


def peer_of(address: str) -> str:
    octets = address.split(".")
    if len(octets) != 4 or not all(o.isdigit() and 0 <= int(o) <= 255 for o in octets):
        raise ValueError(f"--address must be an IPv4 address, got {address!r}")
    if octets[3] in ("0", "255"):
        raise ValueError(f"--address {address} is a network or broadcast address of its /24")
    octets[3] = "2" if octets[3] == "1" else "1"
    return ".".join(octets)


def read_folder(folder: str, limit: int = 64 << 20) -> tuple[tuple[str, bytes], ...]:
    """The regular files under `folder` as (URL path, bytes) pairs, read here (the trusted
    side: the httpd domain cannot open files); at most `limit` bytes in all."""
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--folder {folder!r} is not a directory")
    files, total = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        total += len(data)
        if total > limit:
            raise ValueError(f"--folder {folder!r} holds more than {limit >> 20} MiB")
        files.append(("/" + path.relative_to(root).as_posix(), data))
    if not files:
        raise ValueError(f"--folder {folder!r} has no files")
    return tuple(files)


def _net_up(args: argparse.Namespace) -> int:
    from ..bench.tapstack import TapStack

    peer = peer_of(args.address)
    files = None if args.folder is None else read_folder(args.folder)
    if args.rv6 and not 1 <= args.workers <= 8:
        raise ValueError("--workers must be 1..8")
    stack = TapStack(address=args.address, peer=peer, files=files,
                     rv6_workers=args.workers if args.rv6 else 0)
    stack.start()
    try:
        ns = stack.namespace
        server = "the Rv6 httpd program" if args.rv6 else "the httpd domain"
        print(f"netstack {args.address} is up on TAP {stack.tap} in namespace {ns} (peer {peer}/24), "
              f"serving with {server}")
        print(f"  ip netns exec {ns} curl http://{args.address}/")
        print(f"  ip netns exec {ns} ping -c 3 {args.address}")
        if not args.rv6:
            print(f"  echo hello | ip netns exec {ns} nc -u -w 1 {args.address} 7")
        print(f"  ip netns exec {ns} wrk -c 20 -d 5 http://{args.address}/")
        print("serving; Ctrl-C stops" if args.seconds is None else f"serving for {args.seconds:g} s",
              flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
                if stack.errors:
                    raise RuntimeError(f"the serving loop stopped: {stack.errors[0]!r}")
        except KeyboardInterrupt:
            pass
        counters = stack.counters()
        if args.rv6:
            print(f"rv6 httpd ran {len(stack.rv6_runs) + 1} time(s); "
                  f"{counters.get('dropped', 0)} frames dropped")
        else:
            served = dict(stack.httpd.stats())
            print(f"served {served['requests']} requests on {served['accepted']} connections; "
                  f"{counters.get('dropped', 0)} frames dropped")
        for name, value in counters.items():
            if name.startswith("drop_"):
                print(f"  {name:<28} {value}")
    finally:
        stack.close()
    return 0


def _bench_http(args: argparse.Namespace) -> int:
    from ..bench import http

    result = http.measure(seconds=args.seconds, connections=args.connections)
    print(json.dumps(result, indent=2) if args.json else http.format_table(result))
    return 0


def _bench_udp(args: argparse.Namespace) -> int:
    from ..bench import udp

    result = udp.measure(seconds=args.seconds)
    print(json.dumps(result, indent=2) if args.json else udp.format_table(result))
    return 0
