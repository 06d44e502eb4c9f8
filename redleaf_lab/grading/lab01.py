"""Lab 1's graded exercises: write a domain that implements an interface, and write one
that misuses an RRef so that the kernel refuses it.

Interface:
* `check_checksum_domain(init, hidden=False)`: the cell defining `init` is the source of a
  new domain providing `Checksum` (CRC-32 of a BORROWED block). It is loaded through the
  loader (safe-subset check), given to `kvstore` as its checksum capability, and must
  give zlib's CRC-32 across the proxy for every block kvstore stores. Hidden: the caller
  still owns every block it lent, and the domain keeps no heap object between calls.
* `check_misuse_domain(init, hidden=False)`: the cell defining `init` is a domain
  providing `Echo`; its `echo` must hand the block back but keep the handle and read it on
  the next call. The kernel must refuse that second access (the handle moved to the
  caller: `NotOwnerError`; a handle whose object moved on: `UseAfterMoveError`): the
  call fails with RpcError, the domain is crashed and its heap reclaimed, and the block the
  caller got back is untouched. Hidden: no object leaks and the caller's block is intact.
The answer is a function defined in a notebook cell (the cell is the domain's source), or
a `pathlib.Path` to the student's own domain folder (`redleaf-lab grade 01 FOLDER`), which
is copied, renamed, and loaded through the loader like any domain.
Ownership: each check boots its own kernel (checks.fresh_kernel).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotOwnerError, RpcError, UseAfterMoveError
from ..heap import Block, RRef
from ..kernel import loader
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import cell_source, domain_from_source, student_domain

CHECKSUM = "redleaf_lab.interfaces.checksum:Checksum"
ECHO = "redleaf_lab.interfaces.bench:Echo"


Answer = Callable[..., Any] | str | Path


def _source(init: Callable[..., Any] | str) -> str:
    return init if isinstance(init, str) else cell_source(init)


def _domain(init: Answer, name: str, provides: str, folder: Path) -> Path:
    """The student's domain as a folder named `name`: a notebook cell's source (a function
    defined in it, or the text) written as a one-file domain, or a copy of the student's
    own domain folder (`redleaf-lab grade 01 FOLDER`) renamed so the checks find it."""
    if not isinstance(init, Path):
        return domain_from_source(name, provides, _source(init), folder)
    if not (init / loader.MANIFEST).is_file():
        raise ExerciseFailed(f"{init} is not a domain folder (no {loader.MANIFEST})")
    copy = student_domain(init, {}, folder, name=name)
    return copy


def _load(kernel: Any, folder: Any, what: str, answer: Answer | None = None,
          **caps: Any) -> Any:
    try:
        return kernel.load(folder, **caps)
    except Exception as err:  # the loader's refusal is the student's to read
        text = panic_text(err)
        if isinstance(answer, Path):  # name the student's folder, not the grader's copy
            text = text.replace(str(folder), str(answer))
        raise ExerciseFailed(f"your {what} domain did not load: {text}") from None


def check_checksum_domain(init: Answer, hidden: bool = False) -> None:
    """Grade a Checksum domain through kvstore; raises ExerciseFailed."""
    rng = np.random.default_rng(11)
    contents = [np.zeros(4096, np.uint8), np.full(4096, 255, np.uint8)]
    contents += [rng.integers(0, 256, 4096, np.uint8) for _ in range(14)]
    with workdir() as folder, fresh_kernel() as kernel:
        path = _domain(init, "student_checksum", CHECKSUM, folder)
        checksum = _load(kernel, path, "checksum", init)
        store = kernel.load("kvstore", checksum=checksum)
        for key, data in enumerate(contents):
            block = RRef.new(Block)
            block.write(data.tobytes())
            try:
                crc = store.put(key, block)
            except RpcError as err:
                raise ExerciseFailed(f"kvstore.put({key}) failed: your checksum domain "
                                     f"panicked: {panic_text(err)}") from None
            want = zlib.crc32(data.tobytes())
            crashes = kernel.events.history({"crash"}, "student_checksum")
            if crashes:  # kvstore computes the CRC itself when its checksum service fails
                error = crashes[-1].data.get("error", "a panic")
                raise ExerciseFailed(f"kvstore.put({key}): your checksum domain crashed ({error}); "
                                     "kvstore fell back on computing the CRC itself")
            if crc != want:
                raise ExerciseFailed(f"block {key}: crc32 across the proxy was {crc:#010x}, "
                                     f"zlib.crc32 of the block is {want:#010x}")
        if kernel.calls("student_checksum") < len(contents):
            raise ExerciseFailed(f"kvstore made {kernel.calls('student_checksum')} calls to your "
                                 f"checksum domain for {len(contents)} puts")
        if hidden:
            _hidden_checksum(kernel, checksum, contents)
        kernel.stop("kvstore")
        kernel.stop("student_checksum")


def _hidden_checksum(kernel: Any, checksum: Any, contents: list[np.ndarray]) -> None:
    mine = [RRef.new(Block) for _ in contents]
    for block, data in zip(mine, contents, strict=True):
        block.write(data.tobytes())
        checksum.crc32(block)  # lent for the call
        if block.owner() != 1:
            raise ExerciseFailed("after crc32() the caller no longer owns the block it lent")
        if not np.array_equal(np.frombuffer(block.tobytes(), np.uint8), data):
            raise ExerciseFailed("crc32() changed the block it borrowed")
    objects, _bytes = kernel.heap.domain_stats(kernel.domain("student_checksum").id)
    if objects:
        raise ExerciseFailed(f"after {2 * len(contents)} calls your checksum domain owns "
                             f"{objects} heap objects: a checksum keeps nothing per call")
    for block in mine:
        block.drop()


def check_misuse_domain(init: Answer, hidden: bool = False) -> None:
    """Grade an Echo domain that uses a block after moving it out; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel() as kernel:
        path = _domain(init, "student_echo", ECHO, folder)
        echo = _load(kernel, path, "echo", init)
        first = RRef.new(Block, 7)
        try:
            back = echo.echo(first)
        except RpcError as err:
            raise ExerciseFailed(f"the first echo() must succeed (hand the block back), but "
                                 f"it failed: {panic_text(err)}") from None
        if back.owner() != 1 or bytes(back.tobytes()[:1]) != b"\x07":
            raise ExerciseFailed("the first echo() did not hand the caller's block back intact")
        try:
            second = echo.echo(RRef.new(Block, 9))
        except RpcError as err:
            original = err.original
            if not isinstance(original, UseAfterMoveError | NotOwnerError):
                raise ExerciseFailed(f"the second echo() failed, but with {panic_text(err)}, "
                                     "not the kernel's ownership check (UseAfterMoveError or "
                                     "NotOwnerError): read the block "
                                     "your domain handed back on the first call") from None
        else:
            second.drop()
            raise ExerciseFailed("the second echo() returned normally: your domain never used "
                                 "the block it had moved back to the caller")
        state = kernel.domain("student_echo").state
        if state != "crashed":
            raise ExerciseFailed(f"after the refused access the domain is {state}, not crashed")
        if hidden:
            reclaimed = kernel.events.history({"reclaim"}, "student_echo")
            if not reclaimed:
                raise ExerciseFailed("the crashed domain's heap was not reclaimed")
            if back.owner() != 1 or bytes(back.tobytes()[:1]) != b"\x07":
                raise ExerciseFailed("the block the caller got back was changed or taken by "
                                     "the crashed domain")
        back.drop()
