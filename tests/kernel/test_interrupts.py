"""Ctrl-C inside a domain call belongs to the user (issue 12.7).

`_thread.interrupt_main()` delivers a simulated SIGINT to the main thread, as Ctrl-C or
Jupyter's "interrupt kernel" would, while the main thread is inside a domain (a nap in
bounded slices). The call must stop with KeyboardInterrupt, quickly, with no crash
counted and no shadow restart; a domain that raises KeyboardInterrupt by itself is
still a panic.
"""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from redleaf_lab import RpcError
from redleaf_lab.idl.shadow import make_shadow


def _interrupt_soon(delay: float = 0.1) -> threading.Timer:
    timer = threading.Timer(delay, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_in_a_proxied_call_reaches_the_user_and_is_no_crash(kernel, domains):
    spin = kernel.load(domains / "spinner")
    timer = _interrupt_soon()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        spin.nap(5.0)
    timer.join()
    assert time.monotonic() - start < 2.0
    assert kernel.domain("spinner").state == "running" and kernel.crashes("spinner") == 0
    assert spin.ping(3) == 3  # the domain goes on serving


def test_ctrl_c_through_a_shadow_is_not_retried(kernel, domains):
    kernel.load(domains / "spinner")
    shadow = make_shadow(kernel, "spinner")
    timer = _interrupt_soon()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        shadow.nap(5.0)
    timer.join()
    assert time.monotonic() - start < 2.0
    assert kernel.crashes("spinner") == 0 and kernel.restarts("spinner") == 0
    assert shadow.ping(4) == 4


def test_a_domain_raising_keyboardinterrupt_itself_panics(kernel, tmp_path):
    folder = tmp_path / "liar"
    folder.mkdir()
    (folder / "domain.toml").write_text(
        'name = "liar"\nentry = "liar.py"\nprovides = "redleaf_lab.interfaces.bench:Echo"\n')
    (folder / "liar.py").write_text(
        "class Liar:\n"
        "    def ping(self, x):\n"
        "        raise KeyboardInterrupt\n"
        "    def echo(self, d):\n"
        "        return d\n"
        "    def peek(self, d):\n"
        "        return 0\n\n\n"
        "def init(ctx):\n"
        "    return Liar()\n")
    liar = kernel.load(folder)
    with pytest.raises(RpcError, match="panicked"):
        liar.ping(1)
    assert kernel.crashes("liar") == 1
