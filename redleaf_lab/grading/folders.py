"""`redleaf-lab grade LAB FOLDER`: grade a student's domain folder (a domain.toml and its
.py files, as under domains/) instead of a notebook, for the exercises whose answer is a
whole domain.

Interface: `folder_cells(lab_stem, folder) -> (cells, prefix)`: the folder's manifest says
which interface it provides; `DOMAIN_EXERCISES` maps (lab, interface) to the exercise
(its grade_id prefix) and the name its test cells pass to the checker. The grader then
runs that exercise's visible and hidden test cells with a solution cell that binds the
name to the folder's path (a `pathlib.Path`); the checker copies the folder and loads the
copy through the kernel's loader (the safe-subset check), exactly as it loads a domain
written in a notebook cell. A folder that fails the check loses those tests with the
loader's message; the grader goes on.
Reading only; the folder is never written (the checkers work on a copy).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..kernel import loader

# lab notebook stem -> provided interface ("module:Class") -> (grade_id prefix, test name)
DOMAIN_EXERCISES: dict[str, dict[str, tuple[str, str]]] = {
    "01-domains-and-proxies": {
        "redleaf_lab.interfaces.checksum:Checksum": ("lab01-checksum", "checksum_domain"),
        "redleaf_lab.interfaces.bench:Echo": ("lab01-misuse", "misuse_domain"),
    },
}


def folder_cells(lab_stem: str, folder: Path) -> tuple[dict[str, str], str]:
    """The solution cell standing for `folder`, and the grade_id prefix of its tests."""
    exercises = DOMAIN_EXERCISES.get(lab_stem)
    if not exercises:
        graded = ", ".join(sorted(DOMAIN_EXERCISES)) or "none"
        raise ValueError(f"{lab_stem} has no exercise whose answer is a domain folder "
                         f"(labs that have one: {graded}); grade a notebook instead")
    manifest = folder / loader.MANIFEST
    if not manifest.is_file():
        raise ValueError(f"{folder} is not a domain folder: no {loader.MANIFEST}")
    try:
        provides = str(tomllib.loads(manifest.read_text()).get("provides", ""))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{manifest}: not valid TOML: {exc}") from None
    if provides not in exercises:
        wanted = "; ".join(f"{iface} ({prefix})" for iface, (prefix, _n) in exercises.items())
        raise ValueError(f"{manifest} provides {provides or 'nothing'!r}; the domain "
                         f"exercises of {lab_stem} provide: {wanted}")
    prefix, name = exercises[provides]
    source = f"import pathlib\n\n{name} = pathlib.Path({str(folder.resolve())!r})\n"
    return {f"{prefix}-folder": source}, prefix
