"""The IPython extension: `%load_ext redleaf_lab` boots the microkernel in the notebook.

`load_ipython_extension(ip)` registers the `%redleaf` magic (see `magics`) and
boots a `LabSession` (kernel, checksum, kvstore, membdev behind a shadow),
publishing `lab` and `kernel` in the user namespace. `unload_ipython_extension`
stops dashboards, traffic and domains. The "RedLeaf Lab" kernelspec
(`python -m redleaf_lab.jupyter.kernelspec`) loads the extension at start-up.

Threads: load/unload run on the kernel's main thread.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ip: Any) -> None:
    from . import state
    from .magics import RedLeafMagics

    ip.register_magics(RedLeafMagics)
    state.reboot(ip)


def unload_ipython_extension(ip: Any) -> None:
    from . import state

    state.close()


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
