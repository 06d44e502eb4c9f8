"""The four hash tables (redleaf_lab/hashtable) agree with a dict model and with each
other on random operation sequences; a full table answers FULL; bad input is refused
with ValueError; the test catches a deliberately broken table (tests/apps/broken_tables.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redleaf_lab._core import lib
from redleaf_lab.hashtable.common import FULL, INSERTED, UPDATED, fnv1a64
from redleaf_lab.hashtable.cstyle import CStyleTable
from redleaf_lab.hashtable.ctable import CTable
from redleaf_lab.hashtable.idiomatic import IdiomaticTable
from redleaf_lab.hashtable.vectorised import VectorTable, fnv1a64_array

from .broken_tables import NoBackshiftTable, WrongFullTable

STYLES = [IdiomaticTable, CStyleTable, VectorTable, CTable]

# a few keys collide in small tables, so chains, wrap-around and deletion shifts happen
keys = st.one_of(st.integers(0, 40), st.integers(0, 2**64 - 1))
ops = st.lists(st.tuples(st.sampled_from(["set", "get", "delete"]), keys,
                         st.integers(0, 2**64 - 1)), max_size=120)


def run_model(capacity: int, sequence: list) -> list:
    model: dict[int, int] = {}
    out = []
    for op, key, value in sequence:
        if op == "set":
            if key in model:
                out.append(UPDATED)
            elif len(model) >= capacity:
                out.append(FULL)
                continue
            else:
                out.append(INSERTED)
            model[key] = value
        elif op == "get":
            out.append(model.get(key))
        else:
            out.append(model.pop(key, None) is not None)
    out.append(sorted(model.items()))
    return out


def run_table(table, sequence: list) -> list:
    out = []
    for op, key, value in sequence:
        if op == "set":
            out.append(table.set(key, value))
        elif op == "get":
            out.append(table.get(key))
        else:
            out.append(table.delete(key))
    out.append(sorted((k, table.get(k)) for k in {k for _op, k, _v in sequence}
                      if table.get(k) is not None))
    return out


def test_fnv_known_answers():
    # FNV-1a 64 of eight zero bytes, and of b"\x01" + seven zeros (computed byte by byte)
    def bytewise(data: bytes) -> int:
        h = 0xCBF29CE484222325
        for b in data:
            h = ((h ^ b) * 0x100000001B3) % 2**64
        return h

    for key in (0, 1, 0xDEADBEEF, 2**64 - 1):
        expect = bytewise(key.to_bytes(8, "little"))
        assert fnv1a64(key) == expect == lib.rl_fnv1a64(key)
        assert int(fnv1a64_array(np.array([key], dtype=np.uint64))[0]) == expect
    assert fnv1a64(0) == 0xA8C7F832281A39C5


@settings(max_examples=60, deadline=None)
@given(log2=st.integers(1, 5), sequence=ops)
def test_all_styles_agree_with_the_model(log2, sequence):
    capacity = 1 << log2
    expected = run_model(capacity, sequence)
    for style in STYLES:
        assert run_table(style(capacity), sequence) == expected, style.__name__


@settings(max_examples=40, deadline=None)
@given(log2=st.integers(1, 6), batches=st.lists(
    st.lists(st.tuples(keys, st.integers(0, 2**64 - 1)), max_size=40), max_size=4))
def test_vector_batches_equal_sequential_sets(log2, batches):
    capacity = 1 << log2
    vector, scalar = VectorTable(capacity), CStyleTable(capacity)
    for batch in batches:
        ks = np.array([k for k, _ in batch], dtype=np.uint64)
        vs = np.array([v for _, v in batch], dtype=np.uint64)
        status = vector.set_many(ks, vs).tolist()
        assert status == [scalar.set(k, v) for k, v in batch]
        values, found = vector.get_many(ks)
        for (k, _), value, hit in zip(batch, values.tolist(), found.tolist(), strict=True):
            assert (value if hit else None) == scalar.get(k)
    assert sorted(vector.items()) == sorted(scalar.items())


@pytest.mark.parametrize("style", STYLES)
def test_full_table_is_an_error_value(style):
    table = style(8)
    for key in range(8):
        assert table.set(key * 7919, key) == INSERTED
    assert table.set(123456789, 1) == FULL
    assert table.set(7919, 99) == UPDATED  # updates still work
    assert table.get(123456789) is None  # a miss in a full table ends
    assert table.delete(7919) and table.set(123456789, 5) == INSERTED
    assert len(table) == 8


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "7", None])
def test_bad_keys_and_values_are_refused(style, bad):
    table = style(4)
    with pytest.raises(ValueError):
        table.set(bad, 1)
    with pytest.raises(ValueError):
        table.set(1, bad)
    assert len(table) == 0


@pytest.mark.parametrize("capacity", [0, 3, 2**27, "8"])
@pytest.mark.parametrize("style", STYLES)
def test_bad_capacity_is_refused(style, capacity):
    with pytest.raises(ValueError):
        style(capacity)


@pytest.mark.parametrize("broken", [NoBackshiftTable, WrongFullTable])
def test_the_property_test_catches_broken_tables(broken):
    """The same comparison on a sequence that exercises deletion and fullness fails."""
    import random

    rng = random.Random(1)
    sequence = [(rng.choice(["set", "set", "get", "delete"]), rng.randrange(20), rng.randrange(9))
                for _ in range(400)]
    expected = run_model(8, sequence)
    assert run_table(CStyleTable(8), sequence) == expected
    assert run_table(broken(8), sequence) != expected
