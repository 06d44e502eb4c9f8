"""Maglev's quality figures (NSDI '16, §5.3), computed by the same population code as
the domain, against a consistent-hashing ring (Karger et al., STOC '97):

* balance: max / average table entries per backend (1.0 is perfect);
* disruption: the fraction of table entries whose backend changes when k of the N
  backends are removed (entries of the removed backends must move; the rest is extra).

The ring puts `points` virtual points per backend on a 64-bit circle (FNV-1a of
"name#v", finished with MurmurHash3's fmix64: FNV-1a alone leaves the top bits of short
inputs that differ in their last bytes nearly equal, and the ring orders by the top
bits); a slot's key (the same hash of the slot number) belongs to the first point at
or after it. Both schemes are compared on the same M keys, so the figures are alike.

Interface: `maglev_entries(names, m)`, `ring_entries(names, m, points)` -> numpy arrays
of backend positions per slot; `balance(entries, n)`; `disruption(before, after,
removed, names)`. Pure functions; imports numpy.
"""

import numpy as np

from .population import FNV_OFFSET, FNV_PRIME, MASK64, fnv1a, populate, preferences


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit."""
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def slot_hashes(m: int):
    """fmix64(FNV-1a(slot as 4 little-endian bytes)) for every slot: fnv1a and fmix64
    above, vectorised (uint64 arithmetic wraps, as the masks do)."""
    slots = np.arange(m, dtype=np.uint64)
    h = np.full(m, FNV_OFFSET, dtype=np.uint64)
    for shift in (0, 8, 16, 24):
        h ^= (slots >> np.uint64(shift)) & np.uint64(0xFF)
        h *= np.uint64(FNV_PRIME)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def maglev_entries(names: list, m: int):
    return np.array(populate([preferences(name, m) for name in names], m), dtype=np.int64)


def ring_entries(names: list, m: int, points: int = 100):
    keys = []
    owners = []
    for i, name in enumerate(names):
        for v in range(points):
            keys.append(fmix64(fnv1a(f"{name}#{v}".encode())))
            owners.append(i)
    order = np.argsort(np.array(keys, dtype=np.uint64), kind="stable")
    ring = np.array(keys, dtype=np.uint64)[order]
    ring_owner = np.array(owners, dtype=np.int64)[order]
    slot_keys = slot_hashes(m)
    where = np.searchsorted(ring, slot_keys, side="left") % len(ring)
    return ring_owner[where]


def balance(entries, n: int) -> float:
    """max / average entries per backend over n backends."""
    counts = np.bincount(entries[entries >= 0], minlength=n)
    return float(counts.max() / (len(entries) / n))


def disruption(before, after, names_before: list, names_after: list) -> tuple:
    """(fraction of entries that changed backend, fraction that had to: they belonged to
    a removed backend). Backends are compared by name."""
    index = {name: i for i, name in enumerate(names_after)}
    remap = np.array([index.get(name, -1) for name in names_before], dtype=np.int64)
    moved_from = remap[before]  # each entry's old backend, as a position in the new list
    changed = float(np.mean(moved_from != after))
    forced = float(np.mean(moved_from < 0))
    return changed, forced


def figures(sizes: tuple = (65537, 655373), backends: tuple = (10, 100, 1000),
            failed: tuple = (0.01, 0.05, 0.1), points: int = 100) -> list:
    """The paper's §5.3 table: for each M and N, balance of Maglev and of the ring, and
    for each failed fraction k the entries moved by each and the share that had to (the
    failed backends' entries: "forced" in Maglev's table, "ring_forced" in the ring).
    One dict per (M, N)."""
    rows = []
    for m in sizes:
        for n in backends:
            names = [f"10.3.{i >> 8}.{i & 255}" for i in range(n)]
            mag, ring = maglev_entries(names, m), ring_entries(names, m, points)
            row = {"M": m, "N": n, "maglev_balance": round(balance(mag, n), 4),
                   "ring_balance": round(balance(ring, n), 4)}
            for k in failed:
                keep = names[max(1, int(n * k)):]
                moved, forced = disruption(mag, maglev_entries(keep, m), names, keep)
                ring_moved, ring_forced = disruption(ring, ring_entries(keep, m, points),
                                                     names, keep)
                row[f"fail_{k:g}"] = {"forced": round(forced, 4), "maglev": round(moved, 4),
                                      "ring": round(ring_moved, 4),
                                      "ring_forced": round(ring_forced, 4)}
            rows.append(row)
    return rows
