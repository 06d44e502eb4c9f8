"""Domain libraries (kernel/loader.py): code several domains share, linked into each.

A library is `lib/<name>.py` under a search root; a manifest lists it in `libraries`.
The loader checks it with the safe subset, compiles it once and adds it to the image as
one more module: every incarnation executes its own copy (shared text, never shared
state), edits are picked up, and every mistake is a load error that names it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from redleaf_lab.errors import DomainLoadError, SafetyError
from redleaf_lab.kernel import loader

COUNTER_LIBRARY = '''"""A library with module state: each incarnation must get its own."""

CALLS = [0]


def bump():
    CALLS[0] += 1
    return CALLS[0]
'''

ECHO_USING = '''from .counter import bump


class E:
    def ping(self, x):
        return bump() * 1000 + x

    def echo(self, data):
        return data

    def peek(self, data):
        return 0


def init(ctx):
    return E()
'''


def make_domain(root: Path, name: str, libraries: str = '["counter"]',
                source: str = ECHO_USING) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text(
        f'name = "{name}"\nentry = "{name}.py"\n'
        f'provides = "redleaf_lab.interfaces.bench:Echo"\nlibraries = {libraries}\n')
    (folder / f"{name}.py").write_text(source)
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "counter.py").write_text(COUNTER_LIBRARY)
    monkeypatch.setenv("REDLEAF_LAB_DOMAIN_PATH", str(tmp_path))
    return tmp_path


def test_two_domains_share_a_librarys_text_not_its_state(kernel, root):
    a = kernel.load(make_domain(root, "user_a"))
    b = kernel.load(make_domain(root, "user_b"))
    assert [a.ping(1), a.ping(2), b.ping(3)] == [1001, 2002, 1003]
    assert loader.load_image(root / "user_a").libraries == ("counter",)
    kernel.panic("user_a")
    a = kernel.restart("user_a")
    assert a.ping(4) == 1004  # a new incarnation starts from the library's own start
    assert b.ping(5) == 2005


def test_an_edited_library_is_picked_up(kernel, root):
    folder = make_domain(root, "user_c")
    first = loader.load_image(folder)
    library = root / "lib" / "counter.py"
    library.write_text(COUNTER_LIBRARY.replace("CALLS[0] += 1", "CALLS[0] += 2"))
    later = time.time() + 5
    os.utime(library, (later, later))  # a different mtime even on a coarse clock
    second = loader.load_image(folder)
    assert second is not first
    assert kernel.load(folder).ping(0) == 2000


@pytest.mark.parametrize(("libraries", "message"), [
    ('["nosuch"]', "no domain library 'nosuch'"),
    ('"counter"', "`libraries` must be a list of library names"),
    ('["../counter"]', "is not a library name"),
    ('["user_d"]', "has the name of one of the domain's own modules"),
    ('["counter", "counter"]', "names a library twice"),
])
def test_library_mistakes_are_load_errors_that_name_them(kernel, root, libraries, message):
    (root / "lib" / "user_d.py").write_text("X = 1\n")
    with pytest.raises(DomainLoadError, match=message):
        kernel.load(make_domain(root, "user_d", libraries=libraries))
    assert "user_d" not in kernel.domains


def test_a_library_gets_the_same_safe_subset_check(kernel, root):
    (root / "lib" / "sneaky.py").write_text("import ctypes\n")
    with pytest.raises(SafetyError, match=r"lib/sneaky.py:1"):
        kernel.load(make_domain(root, "user_e", libraries='["sneaky"]'))


def test_programs_from_sources_can_link_libraries_too(kernel, root):
    from redleaf_lab.interfaces.bench import Echo

    image = loader.image_from_sources("prog", {"prog": ECHO_USING}, "prog", Echo, {},
                                      origin="tests/prog", libraries=("counter",))
    assert kernel.load(image).ping(7) == 1007


def test_the_packaged_inet_library_serves_its_domains():
    for name in ("pingd", "pktgen", "kvnet"):
        image = loader.load_image(name)
        assert "inet" in image.libraries and "inet" in image.modules


def test_plain_imports_of_domain_modules_get_the_listed_libraries_only():
    """Trusted code importing a domain's module as plain Python (the grader, tests) gets
    the libraries the manifest lists, one module per domain; nothing else appears."""
    import importlib

    from redleaf_lab.domains.netstack.udp import checksum

    netstack_inet = importlib.import_module("redleaf_lab.domains.netstack.inet")
    kvnet_inet = importlib.import_module("redleaf_lab.domains.kvnet.inet")
    assert checksum is netstack_inet.checksum and netstack_inet is not kvnet_inet
    with pytest.raises(ImportError):
        importlib.import_module("redleaf_lab.domains.maglev.inet")  # maglev lists none
