"""Forgetting an incarnation's modules while other threads import (kernel/loader.py).

`loader.forget` runs in the crash and stop paths. It walked `sys.modules` directly, so a
domain loading in another thread (each module of an incarnation is registered there)
could change the dict mid-walk: "dictionary changed size during iteration", raised in
the middle of a crash (found by the Rv6 front: a program ending while another was
killed). The walk now copies the keys in one C call.
"""

from __future__ import annotations

import sys
import threading
import types

from redleaf_lab.interfaces.bench import Echo
from redleaf_lab.kernel import loader


def test_forget_while_another_thread_registers_modules() -> None:
    image = loader.image_from_sources("forgettable", {"m": "X = 1\n"}, "m", Echo, {},
                                      origin="tests/forgettable")
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:  # what another domain's imports do to sys.modules
        i = 0
        while not stop.is_set():
            name = f"redleaf_domain.churn.d{i % 64}.m"
            sys.modules.update({name: types.ModuleType(name)})  # a call: a switch point after
            for _ in range(20):  # a module body running: the dict is bigger meanwhile
                pass
            sys.modules.pop(name, None)
            i += 1

    thread = threading.Thread(target=churn)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread.start()
    try:
        for incarnation in range(3000):
            prefix = loader.module_prefix(image, incarnation)
            sys.modules[prefix + ".m"] = types.ModuleType(prefix + ".m")
            try:
                loader.forget(image, incarnation)
            except RuntimeError as exc:
                errors.append(exc)
                break
            assert prefix + ".m" not in sys.modules
    finally:
        stop.set()
        thread.join(10)
        sys.setswitchinterval(switch)
    assert errors == []
