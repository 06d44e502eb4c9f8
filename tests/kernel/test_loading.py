"""Loading domains: discovery, manifests, bad domains leave the kernel healthy."""

from __future__ import annotations

import pytest

from redleaf_lab import DomainLoadError, SafetyError
from redleaf_lab.kernel import loader


def test_discovery_finds_packaged_domains():
    found = loader.find_domains()
    assert {"kvstore", "checksum", "echo"} <= set(found)


def test_unknown_domain_name_is_a_clear_error(kernel):
    with pytest.raises(DomainLoadError, match="no domain named 'nope'"):
        kernel.load("nope")


@pytest.mark.parametrize(
    ("folder", "error", "fragment"),
    [
        ("broken_syntax", SafetyError, "[syntax]"),
        ("no_init", DomainLoadError, "defines no init()"),
        ("escape", SafetyError, "[import]"),
        ("bad_init", DomainLoadError, "init fails on purpose"),
    ],
)
def test_bad_domains_fail_cleanly_and_kernel_stays_healthy(kernel, domains, folder, error,
                                                           fragment):
    baseline = kernel.heap.stats().live_objects
    with pytest.raises(error) as info:
        kernel.load(domains / folder)
    assert fragment in str(info.value)
    if error is SafetyError:
        assert info.value.filename.endswith(f"{folder}.py") and info.value.line >= 1
    assert kernel.heap.stats().live_objects == baseline
    leaf = kernel.load(domains / "leaf")  # the kernel still works
    assert leaf.alive() == 1


def test_capabilities_are_checked_against_the_manifest(kernel, domains):
    with pytest.raises(DomainLoadError, match="missing next"):
        kernel.load(domains / "link")
    with pytest.raises(DomainLoadError, match="unexpected extra"):
        kernel.load(domains / "leaf", extra=1)


def test_same_name_cannot_run_twice(kernel, domains):
    kernel.load(domains / "leaf")
    with pytest.raises(DomainLoadError, match="already running"):
        kernel.load(domains / "leaf")


def test_image_is_compiled_once_and_restart_reuses_it(kernel, domains, monkeypatch):
    kernel.load(domains / "leaf")
    calls = []
    real = loader.safety.check_source
    monkeypatch.setattr(loader.safety, "check_source", lambda *a: calls.append(a) or real(*a))
    kernel.panic("leaf")
    proxy = kernel.restart("leaf")
    assert proxy.alive() == 1 and calls == []
    assert kernel.domain("leaf").incarnation == 2


def test_each_incarnation_gets_fresh_module_state(kernel, domains):
    spin = kernel.load(domains / "spinner")
    assert spin.hold(__import__("redleaf_lab").RRef.new(__import__("redleaf_lab").Block)) == 1
    kernel.panic("spinner")
    spin = kernel.restart("spinner")
    assert spin.hold(__import__("redleaf_lab").RRef.new(__import__("redleaf_lab").Block)) == 1


def test_domain_modules_are_registered_only_while_alive(kernel, domains):
    import sys

    leaf = kernel.load(domains / "leaf")
    assert leaf.call(False, False) == 1  # uses a dataclass from a sibling module
    prefix = f"redleaf_domain.leaf.d{kernel.domain('leaf').id}."
    assert any(n.startswith(prefix) for n in sys.modules)
    kernel.panic("leaf")
    assert not any(n.startswith(prefix) for n in sys.modules)


def test_a_name_is_never_looked_up_in_the_working_directory(kernel, tmp_path, monkeypatch):
    """A folder called `membdev` in the working directory must not replace the driver."""
    impostor = tmp_path / "membdev"
    impostor.mkdir()
    (impostor / "domain.toml").write_text(
        'name = "membdev"\nentry = "membdev.py"\n'
        'provides = "redleaf_lab.interfaces.bench:Echo"\n')
    (impostor / "membdev.py").write_text("def init(ctx):\n    raise ValueError('impostor')\n")
    monkeypatch.chdir(tmp_path)
    from redleaf_lab.devices import MemStore

    bdev = kernel.load("membdev", store=MemStore(8))
    assert bdev.num_blocks() == 8  # the real driver
    start = kernel.events.history({"start"}, "membdev")[-1]
    assert start.data["folder"].endswith("drivers/membdev")
    # the impostor loads only when given as a path, and the event names its folder
    with pytest.raises(DomainLoadError, match="impostor"):
        kernel.load("./membdev", name="other")
    failed = kernel.events.history({"load-failed"}, "other")[-1]
    assert failed.data["folder"] == str(impostor.resolve())
