"""Benchmarks of the applications issue (issue 17): `redleaf-lab bench hashtable`,
`bench maglev` and `bench kv`. Each parses its options, runs the measurement module in
redleaf_lab/bench/ and prints a table or JSON. Heavy imports happen inside the
functions (this module is imported by every `redleaf-lab` invocation).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _bench_hashtable(args: argparse.Namespace) -> int:
    from ..bench import hashtable

    rows = hashtable.measure(min_log2=args.min_log2, max_log2=args.max_log2, step=args.step,
                             batch=args.batch)
    print(json.dumps(rows, indent=1) if args.json else hashtable.format_table(rows))
    return 0


def _bench_maglev(args: argparse.Namespace) -> int:
    from ..bench import maglev

    if args.quality:
        from ..domains.maglev import quality

        figures = quality.figures()
        print(json.dumps(figures, indent=1) if args.json else maglev.format_quality(figures))
        return 0
    rows = maglev.measure(seconds=args.seconds, flows=args.flows)
    print(json.dumps(rows, indent=1) if args.json else maglev.format_table(rows))
    return 0


def _bench_kv(args: argparse.Namespace) -> int:
    from ..bench import kv

    rows = kv.measure(seconds=args.seconds, keys=args.keys, tap=args.tap)
    print(json.dumps(rows, indent=1) if args.json else kv.format_table(rows))
    return 0


def add_bench_parser(bench: Any) -> None:
    p = bench.add_parser("hashtable", help="ns per set/get of the four hash tables vs C "
                         "(the paper's Fig. 5)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--min-log2", type=int, default=12)
    p.add_argument("--max-log2", type=int, default=20, help="largest table 2^N (default 20, "
                   "up to 24: the Python styles then take minutes)")
    p.add_argument("--step", type=int, default=2, help="log2 step between sizes (default 2)")
    p.add_argument("--batch", type=int, default=256, help="keys per vectorised call")
    p.set_defaults(func=_bench_hashtable)

    p = bench.add_parser("maglev", help="Mpps of the Maglev domain vs plain forwarding and C")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seconds", type=float, default=0.3, help="per row (default 0.3)")
    p.add_argument("--flows", type=int, default=1 << 20, help="generator flows (default 2^20)")
    p.add_argument("--quality", action="store_true", help="instead: the paper's balance and "
                   "disruption figures (M = 65537 and 655373, N = 10, 100, 1000) vs a ring")
    p.set_defaults(func=_bench_maglev)

    p = bench.add_parser("kv", help="requests/s of kvnet vs forwarding, a C store and memcached")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seconds", type=float, default=0.3, help="per case (default 0.3)")
    p.add_argument("--keys", type=int, default=1000, help="keys in the workload (default 1000)")
    p.add_argument("--tap", action="store_true", help="also kvnet vs real memcached through "
                   "TAP in a network namespace, and a store panic (needs root)")
    p.set_defaults(func=_bench_kv)
