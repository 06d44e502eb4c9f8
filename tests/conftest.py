"""Shared fixtures: a fresh kernel per test, and the test domains' folder.

The proxy, call-failure, unwinding, fault, shadow, rescue and crash-campaign tests run on
both proxy implementations (issue 14): `kernel` is parametrised over "gate" (the compiled call gate)
and "python" (the generated proxies) in the modules of `BOTH_PROXIES`; elsewhere it boots
the default. `--proxies=gate|python` runs every module on one implementation only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import redleaf_lab
from redleaf_lab.idl import gates
from redleaf_lab.kernel.kernel import Kernel

TEST_DOMAINS = Path(__file__).parent / "support" / "domains"


BOTH_PROXIES = {
    "idl/test_proxy.py", "idl/test_call_failures.py", "idl/test_shadow.py",
    "idl/test_gate.py", "idl/test_rescue.py", "idl/test_shadow_concurrency.py",
    "kernel/test_faults_and_lifecycle.py", "kernel/test_interrupts.py",
    "kernel/test_context_lock.py", "kernel/test_crash_stress.py",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--proxies", default=None, choices=("gate", "python"),
                     help="run every test on one proxy implementation only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "proxies" not in metafunc.fixturenames:
        return
    only = metafunc.config.getoption("--proxies")
    if only:
        modes = [only]
    elif "/".join(Path(metafunc.definition.path).parts[-2:]) in BOTH_PROXIES:
        modes = ["gate", "python"] if gates.available() else ["python"]
    else:
        modes = [None]
    metafunc.parametrize("proxies", modes, ids=[m or "default" for m in modes])


@pytest.fixture
def proxies(request: pytest.FixtureRequest) -> str | None:
    mode: str | None = request.param
    return mode


@pytest.fixture
def kernel(proxies: str | None) -> Iterator[Kernel]:
    k = redleaf_lab.boot(heap_bytes=64 << 20, max_objects=1 << 16, proxies=proxies)
    try:
        yield k
    finally:
        if not k._closed:
            k.shutdown()


@pytest.fixture
def domains() -> Path:
    return TEST_DOMAINS
