"""Property test: random sequences of file operations against a model (a dict of paths
to bytes, with hard links sharing contents), checked after every step; fsck clean at
the end."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redleaf_lab
from redleaf_lab import Block, RRef
from redleaf_lab.interfaces.rv6 import ENOENT, O_CREATE, O_RDONLY, O_RDWR, O_TRUNC
from redleaf_lab.rv6img import fsck, mkfs
from redleaf_lab.rv6img.console import Console

from .conftest import image_of, store_of
from .powercut import read_tree

NAMES = [f"/p{i}" for i in range(5)]
name = st.sampled_from(range(len(NAMES)))
ops = st.one_of(
    st.tuples(st.just("write"), name, st.integers(0, 20000), st.binary(min_size=1, max_size=5000)),
    st.tuples(st.just("trunc"), name),
    st.tuples(st.just("unlink"), name),
    st.tuples(st.just("link"), name, name),
    st.tuples(st.just("read"), name, st.integers(0, 25000), st.integers(0, 4096)),
)


class Model:
    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.data: dict[int, bytes] = {}
        self.next = 0

    def files(self) -> dict[str, bytes]:
        return {p: self.data[i] for p, i in self.names.items()}


def read_file(fs, path: str, buf):
    fd = fs.open(1, path, O_RDONLY)
    if fd < 0:
        return fd, buf
    parts = []
    while True:
        n, buf = fs.read(1, fd, buf, 4096)
        assert n >= 0
        if n == 0:
            break
        parts.append(buf.tobytes()[:n])
    fs.close(1, fd)
    return b"".join(parts), buf


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=25))
def test_random_operations_match_a_dict_model(sequence):
    kernel = redleaf_lab.boot(heap_bytes=32 << 20, max_objects=1 << 14)
    store = store_of(mkfs(512, {}))
    kernel.load("membdev", store=store)
    fs = kernel.load("rv6fs", bdev=kernel.proxy("membdev"), console=Console())
    model = Model()
    buf = RRef.new(Block)
    try:
        for op in sequence:
            kind, a = op[0], NAMES[op[1]]
            touched = [a]
            if kind == "write":
                _k, _a, off, data = op
                fd = fs.open(1, a, O_CREATE | O_RDWR)
                assert fd >= 0
                assert fs.seek(1, fd, off, 0) == off
                for i in range(0, len(data), 4096):
                    buf.write(data[i:i + 4096])
                    n, buf = fs.write(1, fd, buf, len(data[i:i + 4096]))
                    assert n == len(data[i:i + 4096])
                assert fs.close(1, fd) == 0
                if a not in model.names:
                    model.names[a] = model.next
                    model.data[model.next] = b""
                    model.next += 1
                old = model.data[model.names[a]]
                old = old + bytes(max(0, off - len(old)))
                model.data[model.names[a]] = old[:off] + data + old[off + len(data):]
            elif kind == "trunc":
                fd = fs.open(1, a, O_CREATE | O_RDWR | O_TRUNC)
                assert fd >= 0 and fs.close(1, fd) == 0
                if a not in model.names:
                    model.names[a] = model.next
                    model.next += 1
                model.data[model.names[a]] = b""
            elif kind == "unlink":
                got = fs.unlink(1, a)
                assert got == (0 if a in model.names else -ENOENT)
                model.names.pop(a, None)
            elif kind == "link":
                b = NAMES[op[2]]
                got = fs.link(1, a, b)
                if a not in model.names:
                    assert got == -ENOENT
                elif b in model.names:
                    assert got < 0
                else:
                    assert got == 0
                    model.names[b] = model.names[a]
                touched.append(b)
            elif kind == "read":
                _k, _a, off, count = op
                fd = fs.open(1, a, O_RDONLY)
                if a not in model.names:
                    assert fd == -ENOENT
                    continue
                assert fs.seek(1, fd, off, 0) == off
                n, buf = fs.read(1, fd, buf, count)
                assert buf.tobytes()[:n] == model.data[model.names[a]][off:off + count]
                fs.close(1, fd)
            for path in touched:  # checked after every step
                got, buf = read_file(fs, path, buf)
                want = model.files().get(path, -ENOENT)
                assert got == want, (op, path)
        files, _dirs = read_tree(fs)
        assert files == model.files()
        assert fsck(image_of(store)) == []
    finally:
        buf.drop()
        assert kernel.shutdown() == {"objects": 0, "bytes": 0}
