"""Sub-commands of `redleaf-lab` that live in their own module, one capability per module.

cli.py imports every module of this package (in name order) when it builds its parser, so
adding a capability's commands touches only its own file here. A module may define:

    add_parser(sub)          # add top-level commands: sub.add_parser("rv6", ...)
    add_bench_parser(bench)  # add benchmarks: bench.add_parser("fs", ...) -> `redleaf-lab bench fs`

Each parser sets `func=` to a function taking the parsed `argparse.Namespace` and returning
the exit status. Import heavy modules inside those functions, not at module level: every
`redleaf-lab` invocation imports this package. A `ValueError` raised by `func` is printed
as a one-line error (exit status 2), without a traceback.
"""
