"""Open-addressing hash tables with FNV-1a, 8-byte keys and values, in four styles.

The paper's language-overheads study (RedLeaf, OSDI '20, Fig. 5) compares one hash table
written in C, in idiomatic Rust and in C-style Rust. Here the same table exists as:

* `idiomatic.IdiomaticTable`: a class over a list of `Optional[tuple[key, value]]`;
* `cstyle.CStyleTable`: preallocated flat lists, integer arithmetic only, no per-entry
  objects;
* `vectorised.VectorTable`: numpy arrays, operations on a whole batch of keys at once;
* `ctable.CTable`: the C reference (`_core/csrc/hashtable.c`), for the benchmark and the
  property tests only.

All four share one contract (`common.py`): capacity a power of two (2..2**26), linear
probing from `fnv1a64(key) & (capacity - 1)`, keys and values are ints of 0..2**64-1,
`set` returns INSERTED, UPDATED or FULL (an error value: a full table never raises),
`get` returns the value or None, `delete` returns whether the key was there (backward
shift deletion: no tombstones, so probe chains stay as short as the load allows).

Domains may import the three Python styles (`redleaf_lab.hashtable.idiomatic`,
`.cstyle`, `.vectorised`, `.common`; the loader's allow-list names these modules
exactly). They are plain code with no module state and their classes are sealed, so
reaching them gives a domain nothing it could not write itself; `ctable` holds the cffi
`lib` and is not reachable (see ARCHITECTURE.md, "Hash tables"). This package file
imports nothing, so importing the package reaches no module.
"""
