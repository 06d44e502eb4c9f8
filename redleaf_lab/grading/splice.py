"""Splice a student's functions into a copy of a domain: the student's code runs INSIDE the
domain, through the loader's safe-subset check, so grading never weakens isolation.

Interface:
    student_domain(base, {"ring.py": {"RxRing.arm_from": fn_or_source}}, workdir) -> Path
copies the domain folder `base` (a name the loader resolves, or a path) to a fresh folder
under `workdir`, replaces each named function or method (by its qualified name in that
file) with the student's source, and returns the new folder, ready for `kernel.load(path)`.
A method the class does not define itself (only a base class does) is added to the class
body: an override. `domain_from_source(name, provides, source, workdir, needs)` writes a
whole new one-file domain (lab exercises that write a domain).

The student's source comes from `source_of(obj)`: a function defined in a notebook cell
(IPython keeps cells in linecache, so `inspect.getsource` works), or a string. Its
indentation is normalized to the place it goes. Ownership: the copies are the caller's
(they live under `workdir`, usually a TemporaryDirectory); nothing under drivers/ or
domains/ is ever written.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import shutil
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import DomainLoadError
from ..kernel import loader
from .checks import ExerciseFailed

Source = str | Callable[..., Any]


class SpliceError(ExerciseFailed):
    """The student's code cannot be put into the domain (not a function, wrong name)."""


def source_of(obj: Source) -> str:
    """Dedented source of a function/class, or the string itself."""
    if isinstance(obj, str):
        return textwrap.dedent(obj)
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as exc:
        raise SpliceError(f"cannot read the source of {obj!r}: {exc}; define it in a "
                          "notebook cell or a .py file") from None


def cell_source(obj: Callable[..., Any]) -> str:
    """The whole source file (notebook cell) that defines `obj`."""
    try:
        filename = inspect.getsourcefile(obj)
    except TypeError as exc:
        raise SpliceError(f"{obj!r} has no source file: {exc}") from None
    lines = linecache.getlines(filename) if filename else []
    if not lines:
        raise SpliceError(f"the source of {obj!r} is not available (define it in a cell)")
    return "".join(lines)


def _find(tree: ast.Module, qualname: str) -> tuple[ast.ClassDef | None, ast.AST | None]:
    """(the enclosing class or None, the def node or None) for `Class.method` / `func`."""
    parts = qualname.split(".")
    if len(parts) == 1:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == parts[0]:
                return None, node
        return None, None
    if len(parts) != 2:
        raise SpliceError(f"{qualname!r}: give 'function' or 'Class.method'")
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == parts[0]:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == parts[1]:
                    return node, item
            return node, None
    raise SpliceError(f"no class {parts[0]!r} in the domain file")


def _checked_def(source: str, name: str) -> str:
    """`source` must be exactly one function definition; it is renamed `name`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SpliceError(f"your {name}() does not parse: line {exc.lineno}: {exc.msg}") from None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(tree.body) != 1 or len(defs) != 1:
        raise SpliceError(f"expected exactly one `def {name}(...)`, got something else")
    node = defs[0]
    if node.name == name:
        return source
    lines = source.splitlines(keepends=True)
    line = lines[node.lineno - 1]
    lines[node.lineno - 1] = line.replace(f"def {node.name}", f"def {name}", 1)
    return "".join(lines)


def splice_source(text: str, qualname: str, student: str) -> str:
    """`text` (a domain file) with `qualname` replaced by (or, in a class, added as) the
    student's single function `student`."""
    name = qualname.split(".")[-1]
    body = _checked_def(textwrap.dedent(student), name).rstrip("\n") + "\n"
    tree = ast.parse(text)
    cls, node = _find(tree, qualname)
    lines = text.splitlines(keepends=True)
    if node is None and cls is None:
        raise SpliceError(f"the domain file defines no {qualname!r}")
    if node is None:  # an override: append to the class body
        assert cls is not None
        indent = " " * cls.body[0].col_offset
        end = cls.end_lineno or cls.lineno
        new = "\n" + textwrap.indent(body, indent)
        return "".join(lines[:end]) + new + "".join(lines[end:])
    first = min([node.lineno, *[d.lineno for d in node.decorator_list]])  # type: ignore[attr-defined]
    indent = " " * node.col_offset  # type: ignore[attr-defined]
    end = node.end_lineno or node.lineno  # type: ignore[attr-defined]
    return "".join(lines[: first - 1]) + textwrap.indent(body, indent) + "".join(lines[end:])


def student_domain(base: str | Path, replace: Mapping[str, Mapping[str, Source]],
                   workdir: str | Path, name: str | None = None,
                   provides: str | None = None) -> Path:
    """Copy domain `base` to workdir/<name>, splice the student's functions, return it.
    `provides` overrides the manifest's interface (a graded sub-interface)."""
    folder = loader.resolve(base) if isinstance(base, str) else Path(base)
    target = Path(workdir) / (name or folder.name)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    for filename, functions in replace.items():
        path = target / filename
        if not path.exists():
            raise SpliceError(f"domain {folder.name} has no file {filename}")
        text = path.read_text()
        for qualname, fn in functions.items():
            text = splice_source(text, qualname, source_of(fn))
        path.write_text(text)
    if provides is not None or name is not None:
        manifest = target / loader.MANIFEST
        lines = []
        for line in manifest.read_text().splitlines():
            key = line.split("=", 1)[0].strip()
            if provides is not None and key == "provides":
                line = f'provides = "{provides}"'
            elif name is not None and key == "name":
                line = f'name = "{name}"'
            lines.append(line)
        manifest.write_text("\n".join(lines) + "\n")
    return target


def domain_from_source(name: str, provides: str, source: str, workdir: str | Path,
                       needs: Mapping[str, str] | None = None) -> Path:
    """A new one-file domain `name` (entry `<name>.py`) from the student's source."""
    if not name.isidentifier():
        raise DomainLoadError(f"{name!r} is not a valid domain name")
    target = Path(workdir) / name
    target.mkdir(parents=True, exist_ok=True)
    manifest = [f'name = "{name}"', f'entry = "{name}.py"', f'provides = "{provides}"']
    if needs:
        manifest.append("[needs]")
        manifest.extend(f'{cap} = "{ref}"' for cap, ref in needs.items())
    (target / loader.MANIFEST).write_text("\n".join(manifest) + "\n")
    (target / f"{name}.py").write_text(source)
    return target


def rewrite_file(folder: str | Path, filename: str, old: str, new: str) -> None:
    """Replace the single occurrence of `old` in folder/filename with `new`: the graded
    copy's plumbing (a smaller cache, a student's table in place of a library one). It
    fails loudly when the domain's text changed, so a grader never runs on a stale hook."""
    path = Path(folder) / filename
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"grading hook: {filename} holds {text.count(old)} copies of "
                           f"{old!r}, expected exactly one (the domain changed?)")
    path.write_text(text.replace(old, new))


def add_file(folder: str | Path, filename: str, text: str) -> Path:
    """A new file in the graded copy (a module the student's code lives in)."""
    path = Path(folder) / filename
    if path.exists():
        raise RuntimeError(f"grading hook: {filename} exists already in {Path(folder).name}")
    path.write_text(text)
    return path
