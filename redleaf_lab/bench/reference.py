"""The reference Python proxy beside the compiled call gate, for benchmarks (issue 14).

`reference_targets(kernel, name)` returns `(proxy, shadow)` of the domain `name`'s running
incarnation on the generated Python proxy (idl/proxy.py), whatever the kernel's default
is, so that one benchmark run reports every path on both implementations. The shadow is
an ordinary `make_shadow` whose crossing is that Python proxy; benchmarks do not crash
their domains, and after a restart the shadow would cross the kernel's default proxy again.

Returns (None, None) when the kernel already runs on the Python proxies (no second
implementation to compare with).
"""

from __future__ import annotations

from typing import Any

from ..idl.proxy import make_proxy
from ..idl.shadow import ShadowPolicy, make_shadow


def reference_targets(kernel: Any, name: str, policy: ShadowPolicy | None = None
                      ) -> tuple[Any, Any]:
    if kernel.proxies == "python":
        return None, None
    domain = kernel.domain(name)
    proxy = make_proxy(domain.interface, domain, domain.impl, proxies="python")
    shadow = make_shadow(kernel, name, policy)
    object.__setattr__(shadow, "_proxy", proxy)
    return proxy, shadow
