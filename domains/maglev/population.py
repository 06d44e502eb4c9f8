"""Maglev's lookup table (Eisenbud et al., NSDI '16, §3.4, Pseudocode 1).

Backend i has a preference list permutation_i[j] = (offset_i + j * skip_i) mod M, with
offset_i = h1(name_i) mod M and skip_i = h2(name_i) mod (M - 1) + 1. M is prime, so
every skip visits every slot. Backends take turns, in list order; in its turn a
backend claims the next slot of its list that is still empty; this goes on until all M
slots are filled. Each backend so gets floor(M/N) or ceil(M/N) slots, and removing a
backend moves its slots plus a few others (§3.4: minimal disruption, not none).

h1 is FNV-1a 64 over the name's UTF-8 bytes; h2 is FNV-1 64 (multiply, then xor) over
the same bytes: two different functions, as the paper asks (RedLeaf uses XxHash and
FNV). `lookup_index(hash, M)` is how a packet's 5-tuple hash picks a slot.

Interface: `preferences(name, M)` -> (offset, skip); `populate(prefs, M)` -> list of
backend positions per slot (a list of N (offset, skip) pairs; [] gives [-1] * M);
`is_prime(n)`. Pure functions: no state; used by the domain, the benchmark and the lab
(the quality figures are computed by this same code).
"""

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF
SMALL_M = 65537
LARGE_M = 655373


def fnv1a(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def fnv1(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h = ((h * FNV_PRIME) & MASK64) ^ byte
    return h


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def check_size(m: int) -> int:
    if type(m) is not int or m < 3 or not is_prime(m):
        raise ValueError(f"the table size must be a prime >= 3, got {m!r}")
    return m


def preferences(name: str, m: int) -> tuple:
    """(offset, skip) of backend `name` in a table of size m (§3.4)."""
    data = name.encode()
    return (fnv1a(data) % m, fnv1(data) % (m - 1) + 1)


def populate(prefs: list, m: int) -> list:
    """The lookup table: for each of the m slots, the position in `prefs` of the backend
    that claimed it (Pseudocode 1); all -1 when there is no backend."""
    check_size(m)
    n = len(prefs)
    entry = [-1] * m
    if n == 0:
        return entry
    cursor = [offset for offset, _skip in prefs]
    skips = [skip for _offset, skip in prefs]
    for offset, skip in prefs:
        if type(offset) is not int or type(skip) is not int or not 0 <= offset < m \
                or not 1 <= skip < m:
            raise ValueError(f"bad preference (offset {offset!r}, skip {skip!r}) for M={m}")
    filled = 0
    while True:
        for i in range(n):
            c = cursor[i]
            skip = skips[i]
            while entry[c] >= 0:  # the next slot of i's list that is still empty
                c += skip
                if c >= m:
                    c -= m
            entry[c] = i
            c += skip
            cursor[i] = c - m if c >= m else c
            filled += 1
            if filled == m:
                return entry


def lookup_index(flow_hash: int, m: int) -> int:
    """The slot a flow's hash selects."""
    return flow_hash % m
