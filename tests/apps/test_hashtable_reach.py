"""What a domain reaches of redleaf_lab/hashtable: the three Python styles work inside a
domain; the C table (ctable: it holds the cffi lib) is refused at load; the tables'
classes cannot be changed and their private arrays cannot be read from domain code."""

from __future__ import annotations

from pathlib import Path

import pytest

from redleaf_lab.errors import DomainLoadError, RpcError, SafetyError

MANIFEST = ('name = "{name}"\nentry = "d.py"\n'
            'provides = "redleaf_lab.interfaces.bench:Echo"\n')

USER = '''
from redleaf_lab.hashtable.common import FULL
from redleaf_lab.hashtable.cstyle import CStyleTable
from redleaf_lab.hashtable.idiomatic import IdiomaticTable
from redleaf_lab.hashtable.vectorised import VectorTable


class D:
    def __init__(self):
        self.tables = [IdiomaticTable(4), CStyleTable(4), VectorTable(4)]

    def ping(self, x):
        out = 0
        for t in self.tables:
            for k in range(5):
                if t.set(k * 1000 + x, k) == FULL:
                    out += 1
            out += 10 * t.get(3000 + x)
        return out

    def echo(self, data):
        return data

    def peek(self, data):
        {peek}


def init(ctx):
    return D()
'''


def make(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "domain.toml").write_text(MANIFEST.format(name=name))
    (folder / "d.py").write_text(source)
    return folder


def test_a_domain_uses_the_python_tables(kernel, tmp_path):
    proxy = kernel.load(make(tmp_path, "user", USER.format(peek="return 0")))
    assert proxy.ping(7) == 3 * (1 + 30)  # one FULL and value 3 per table


@pytest.mark.parametrize("attack", [
    "from redleaf_lab.hashtable.ctable import CTable",
    "from redleaf_lab._core import lib",
    "import redleaf_lab.hashtable.vectorised",
])
def test_the_c_table_and_module_objects_are_refused(kernel, tmp_path, attack):
    with pytest.raises((DomainLoadError, SafetyError)):
        kernel.load(make(tmp_path, "bad", attack + "\n" + USER.format(peek="return 0")))


@pytest.mark.parametrize("peek", [
    "CStyleTable.get = lambda self, key: 0",  # would change every domain's tables
    "return len(self.tables[2]._keys)",  # private arrays of a trusted object
    "self.tables[1]._count = 0",
    "class Mine(CStyleTable):\n            pass",  # subclasses of trusted classes
    "return type(self.tables[0])._probe",  # a private method through the class
])
def test_domains_cannot_change_the_tables(kernel, tmp_path, peek):
    from redleaf_lab.api import Block, RRef

    with pytest.raises((RpcError, DomainLoadError, SafetyError)):  # at load or at run time
        proxy = kernel.load(make(tmp_path, "meddler", USER.format(peek=peek)))
        proxy.peek(RRef.new(Block))
    from redleaf_lab.hashtable.cstyle import CStyleTable

    table = CStyleTable(4)
    table.set(1, 2)
    assert table.get(1) == 2
