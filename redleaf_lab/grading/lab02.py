"""Lab 2's graded exercises: recovery rules, what a shadow keeps before a call and how it
rebuilds the arguments a crash took, graded by panicking the driver 100 times.

Interface:
* `check_batch_rule(keep, rebuild, panics=20)`: the student's rule for
  `submit_and_poll(submit, collect, write)` (both deques MOVE into the driver). The
  membdev driver is loaded under `GradedBDev` (grading/interfaces.py), the rule registered
  for it, the driver put behind a shadow and armed to panic on every 2nd call (inside the
  domain, after the deques moved in). Each call writes 8 stamped blocks; every write the
  shadow acknowledged must be on the store (a lost request is named), nothing may leak.
* `check_read_rule(keep, rebuild, panics=20)`: the rule for `read(block, data)` (the
  output buffer MOVES in). Every read must return the block's data, and `keep` must copy
  nothing (an output buffer's old contents are worthless: RedLeaf retries with a fresh one).
The hidden tests run the same checks with 100 panics and add reads to the batch check.
Ownership: each check boots its own kernel; the rule is registered for GradedBDev only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..devices.memstore import MemStore
from ..heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque
from ..idl.recovery import MethodRecovery, register_recovery
from ..idl.shadow import ShadowPolicy, make_shadow
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .interfaces import GradedBDev
from .lab03 import stamp
from .splice import student_domain

BATCH = 8
BLOCKS = 1024
GRADED = "redleaf_lab.grading.interfaces:GradedBDev"


def _shadowed(kernel: Any, folder: Any, rule: MethodRecovery) -> tuple[Any, MemStore]:
    register_recovery(GradedBDev, rule)
    store = MemStore(BLOCKS)
    driver = student_domain("membdev", {}, folder, provides=GRADED)
    kernel.load(driver, store=store)
    shadow = make_shadow(kernel, "membdev", ShadowPolicy(max_restarts=100_000, max_attempts=3))
    kernel.faults.every_n("membdev", 2)
    return shadow, store


def _requests(blocks: list[int], version: int | None) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, 32)
    for block in blocks:
        req = RRef.new(BlkReq)
        view = req.array()
        view["block"] = block
        if version is not None:
            view["data"] = stamp(block, version)
        del view
        dq.push_back(req)
    return dq


def check_batch_rule(keep: Callable[..., Any] | None, rebuild: Callable[..., Any],
                     panics: int = 20, reads: bool = False) -> None:
    """Grade a recovery rule for submit_and_poll; raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel(heap_mb=96) as kernel:
        rule = MethodRecovery("submit_and_poll", keep, rebuild)
        shadow, store = _shadowed(kernel, folder, rule)
        acked: dict[int, int] = {}
        lost: list[str] = []
        for call in range(panics):
            blocks = [(call * BATCH + i) * 7 % BLOCKS for i in range(BATCH)]
            try:
                taken, submit, done = shadow.submit_and_poll(_requests(blocks, call),
                                                             RRefDeque.new(BlkReq, 32), True)
            except Exception as err:  # RpcError, or the student's rule failing in the caller
                lost.append(f"call {call} (blocks {blocks[0]}..): {panic_text(err)}")
                continue
            submit.drop()
            done.drop()
            if taken != BATCH:
                lost.append(f"call {call}: the retry took {taken} of {BATCH} requests")
            acked.update({b: call for b in blocks[:taken]})
        if reads and not lost:
            lost += _read_back(shadow, acked)
        crashes = kernel.crashes("membdev")
        kernel.faults.clear("membdev")
        kernel.stop("membdev")
        if lost:
            raise ExerciseFailed(f"{len(lost)} of {panics} calls lost their requests across "
                                 f"{crashes} panics; first: {lost[0]}")
        data = np.zeros(BLOCK_SIZE, np.uint8)
        bad = []
        for block, version in acked.items():
            store.read_into(block, data)
            if not np.array_equal(data, stamp(block, version)):
                bad.append(block)
        if bad:
            raise ExerciseFailed(f"{len(bad)} acknowledged writes are not on the store after "
                                 f"{crashes} panics (first: block {bad[0]}): the retry did not "
                                 "carry the original requests' data")
        if crashes < panics // 2:
            raise ExerciseFailed(f"internal: only {crashes} panics happened")  # pragma: no cover


def _read_back(shadow: Any, acked: dict[int, int]) -> list[str]:
    problems = []
    blocks = sorted(acked)
    for start in range(0, len(blocks), BATCH):
        chunk = blocks[start : start + BATCH]
        try:
            _taken, submit, done = shadow.submit_and_poll(_requests(chunk, None),
                                                         RRefDeque.new(BlkReq, 32), False)
        except Exception as err:  # as above
            problems.append(f"reading blocks {chunk[0]}..: {panic_text(err)}")
            continue
        for req in done.pop_many():
            view = req.readonly()
            block = int(view["block"])
            if not np.array_equal(view["data"], stamp(block, acked[block])):
                problems.append(f"a read of block {block} after a panic returned wrong data")
            del view
            req.drop()
        submit.drop()
        done.drop()
    return problems


def check_read_rule(keep: Callable[..., Any] | None, rebuild: Callable[..., Any],
                    panics: int = 20) -> None:
    """Grade a recovery rule for read(block, data); raises ExerciseFailed."""
    with workdir() as folder, fresh_kernel() as kernel:
        kept: list[Any] = []

        def keeping(args: tuple[Any, ...]) -> Any:
            value = None if keep is None else keep(args)
            kept.append(value)
            return value

        shadow, store = _shadowed(kernel, folder, MethodRecovery("read", keeping, rebuild))
        kernel.faults.clear("membdev")
        for block in range(panics):
            store.write_from(block, stamp(block, 5))
        kernel.faults.every_n("membdev", 2)
        problems = []
        for block in range(panics):
            try:
                got = shadow.read(block, RRef.new(Block))
            except Exception as err:  # as above
                problems.append(f"read({block}): {panic_text(err)}")
                continue
            if not np.array_equal(np.frombuffer(got.tobytes(), np.uint8), stamp(block, 5)):
                problems.append(f"read({block}) returned data that is not the block's")
            got.drop()
        crashes = kernel.crashes("membdev")
        kernel.faults.clear("membdev")
        kernel.stop("membdev")
        if problems:
            raise ExerciseFailed(f"{len(problems)} of {panics} reads failed across {crashes} "
                                 f"panics; first: {problems[0]}")
        copied = [k for k in kept if k is not None]
        if copied:
            raise ExerciseFailed(f"keep() kept something ({type(copied[0]).__name__}) on "
                                 f"{len(copied)} of {len(kept)} calls: a read's buffer is an "
                                 "output, its old contents are worthless; keep nothing and "
                                 "give the retry a fresh buffer")
