"""`redleaf-lab bench hashtable`: ns per set and per get of the four hash tables
(redleaf_lab/hashtable: idiomatic Python, C-style Python, vectorised numpy, C) at table
sizes 2^12 ... 2^max_log2, each filled to 75%, the ratio of each to C as in the paper's
Fig. 5 (RedLeaf, OSDI '20: cycles per set at 2^20: C 51, idiomatic Rust 81, C-style
Rust 48).

Method: per size, the same `0.75 * size` random 64-bit keys (and values) from one seeded
generator go to a fresh table of each style, in the order C, idiomatic, C-style,
vectorised, C again (each C figure is the median of five runs on fresh tables; the two
are averaged: they bracket the Python runs, so a machine that got slower meanwhile
shows as a gap between them, reported as c_drift).
ns per set = time of inserting every key / keys; ns per get = time of looking up a
sample of at most `get_sample` of the inserted keys (all hits) / sample. C runs the
whole loop in C (rl_ht_bench_set/get: no cffi crossing per key); Python styles loop in
Python over a bound method; the vectorised table takes `batch` keys per call.

Interface: `measure(min_log2=12, max_log2=20, step=2, batch=256) -> list[dict]` (size,
log2, style, ns_set, ns_get, set_vs_c, get_vs_c); `format_table(rows)`. Runs in the
calling thread; no kernel.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .goals import method_lines

STYLES = ("c", "idiomatic", "cstyle", "vectorised")
FILL = 0.75
PAPER_CYCLES_2_20 = {"c": 51, "idiomatic Rust": 81, "C-style Rust": 48}
METHOD = __doc__.split("Method: ", 1)[1].split("\n\nInterface:", 1)[0]


def _python_style(style: str, capacity: int) -> Any:
    from ..hashtable.cstyle import CStyleTable
    from ..hashtable.idiomatic import IdiomaticTable
    from ..hashtable.vectorised import VectorTable

    return {"idiomatic": IdiomaticTable, "cstyle": CStyleTable,
            "vectorised": VectorTable}[style](capacity)


def _run_c(capacity: int, keys: np.ndarray, values: np.ndarray,
           sample: np.ndarray) -> tuple[float, float]:
    from ..hashtable.ctable import CTable

    table = CTable(capacity)
    ns_set, _ = table.bench_set(keys, values)
    ns_get, _, hits = table.bench_get(sample)
    if hits != len(sample):
        raise RuntimeError(f"C table lost keys: {hits} of {len(sample)} found")
    return ns_set / len(keys), ns_get / len(sample)


def _run_c_median(capacity: int, keys: np.ndarray, values: np.ndarray,
                  sample: np.ndarray, runs: int = 5) -> tuple[float, float]:
    """The median of `runs` C runs (each on a fresh table): C runs take micro- to
    milliseconds, so one preemption would swing a single run."""
    results = [_run_c(capacity, keys, values, sample) for _ in range(runs)]
    return (float(np.median([r[0] for r in results])), float(np.median([r[1] for r in results])))


def _run_python(style: str, capacity: int, keys: np.ndarray, values: np.ndarray,
                sample: np.ndarray, batch: int) -> tuple[float, float]:
    table = _python_style(style, capacity)
    if style == "vectorised":
        t0 = time.perf_counter_ns()
        for i in range(0, len(keys), batch):
            table.set_many(keys[i:i + batch], values[i:i + batch])
        t1 = time.perf_counter_ns()
        hits = 0
        for i in range(0, len(sample), batch):
            hits += int(table.get_many(sample[i:i + batch])[1].sum())
        t2 = time.perf_counter_ns()
    else:
        key_list, value_list, sample_list = keys.tolist(), values.tolist(), sample.tolist()
        put, get = table.set, table.get
        t0 = time.perf_counter_ns()
        for k, v in zip(key_list, value_list, strict=True):
            put(k, v)
        t1 = time.perf_counter_ns()
        hits = 0
        for k in sample_list:
            if get(k) is not None:
                hits += 1
        t2 = time.perf_counter_ns()
    if hits != len(sample):
        raise RuntimeError(f"{style} table lost keys: {hits} of {len(sample)} found")
    return (t1 - t0) / len(keys), (t2 - t1) / len(sample)


def measure(min_log2: int = 12, max_log2: int = 20, step: int = 2, batch: int = 256,
            get_sample: int = 200_000, seed: int = 1) -> list[dict[str, Any]]:
    """Every style at every size; see the module docstring."""
    if not 1 <= min_log2 <= max_log2 <= 24:
        raise ValueError(f"sizes must satisfy 1 <= min_log2 <= max_log2 <= 24, "
                         f"got {min_log2}..{max_log2}")
    if step < 1 or batch < 1 or get_sample < 1:
        raise ValueError("step, batch and get_sample must be >= 1")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for log2 in range(min_log2, max_log2 + 1, step):
        capacity = 1 << log2
        n = int(capacity * FILL)
        keys = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
        values = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
        sample = keys[rng.permutation(n)[:min(n, get_sample)]]
        c_first = _run_c_median(capacity, keys, values, sample)
        measured = {s: _run_python(s, capacity, keys, values, sample, batch)
                    for s in STYLES[1:]}
        c_last = _run_c_median(capacity, keys, values, sample)
        c_set, c_get = (c_first[0] + c_last[0]) / 2, (c_first[1] + c_last[1]) / 2
        measured = {"c": (c_set, c_get), **measured}
        for style in STYLES:
            ns_set, ns_get = measured[style]
            row = {"log2": log2, "size": capacity, "keys": n, "style": style,
                   "ns_set": round(ns_set, 2), "ns_get": round(ns_get, 2),
                   "set_vs_c": round(ns_set / c_set, 2), "get_vs_c": round(ns_get / c_get, 2),
                   "batch": batch if style == "vectorised" else 1,
                   "method": "same keys per style; C before and after, averaged"}
            if style == "c":
                row["c_drift"] = round(c_last[0] / c_first[0], 3)
            rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["open-addressing FNV-1a hash table, 8-byte keys and values, 75% full "
             "(ns per operation; x C = ratio to the C table at the same size)",
             f"{'size':>6} {'style':<11} {'ns/set':>9} {'x C':>7} {'ns/get':>9} {'x C':>7}"]
    for r in rows:
        lines.append(f"2^{r['log2']:<4} {r['style']:<11} {r['ns_set']:>9.1f} "
                     f"{r['set_vs_c']:>7.2f} {r['ns_get']:>9.1f} {r['get_vs_c']:>7.2f}")
    lines.append("paper, Fig. 5 at 2^20 (cycles per set): C 51, idiomatic Rust 81 (1.59 x C), "
                 "C-style Rust 48 (0.94 x C)")
    lines += ["", *method_lines(METHOD)]
    return "\n".join(lines)
