"""Lab 3's graded exercises: the NVMe submission step (an SQ entry and the tail doorbell)
and the completion step (the phase tag, the head, the head doorbell), each spliced into a
copy of drivers/nvme and driven through the kernel against the C NVMe controller model.

Interface: `check_submit(submit_run, wraps=...)`, `check_complete(reap_one, wraps=...)`.
The student writes `QueuePair.submit_run(self, opcode, nsid, iovas, slba)` or
`QueuePair.reap_one(self, timeout=5.0)`; the other method stays the driver's own. The
model's queues are made small (MQES = 15: 16 entries), so a few dozen commands wrap the
queues several times. Every written block carries a stamp (block, version); the checker
reads each back through the driver AND from the media, so a wrong LBA, a wrong length, a
command never submitted or a completion taken too early is named in the failure.
Ownership: each check boots its own kernel and model and closes both (checks.fresh_kernel).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..devices.sim_nvme import SimNvme
from ..errors import RpcError
from ..heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque
from .checks import ExerciseFailed, fresh_kernel, panic_text, workdir
from .splice import student_domain

QUEUE_ENTRIES = 16  # MQES + 1: the I/O queue pairs the driver creates have 16 slots
BLOCKS = 512


def stamp(block: int, version: int) -> np.ndarray:
    """4 KiB of data unique to (block, version), its CRC-32 in the last 4 bytes."""
    data = np.random.default_rng(block * 7919 + version).integers(0, 256, BLOCK_SIZE, np.uint8)
    data[-4:] = np.array([zlib.crc32(data[:-4].tobytes())], "<u4").view(np.uint8)
    return data


def _where(command: int) -> str:
    slot = command % QUEUE_ENTRIES
    lap = command // QUEUE_ENTRIES
    wrap = f", just after wrap-around number {lap}" if slot == 0 and lap else ""
    return f"I/O command #{command} (SQ/CQ slot {slot} of {QUEUE_ENTRIES}{wrap})"


def _hint(err: BaseException, command: int) -> str:
    text = panic_text(err)
    if "no completion" in text:
        if command % QUEUE_ENTRIES == 0 and command:
            return (f"{text}. The queue had just wrapped: after the last slot the tail and head go "
                    "back to 0 and the expected phase tag inverts (NVMe 1.4 §4.1, §4.6)")
        if command % QUEUE_ENTRIES == QUEUE_ENTRIES - 1:
            return (f"{text}. This is the last slot of the queue: either the SQ tail did not wrap "
                    "to 0 (a tail doorbell value >= the queue size is invalid, §3.1.24), or the "
                    "CQ head doorbell was never written, so the controller sees the CQ full (§4.6)")
        return (f"{text}. Was the command written to the SQ slot at the tail and the tail "
                "doorbell rung, and did the driver take the previous completion (head doorbell)?")
    if "status 0x" in text:
        return (f"{text}. The controller refused the command: check CDW0 (opcode, CID), NSID, "
                "PRP1/PRP2 and CDW12's NLB, which is 0-based (§4.2, §6.15)")
    if "IndexError" in text or "out of bounds" in text:
        return f"{text}. A queue index ran past the last slot: wrap it to 0 (§4.1)"
    return text


def _run(driver_folder: Any, commands: int, runs: bool) -> None:
    """Write then read back `commands` single blocks (plus merged runs), verifying each."""
    with fresh_kernel(heap_mb=96) as kernel:
        dev = SimNvme(kernel.heap, blocks=BLOCKS, mqes=QUEUE_ENTRIES - 1, max_ioq=1)
        try:
            nvme = kernel.load(driver_folder, device=dev)
            _exercise(kernel, dev, nvme, commands, runs)
        finally:
            if kernel.domain("nvme").state == "running":
                kernel.stop("nvme")
            dev.close()


def _exercise(kernel: Any, dev: SimNvme, nvme: Any, commands: int, runs: bool) -> None:
    media = dev.media().reshape(-1, BLOCK_SIZE)
    written: dict[int, int] = {}
    command = 0
    rng = np.random.default_rng(commands)
    blocks = rng.choice(np.arange(4, BLOCKS - 4, 3), size=commands // 2, replace=False)
    for version, block in enumerate(blocks.tolist(), start=1):
        buf = RRef.new(Block)
        buf.write(stamp(block, version).tobytes())
        try:
            nvme.write(block, buf)
        except RpcError as err:
            raise ExerciseFailed(f"write of block {block}, {_where(command)}: the driver "
                                 f"panicked: {_hint(err, command)}") from None
        buf.drop()
        command += 1
        if not np.array_equal(media[block], stamp(block, version)):
            raise ExerciseFailed(f"write of block {block} ({_where(command - 1)}) returned, but "
                                 "the block on the media does not hold the data: check PRP1 "
                                 "(the buffer's IOVA), SLBA (CDW10-11) and the opcode (CDW0)")
        for neighbour in (block - 1, block + 1):
            if neighbour not in written and media[neighbour].any():
                raise ExerciseFailed(f"writing block {block} also wrote block {neighbour}: NLB "
                                     "in CDW12 is 0-based (number of blocks - 1), §6.15")
        written[block] = version
    for block, version in written.items():
        try:
            got = nvme.read(block, RRef.new(Block))
        except RpcError as err:
            raise ExerciseFailed(f"read of block {block}, {_where(command)}: the driver "
                                 f"panicked: {_hint(err, command)}") from None
        command += 1
        data = np.frombuffer(got.tobytes(), np.uint8)
        got.drop()
        if not np.array_equal(data, stamp(block, version)):
            raise ExerciseFailed(f"read of block {block} ({_where(command - 1)}) returned data that "
                                 "is not the block's: the driver reported a completion before the "
                                 "controller posted it (a stale CQ entry: check the phase tag)")
    if runs:
        _merged_runs(nvme, media, command)


def _merged_runs(nvme: Any, media: np.ndarray, command: int) -> None:
    """Batches of consecutive blocks: one command per run, PRP2 or a PRP list (§4.3)."""
    for start, length in ((200, 2), (300, 7), (400, 5)):
        dq = RRefDeque.new(BlkReq, 32)
        for block in range(start, start + length):
            req = RRef.new(BlkReq)
            view = req.array()
            view["block"] = block
            view["data"] = stamp(block, 999)
            del view
            dq.push_back(req)
        try:
            _taken, submit, done = nvme.submit_and_poll(dq, RRefDeque.new(BlkReq, 32), True)
        except RpcError as err:
            raise ExerciseFailed(f"a merged write of blocks {start}..{start + length - 1} "
                                 f"({_where(command)}) panicked the driver: "
                                 f"{_hint(err, command)}") from None
        command += 1
        submit.drop()
        done.drop()
        for block in range(start, start + length):
            if not np.array_equal(media[block], stamp(block, 999)):
                raise ExerciseFailed(f"a merged write of {length} blocks from {start} left block "
                                     f"{block} unwritten: NLB (CDW12) must cover the whole run "
                                     "(blocks - 1) and PRP2 the other pages (§4.3, §6.15)")


def check_submit(submit_run: Callable[..., Any] | str, commands: int = 24,
                 runs: bool = False) -> None:
    """Grade the student's `QueuePair.submit_run`; raises ExerciseFailed."""
    with workdir() as folder:
        driver = student_domain("nvme", {"queues.py": {"QueuePair.submit_run": submit_run}},
                                folder)
        _run(driver, commands, runs)


def check_complete(reap_one: Callable[..., Any] | str, commands: int = 24) -> None:
    """Grade the student's `QueuePair.reap_one`; raises ExerciseFailed."""
    with workdir() as folder:
        driver = student_domain("nvme", {"queues.py": {"QueuePair.reap_one": reap_one}}, folder)
        _run(driver, commands, False)
