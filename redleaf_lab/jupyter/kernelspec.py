"""Install the "RedLeaf Lab" Jupyter kernelspec: ipykernel with `--ext=redleaf_lab`.

    python -m redleaf_lab.jupyter.kernelspec --sys-prefix     # what `make setup` runs
    python -m redleaf_lab.jupyter.kernelspec --user | --prefix DIR

`install()` runs ipykernel's installer (kernel name `redleaf-lab`), then
appends `--ext=redleaf_lab` to the generated kernel.json's argv (ipykernel has
no flag for it), so every notebook on this kernel starts with the extension
loaded and a kernel booted. Returns the kernelspec directory. It also installs the
offline "redleaf" Voila template next to it and makes it Voila's default
(`voila_template`), so the tour as a Voila dashboard loads nothing from a CDN.
No threads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

KERNEL_NAME = "redleaf-lab"
DISPLAY_NAME = "RedLeaf Lab"
EXTENSION_ARG = "--ext=redleaf_lab"


def install(user: bool = False, prefix: str | None = None) -> Path:
    from ipykernel.kernelspec import install as ipykernel_install

    path = Path(ipykernel_install(user=user, kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME,
                                  prefix=prefix))
    spec_file = path / "kernel.json"
    spec = json.loads(spec_file.read_text())
    if EXTENSION_ARG not in spec["argv"]:
        spec["argv"].append(EXTENSION_ARG)
    spec["argv"][0] = sys.executable
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")
    _install_voila_template(user, prefix)
    return path


def _install_voila_template(user: bool, prefix: str | None) -> None:
    from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir

    from . import voila_template

    if user:
        voila_template.install(jupyter_data_dir(), jupyter_config_dir())
    else:
        root = Path(prefix if prefix is not None else sys.prefix)
        voila_template.install(root / "share" / "jupyter", root / "etc" / "jupyter")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true",
                       help="install into sys.prefix (the virtualenv)")
    where.add_argument("--prefix", help="install under this prefix")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    path = install(user=args.user, prefix=prefix)
    print(f"installed kernelspec {KERNEL_NAME!r} ({DISPLAY_NAME}) in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
